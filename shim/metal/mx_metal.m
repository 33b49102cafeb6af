/* mx_metal.m: the Metal implementation of shim/mx_shim.h (Apple silicon).
 *
 * Objective-C with ARC (-fobjc-arc), linked against Metal, MetalPerformanceShaders and
 * Foundation. Memory is MTLResourceStorageModeShared buffers, whose host address is also the
 * GPU's: the pool hands those addresses out, and mx_buffer_find maps one back to its
 * MTLBuffer and offset. Kernels are compiled from source by newLibraryWithSource:options:error:
 * (names are [[host_name]]s), pipeline states are made once per kernel. Each stream is an
 * MTLCommandQueue; dispatches are encoded into one open command buffer per stream, committed
 * every few dozen dispatches and at synchronization, never waited for in between.
 *
 * Metal objects live in C structs as retained `void *` (__bridge_retained / __bridge_transfer),
 * since the ABI's handles are C structs. Every entry point drains its own autorelease pool:
 * the callers are Python threads that have none. Nothing here raises into the caller: Cocoa
 * exceptions are caught at the calls that can throw them and become MX_* codes.
 */
#include "mx_shim.h"

#import <Foundation/Foundation.h>
#import <Metal/Metal.h>
#import <MetalPerformanceShaders/MetalPerformanceShaders.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------- */
static __thread char err_buf[2048];

const char *mx_last_error(void) { return err_buf; }

static void set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
}

static const char *ns_text(NSString *s) {
    const char *c = s ? s.UTF8String : NULL;
    return c ? c : "(no description)";
}

static void set_exception(const char *what, NSException *e) {
    set_error("%s raised %s: %s", what, ns_text(e.name), ns_text(e.reason));
}

/* ------------------------------------------------------------------------------------
 * Retained Objective-C objects in C structs
 * ---------------------------------------------------------------------------------- */
#define BORROW(type, ptr) ((__bridge type)(ptr))

static void *own(id obj) { return (__bridge_retained void *)obj; }

static void drop(void **slot) {
    if (*slot) {
        id obj = (__bridge_transfer id)*slot;   /* released when obj goes out of scope */
        *slot = NULL;
        (void)obj;
    }
}

/* Completion state of one stream, shared with the completion handlers of its command
   buffers, which may run after the stream is freed (so it is an object, not a field). */
@interface MXCompletion : NSObject {
@public
    pthread_mutex_t lock;
    pthread_cond_t done;
    long pending;                /* committed command buffers not yet completed */
    int failed;
    char message[1024];          /* the first failure since the last synchronization */
}
@end

@implementation MXCompletion
- (instancetype)init {
    self = [super init];
    if (self) {
        pthread_mutex_init(&lock, NULL);
        pthread_cond_init(&done, NULL);
    }
    return self;
}
- (void)dealloc {
    pthread_cond_destroy(&done);
    pthread_mutex_destroy(&lock);
}
@end

/* ------------------------------------------------------------------------------------
 * Devices
 * ---------------------------------------------------------------------------------- */
struct mx_device {
    void *mtl;                   /* id<MTLDevice> */
    mx_device_info info;
    uint32_t max_threadgroup_memory;
    MTLLanguageVersion language;
    int language_major, language_minor;
    pthread_mutex_t lock;        /* streams, library cache */
    mx_stream *streams;          /* every stream made, for mx_device_synchronize */
};

struct mx_stream {
    mx_device *dev;
    void *queue;                 /* id<MTLCommandQueue> */
    void *cb;                    /* the open id<MTLCommandBuffer>, or NULL */
    void *encoder;               /* its open id<MTLComputeCommandEncoder>, or NULL */
    void *completion;            /* MXCompletion */
    int n_ops;                   /* dispatches encoded into cb */
    pthread_mutex_t lock;        /* cb, encoder, n_ops */
    mx_stream *next;
};

struct mx_event {
    mx_device *dev;
    void *event;                 /* id<MTLSharedEvent> */
    void *signal_cb;             /* the command buffer that signals `value` */
    uint64_t value;              /* the value the last record signals */
    int timing;
    pthread_mutex_t lock;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = MX_UNAVAILABLE;
static char init_error[1024];
static void *system_device = NULL;      /* id<MTLDevice> */
static mx_device *the_device = NULL;    /* opened: the pool's device */
static pthread_mutex_t devices_lock = PTHREAD_MUTEX_INITIALIZER;
static int ops_per_buffer = 32;

static void init_metal(void) {
    @autoreleasepool {
        const char *env = getenv("MX_METAL_OPS_PER_BUFFER");
        if (env && atoi(env) > 0) ops_per_buffer = atoi(env);
        id<MTLDevice> dev = nil;
        @try {
            dev = MTLCreateSystemDefaultDevice();
        } @catch (NSException *e) {
            snprintf(init_error, sizeof init_error, "MTLCreateSystemDefaultDevice raised %s: %s",
                     ns_text(e.name), ns_text(e.reason));
            return;
        }
        if (!dev) {
            snprintf(init_error, sizeof init_error,
                     "no Metal device (MTLCreateSystemDefaultDevice returned nil)");
            return;
        }
        /* shared buffers are the GPU's own memory only where memory is unified */
        if (!dev.hasUnifiedMemory) {
            snprintf(init_error, sizeof init_error,
                     "the Metal device %s has no unified memory; mx's Metal backend needs Apple silicon",
                     ns_text(dev.name));
            return;
        }
        system_device = own(dev);
        init_status = MX_OK;
    }
}

static int ensure_init(void) {
    pthread_once(&init_once, init_metal);
    if (init_status != MX_OK) { set_error("%s", init_error); return MX_UNAVAILABLE; }
    return MX_OK;
}

int mx_device_count(void) { return ensure_init() == MX_OK ? 1 : 0; }

/* The newest Metal Shading Language this macOS compiles (bfloat needs 3.1, macOS 14). */
static MTLLanguageVersion pick_language(int *major, int *minor) {
    if (@available(macOS 15.0, *)) { *major = 3; *minor = 2; return MTLLanguageVersion3_2; }
    if (@available(macOS 14.0, *)) { *major = 3; *minor = 1; return MTLLanguageVersion3_1; }
    if (@available(macOS 13.0, *)) { *major = 3; *minor = 0; return MTLLanguageVersion3_0; }
    if (@available(macOS 12.0, *)) { *major = 2; *minor = 4; return MTLLanguageVersion2_4; }
    *major = 2; *minor = 3;
    return MTLLanguageVersion2_3;
}

/* "applegpu_g14s" on macOS 14 and newer; the GPU family before. */
static void architecture_name(id<MTLDevice> dev, char *out, size_t n) {
    if (@available(macOS 14.0, *)) {
        snprintf(out, n, "%s", ns_text(dev.architecture.name));
        return;
    }
    int family = 0;
    if ([dev supportsFamily:MTLGPUFamilyApple7]) family = 7;
    if (@available(macOS 13.0, *)) {
        if ([dev supportsFamily:MTLGPUFamilyApple8]) family = 8;
    }
    if (family) snprintf(out, n, "apple%d", family);
    else snprintf(out, n, "unknown");
}

mx_device *mx_device_open(int index) {
    if (ensure_init() != MX_OK) return NULL;
    if (index != 0) {
        set_error("no Metal device %d (there is 1)", index);
        return NULL;
    }
    pthread_mutex_lock(&devices_lock);
    if (the_device) { pthread_mutex_unlock(&devices_lock); return the_device; }
    mx_device *d = calloc(1, sizeof *d);
    if (!d) { pthread_mutex_unlock(&devices_lock); set_error("out of host memory"); return NULL; }
    pthread_mutex_init(&d->lock, NULL);
    @autoreleasepool {
        id<MTLDevice> dev = BORROW(id<MTLDevice>, system_device);
        d->mtl = own(dev);
        d->language = pick_language(&d->language_major, &d->language_minor);
        mx_device_info *in = &d->info;
        snprintf(in->name, sizeof in->name, "%s", ns_text(dev.name));
        architecture_name(dev, in->architecture, sizeof in->architecture);
        snprintf(in->backend, sizeof in->backend, "metal");
        snprintf(in->versions, sizeof in->versions, "macOS %s, Metal Shading Language %d.%d",
                 ns_text([NSProcessInfo processInfo].operatingSystemVersionString),
                 d->language_major, d->language_minor);
        in->memory_size = [NSProcessInfo processInfo].physicalMemory;
        in->max_buffer_length = dev.maxBufferLength;
        in->max_threads_per_threadgroup = (uint32_t)dev.maxThreadsPerThreadgroup.width;
        in->multiprocessor_count = 0;   /* Metal does not say how many GPU cores there are */
        in->simd_width = 32;            /* every Apple GPU's SIMD-group */
        in->unified_memory = 1;
        in->concurrent_managed_access = 1;
        in->pageable_memory_access = 0; /* kernels read MTLBuffers only, not malloc memory */
        d->max_threadgroup_memory = (uint32_t)dev.maxThreadgroupMemoryLength;
    }
    the_device = d;
    pthread_mutex_unlock(&devices_lock);
    return d;
}

int mx_device_get_info(mx_device *d, mx_device_info *info) {
    if (!d || !info) { set_error("no device"); return MX_INVALID; }
    *info = d->info;
    return MX_OK;
}

/* Unified memory has no free count of its own: what the GPU may still use is the working
   set Metal recommends less what this process has allocated. */
int mx_device_memory(mx_device *d, uint64_t *free_bytes, uint64_t *total_bytes) {
    if (!d || !free_bytes || !total_bytes) { set_error("no device"); return MX_INVALID; }
    @autoreleasepool {
        id<MTLDevice> dev = BORROW(id<MTLDevice>, d->mtl);
        uint64_t total = dev.recommendedMaxWorkingSetSize;
        uint64_t used = dev.currentAllocatedSize;
        *total_bytes = total;
        *free_bytes = used < total ? total - used : 0;
    }
    return MX_OK;
}

/* ------------------------------------------------------------------------------------
 * Memory: a pool of shared buffers.
 *
 * Blocks up to SMALL_MAX bytes are carved from SLAB-sized buffers by size class (powers of
 * two); larger ones are buffers of their own. Every buffer the pool holds is a "region",
 * kept in a table sorted by host address so that any address inside one can be traced to
 * its region (mx_buffer_find). Free lists live in malloc memory, never in the buffers.
 *
 * mx's allocator writes a 64-byte header in front of every block it gets from
 * mx_host_alloc. As in the CUDA pool, a large block's data starts HEADER_GAP bytes into its
 * buffer, so that the header sits alone at the end of the first page. Apple silicon moves no
 * pages between host and GPU, so this costs nothing but the gap, which is one 16 KiB page.
 *
 * The pool refuses to grow beyond its cap, Metal's recommendedMaxWorkingSetSize by default:
 * beyond it the GPU's working set no longer fits and the system pages.
 * ---------------------------------------------------------------------------------- */
#define MIN_CLASS 8              /* 256 B */
#define MAX_CLASS 16             /* 64 KiB */
#define SMALL_MAX ((size_t)1 << MAX_CLASS)
#define SLAB ((size_t)2 << 20)
#define PAGE ((size_t)16 << 10)  /* Apple silicon's page */
#define LARGE_ALIGN PAGE
#define HEADER_GAP PAGE
#define HOST_HEADER 64           /* the bytes mx's allocator writes in front of a block */

struct mx_buffer {
    uintptr_t base;              /* [mtl contents]: the host and GPU address */
    uint64_t size;
    int size_class;              /* slab: its block class; 0: a single large block */
    int standalone;              /* made by mx_buffer_alloc (freed by mx_buffer_free) */
    void *mtl;                   /* id<MTLBuffer> */
};

typedef struct { void **items; size_t n, cap; } ptr_stack;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static mx_buffer **regions = NULL;      /* sorted by base */
static size_t n_regions = 0, cap_regions = 0;
static ptr_stack free_blocks[MAX_CLASS + 1];
static uint64_t pool_reserved = 0, pool_in_use = 0, pool_limit = 0;

static int push(ptr_stack *s, void *p) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        void **items = realloc(s->items, cap * sizeof *items);
        if (!items) return -1;
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = p;
    return 0;
}

static size_t region_index(uintptr_t addr) {    /* first region with base > addr */
    size_t lo = 0, hi = n_regions;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (regions[mid]->base <= addr) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static mx_buffer *region_of(uintptr_t addr) {
    size_t i = region_index(addr);
    if (i == 0) return NULL;
    mx_buffer *r = regions[i - 1];
    return addr < r->base + r->size ? r : NULL;
}

static int region_insert(mx_buffer *r) {
    if (n_regions == cap_regions) {
        size_t cap = cap_regions ? cap_regions * 2 : 64;
        mx_buffer **t = realloc(regions, cap * sizeof *t);
        if (!t) return -1;
        regions = t;
        cap_regions = cap;
    }
    size_t i = region_index(r->base);
    memmove(regions + i + 1, regions + i, (n_regions - i) * sizeof *regions);
    regions[i] = r;
    n_regions++;
    return 0;
}

static void region_remove(mx_buffer *r) {
    size_t i = region_index(r->base);
    if (i == 0 || regions[i - 1] != r) return;
    memmove(regions + i - 1, regions + i, (n_regions - i) * sizeof *regions);
    n_regions--;
}

static uint64_t default_limit(mx_device *d) {
    uint64_t limit = BORROW(id<MTLDevice>, d->mtl).recommendedMaxWorkingSetSize;
    return limit ? limit : d->info.memory_size / 2;
}

/* A new shared buffer of `size` bytes, under the cap (pool_lock held). */
static mx_buffer *region_new(mx_device *d, uint64_t size, int size_class) {
    if (!pool_limit) pool_limit = default_limit(d);
    if (pool_reserved + size > pool_limit) {
        set_error("out of GPU memory: %llu bytes requested with %llu of %llu bytes already in use",
                  (unsigned long long)size, (unsigned long long)pool_reserved,
                  (unsigned long long)pool_limit);
        return NULL;
    }
    if (size > d->info.max_buffer_length) {
        set_error("out of GPU memory: %llu bytes requested, the largest Metal buffer is %llu bytes",
                  (unsigned long long)size, (unsigned long long)d->info.max_buffer_length);
        return NULL;
    }
    mx_buffer *r = calloc(1, sizeof *r);
    if (!r) { set_error("out of host memory"); return NULL; }
    @autoreleasepool {
        id<MTLBuffer> b = nil;
        @try {
            b = [BORROW(id<MTLDevice>, d->mtl) newBufferWithLength:(NSUInteger)size
                                                          options:MTLResourceStorageModeShared];
        } @catch (NSException *e) {
            set_exception("newBufferWithLength", e);
            free(r);
            return NULL;
        }
        if (!b || !b.contents) {
            set_error("out of GPU memory: newBufferWithLength(%llu bytes) failed",
                      (unsigned long long)size);
            free(r);
            return NULL;
        }
        r->base = (uintptr_t)b.contents;
        r->mtl = own(b);
    }
    r->size = size;
    r->size_class = size_class;
    if (region_insert(r) != 0) {
        drop(&r->mtl);
        free(r);
        set_error("out of host memory");
        return NULL;
    }
    pool_reserved += size;
    return r;
}

/* A command buffer that still uses the buffer holds its own reference to it, so the memory
   outlives this release until the GPU is done with it. */
static void region_release(mx_buffer *r) {
    region_remove(r);
    pool_reserved -= r->size;
    drop(&r->mtl);
    free(r);
}

static int size_class_of(size_t n) {
    int c = MIN_CLASS;
    while (((size_t)1 << c) < n) c++;
    return c;
}

static void *pool_alloc_locked(mx_device *d, size_t nbytes) {
    if (nbytes == 0) nbytes = 1;
    if (nbytes <= SMALL_MAX) {
        int c = size_class_of(nbytes);
        ptr_stack *s = &free_blocks[c];
        if (s->n == 0) {
            mx_buffer *slab = region_new(d, SLAB, c);
            if (!slab) return NULL;
            size_t block = (size_t)1 << c;
            for (size_t off = SLAB; off >= block; off -= block)
                if (push(s, (char *)slab->base + off - block) != 0) break;
            if (s->n == 0) { region_release(slab); set_error("out of host memory"); return NULL; }
        }
        pool_in_use += (size_t)1 << c;
        return s->items[--s->n];
    }
    if (nbytes > UINT64_MAX - HEADER_GAP - LARGE_ALIGN) { set_error("out of GPU memory"); return NULL; }
    uint64_t size = HEADER_GAP + ((nbytes + LARGE_ALIGN - 1) & ~(uint64_t)(LARGE_ALIGN - 1));
    mx_buffer *r = region_new(d, size, 0);
    if (!r) return NULL;
    pool_in_use += size;
    /* the data (after the host's header) starts at base + HEADER_GAP */
    return (void *)(r->base + HEADER_GAP - HOST_HEADER);
}

void *mx_host_alloc(size_t nbytes) {
    mx_device *d = the_device;
    if (!d) { set_error("no GPU device is open"); return NULL; }
    pthread_mutex_lock(&pool_lock);
    void *p = pool_alloc_locked(d, nbytes);
    pthread_mutex_unlock(&pool_lock);
    return p;
}

void mx_host_free(void *ptr) {
    if (!ptr) return;
    pthread_mutex_lock(&pool_lock);
    mx_buffer *r = region_of((uintptr_t)ptr);
    if (!r || r->standalone) {
        pthread_mutex_unlock(&pool_lock);
        return;   /* not ours: nothing sensible to do */
    }
    if (r->size_class) {
        pool_in_use -= (size_t)1 << r->size_class;
        push(&free_blocks[r->size_class], ptr);
    } else {
        pool_in_use -= r->size;
        @autoreleasepool { region_release(r); }
    }
    pthread_mutex_unlock(&pool_lock);
}

int mx_pool_stats(uint64_t *reserved, uint64_t *in_use, uint64_t *limit) {
    if (!reserved || !in_use || !limit) { set_error("mx_pool_stats: bad arguments"); return MX_INVALID; }
    pthread_mutex_lock(&pool_lock);
    if (!pool_limit && the_device) pool_limit = default_limit(the_device);
    *reserved = pool_reserved;
    *in_use = pool_in_use;
    *limit = pool_limit;
    pthread_mutex_unlock(&pool_lock);
    return MX_OK;
}

uint64_t mx_pool_set_limit(uint64_t limit) {
    pthread_mutex_lock(&pool_lock);
    uint64_t old = pool_limit;
    pool_limit = limit;
    pthread_mutex_unlock(&pool_lock);
    return old;
}

mx_buffer *mx_buffer_alloc(mx_device *d, uint64_t nbytes) {
    if (!d) { set_error("no device"); return NULL; }
    if (nbytes > UINT64_MAX - LARGE_ALIGN) { set_error("out of GPU memory"); return NULL; }
    pthread_mutex_lock(&pool_lock);
    uint64_t size = ((nbytes ? nbytes : 1) + LARGE_ALIGN - 1) & ~(uint64_t)(LARGE_ALIGN - 1);
    mx_buffer *r = region_new(d, size, 0);
    if (r) r->standalone = 1;
    pthread_mutex_unlock(&pool_lock);
    return r;
}

void mx_buffer_free(mx_buffer *buf) {
    if (!buf || !buf->standalone) return;
    pthread_mutex_lock(&pool_lock);
    @autoreleasepool { region_release(buf); }
    pthread_mutex_unlock(&pool_lock);
}

void *mx_buffer_contents(mx_buffer *buf) { return buf ? (void *)buf->base : NULL; }
uint64_t mx_buffer_length(mx_buffer *buf) { return buf ? buf->size : 0; }

mx_buffer *mx_buffer_find(mx_device *d, const void *ptr, uint64_t *offset) {
    (void)d;
    pthread_mutex_lock(&pool_lock);
    mx_buffer *r = region_of((uintptr_t)ptr);
    pthread_mutex_unlock(&pool_lock);
    if (r && offset) *offset = (uintptr_t)ptr - r->base;
    return r;
}

/* ------------------------------------------------------------------------------------
 * Kernels: newLibraryWithSource with an in-memory cache; one pipeline state per kernel,
 * made the first time the kernel is asked for. (Metal keeps its own on-disk cache of
 * compiled shaders; this shim writes none, so mx_library_was_cached is always 0.)
 * ---------------------------------------------------------------------------------- */
struct mx_kernel {
    mx_library *lib;
    char *name;
    void *pipeline;              /* id<MTLComputePipelineState>, NULL until first asked for */
    uint32_t max_threads;        /* per threadgroup, for this pipeline */
    uint32_t static_memory;      /* threadgroup memory the kernel declares itself */
};

struct mx_library {
    mx_device *dev;
    uint64_t key[2];
    void *library;               /* id<MTLLibrary> */
    int n;
    mx_kernel *kernels;
    pthread_mutex_t lock;        /* pipeline creation */
    mx_library *next;
};

static mx_library *libraries = NULL;    /* in-memory cache (guarded by the device lock) */

static void fnv(uint64_t *h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h[0] = (h[0] ^ p[i]) * 0x100000001b3ULL;
        h[1] = (h[1] ^ p[i]) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
    }
    /* a separator, so that ("ab","c") and ("a","bc") differ */
    h[0] = (h[0] ^ 0xff) * 0x100000001b3ULL;
    h[1] = (h[1] ^ 0xfe) * 0x100000001b3ULL;
}

static mx_library *find_library(mx_device *d, const uint64_t *key) {
    for (mx_library *l = libraries; l; l = l->next)
        if (l->dev == d && l->key[0] == key[0] && l->key[1] == key[1]) return l;
    return NULL;
}

static NSString *ns_string(const char *s) {
    return s ? [NSString stringWithUTF8String:s] : nil;
}

static int parse_language(const char *v, MTLLanguageVersion *out, int *major, int *minor) {
    int a = 0, b = 0;
    if (sscanf(v, "%d.%d", &a, &b) != 2) return -1;
    if (a == 2 && b == 3) { *out = MTLLanguageVersion2_3; }
    else if (a == 2 && b == 4) {
        if (@available(macOS 12.0, *)) *out = MTLLanguageVersion2_4; else return -2;
    } else if (a == 3 && b == 0) {
        if (@available(macOS 13.0, *)) *out = MTLLanguageVersion3_0; else return -2;
    } else if (a == 3 && b == 1) {
        if (@available(macOS 14.0, *)) *out = MTLLanguageVersion3_1; else return -2;
    } else if (a == 3 && b == 2) {
        if (@available(macOS 15.0, *)) *out = MTLLanguageVersion3_2; else return -2;
    } else {
        return -1;
    }
    *major = a;
    *minor = b;
    return 0;
}

/* MTLCompileOptions from whitespace-separated options: -DNAME[=VALUE], -std=metalX.Y,
   -ffast-math / -fno-fast-math (the default: IEEE arithmetic and precise math functions,
   so that results match the CPU's). NULL, with the error set, for anything else. */
static MTLCompileOptions *compile_options(mx_device *d, const char *options, int *major, int *minor) {
    MTLCompileOptions *opts = [MTLCompileOptions new];
    NSMutableDictionary<NSString *, NSObject *> *macros = [NSMutableDictionary dictionary];
    MTLLanguageVersion language = d->language;
    *major = d->language_major;
    *minor = d->language_minor;
    int fast = 0;
    char *copy = strdup(options ? options : "");
    if (!copy) { set_error("out of host memory"); return nil; }
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        if (strncmp(tok, "-D", 2) == 0 && tok[2]) {
            char *eq = strchr(tok + 2, '=');
            if (eq) *eq = 0;
            NSString *name = ns_string(tok + 2);
            NSString *value = ns_string(eq ? eq + 1 : "1");
            if (!name || !value) {
                set_error("compile option %s is not valid UTF-8", tok);
                free(copy);
                return nil;
            }
            [macros setObject:value forKey:name];
        } else if (strncmp(tok, "-std=metal", 10) == 0) {
            int rc = parse_language(tok + 10, &language, major, minor);
            if (rc != 0) {
                set_error(rc == -2 ? "compile option %s: this macOS does not have that Metal language version"
                                   : "compile option %s: unknown Metal language version (2.3 to 3.2)", tok);
                free(copy);
                return nil;
            }
        } else if (strcmp(tok, "-ffast-math") == 0) {
            fast = 1;
        } else if (strcmp(tok, "-fno-fast-math") == 0) {
            fast = 0;
        } else {
            set_error("unknown Metal compile option %s (known: -DNAME[=VALUE], -std=metalX.Y, "
                      "-ffast-math, -fno-fast-math)", tok);
            free(copy);
            return nil;
        }
    }
    free(copy);
    opts.languageVersion = language;
    if (macros.count) opts.preprocessorMacros = macros;
    if (@available(macOS 15.0, *)) {
        opts.mathMode = fast ? MTLMathModeFast : MTLMathModeSafe;
        opts.mathFloatingPointFunctions = fast ? MTLMathFloatingPointFunctionsFast
                                               : MTLMathFloatingPointFunctionsPrecise;
    } else {
        opts.fastMathEnabled = fast ? YES : NO;
    }
    return opts;
}

static void free_library(mx_library *lib) {
    if (!lib) return;
    if (lib->kernels) {
        for (int i = 0; i < lib->n; i++) {
            free(lib->kernels[i].name);
            drop(&lib->kernels[i].pipeline);
        }
        free(lib->kernels);
    }
    drop(&lib->library);
    pthread_mutex_destroy(&lib->lock);
    free(lib);
}

/* Compile and check that every name is a function of the library; NULL with the error set. */
static mx_library *compile_library(mx_device *d, const char *source, const char *options,
                                   const char *const *names, int n) {
    NSString *src = ns_string(source);
    if (!src) { set_error("the kernel source is not valid UTF-8"); return NULL; }
    int major = 0, minor = 0;
    MTLCompileOptions *opts = compile_options(d, options, &major, &minor);
    if (!opts) return NULL;
    NSError *err = nil;
    id<MTLLibrary> mtl_lib = nil;
    @try {
        mtl_lib = [BORROW(id<MTLDevice>, d->mtl) newLibraryWithSource:src options:opts error:&err];
    } @catch (NSException *e) {
        set_exception("newLibraryWithSource", e);
        return NULL;
    }
    if (!mtl_lib) {
        set_error("the Metal compiler could not compile the kernels (Metal Shading Language %d.%d%s):\n%s",
                  major, minor, (major < 3 || (major == 3 && minor < 1)) ? "; bfloat needs 3.1, macOS 14" : "",
                  err ? ns_text(err.localizedDescription) : "no message");
        return NULL;
    }
    NSArray<NSString *> *functions = mtl_lib.functionNames;
    for (int i = 0; i < n; i++) {
        NSString *name = ns_string(names[i]);
        if (!name || ![functions containsObject:name]) {
            set_error("the compiled Metal library has no function %s (kernel names on Metal are the "
                      "[[host_name]]s of translate.host_name)", names[i] ? names[i] : "(NULL)");
            return NULL;
        }
    }
    mx_library *lib = calloc(1, sizeof *lib);
    if (!lib) { set_error("out of host memory"); return NULL; }
    pthread_mutex_init(&lib->lock, NULL);
    lib->dev = d;
    lib->n = n;
    lib->library = own(mtl_lib);
    lib->kernels = calloc(n ? n : 1, sizeof *lib->kernels);
    if (!lib->kernels) { free_library(lib); set_error("out of host memory"); return NULL; }
    for (int i = 0; i < n; i++) {
        lib->kernels[i].lib = lib;
        lib->kernels[i].name = strdup(names[i]);
        if (!lib->kernels[i].name) { free_library(lib); set_error("out of host memory"); return NULL; }
    }
    return lib;
}

mx_library *mx_library_new(mx_device *d, const char *source, const char *options,
                           const char *const *names, int n) {
    if (!d || !source || n < 0 || (n > 0 && !names)) { set_error("mx_library_new: bad arguments"); return NULL; }
    for (int i = 0; i < n; i++)
        if (!names[i]) { set_error("mx_library_new: kernel name %d is NULL", i); return NULL; }

    uint64_t key[2] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    char meta[64];
    snprintf(meta, sizeof meta, "abi%d metal", MX_SHIM_ABI_VERSION);
    fnv(key, meta, strlen(meta));
    fnv(key, source, strlen(source));
    fnv(key, options ? options : "", options ? strlen(options) : 0);
    for (int i = 0; i < n; i++) fnv(key, names[i], strlen(names[i]));

    /* compiles run outside the lock, so that threads can compile different libraries at
       once; a library compiled twice meanwhile is kept once */
    pthread_mutex_lock(&d->lock);
    mx_library *found = find_library(d, key);
    pthread_mutex_unlock(&d->lock);
    if (found) return found;
    mx_library *lib;
    @autoreleasepool {
        lib = compile_library(d, source, options, names, n);
    }
    if (!lib) return NULL;
    lib->key[0] = key[0];
    lib->key[1] = key[1];
    pthread_mutex_lock(&d->lock);
    found = find_library(d, key);
    if (!found) {
        lib->next = libraries;
        libraries = lib;
    }
    pthread_mutex_unlock(&d->lock);
    if (found) {   /* another thread won */
        @autoreleasepool { free_library(lib); }
        return found;
    }
    return lib;
}

static int make_pipeline(mx_kernel *k) {
    mx_library *lib = k->lib;
    id<MTLLibrary> mtl_lib = BORROW(id<MTLLibrary>, lib->library);
    id<MTLDevice> dev = BORROW(id<MTLDevice>, lib->dev->mtl);
    NSError *err = nil;
    id<MTLComputePipelineState> ps = nil;
    @try {
        id<MTLFunction> fn = [mtl_lib newFunctionWithName:ns_string(k->name)];
        if (!fn) { set_error("the Metal library has no function %s", k->name); return MX_ERROR; }
        ps = [dev newComputePipelineStateWithFunction:fn error:&err];
    } @catch (NSException *e) {
        set_exception("newComputePipelineStateWithFunction", e);
        return MX_ERROR;
    }
    if (!ps) {
        set_error("making the compute pipeline of kernel %s failed: %s", k->name,
                  err ? ns_text(err.localizedDescription) : "no message");
        return MX_ERROR;
    }
    pthread_mutex_lock(&lib->lock);
    if (!k->pipeline) {   /* (another thread may have made it meanwhile: keep one) */
        k->max_threads = (uint32_t)ps.maxTotalThreadsPerThreadgroup;
        k->static_memory = (uint32_t)ps.staticThreadgroupMemoryLength;
        k->pipeline = own(ps);
    }
    pthread_mutex_unlock(&lib->lock);
    return MX_OK;
}

mx_kernel *mx_library_kernel(mx_library *lib, const char *name) {
    if (!lib || !name) { set_error("mx_library_kernel: bad arguments"); return NULL; }
    for (int i = 0; i < lib->n; i++) {
        mx_kernel *k = &lib->kernels[i];
        if (strcmp(k->name, name) != 0) continue;
        pthread_mutex_lock(&lib->lock);
        int ready = k->pipeline != NULL;
        pthread_mutex_unlock(&lib->lock);
        if (ready) return k;
        int rc;
        @autoreleasepool { rc = make_pipeline(k); }
        return rc == MX_OK ? k : NULL;
    }
    set_error("the library has no kernel %s", name);
    return NULL;
}

int mx_library_was_cached(mx_library *lib) { (void)lib; return 0; }

/* ------------------------------------------------------------------------------------
 * Streams: a command queue with one open command buffer (and compute encoder) at a time
 * ---------------------------------------------------------------------------------- */

/* The open command buffer, made when there is none (stream lock held). */
static id<MTLCommandBuffer> open_cb(mx_stream *s) {
    if (!s->cb) {
        id<MTLCommandBuffer> cb = nil;
        @try {
            cb = [BORROW(id<MTLCommandQueue>, s->queue) commandBuffer];
        } @catch (NSException *e) {
            set_exception("commandBuffer", e);
            return nil;
        }
        if (!cb) { set_error("the Metal command queue made no command buffer"); return nil; }
        s->cb = own(cb);
    }
    return BORROW(id<MTLCommandBuffer>, s->cb);
}

/* The open compute encoder of the open command buffer (stream lock held). */
static id<MTLComputeCommandEncoder> open_encoder(mx_stream *s) {
    if (!s->encoder) {
        id<MTLCommandBuffer> cb = open_cb(s);
        if (!cb) return nil;
        id<MTLComputeCommandEncoder> enc = nil;
        @try {
            enc = [cb computeCommandEncoder];
        } @catch (NSException *e) {
            set_exception("computeCommandEncoder", e);
            return nil;
        }
        if (!enc) { set_error("the Metal command buffer made no compute encoder"); return nil; }
        s->encoder = own(enc);
    }
    return BORROW(id<MTLComputeCommandEncoder>, s->encoder);
}

/* End the open encoder: events and MPS encode into the command buffer itself. */
static void end_encoder(mx_stream *s) {
    if (s->encoder) {
        [BORROW(id<MTLComputeCommandEncoder>, s->encoder) endEncoding];
        drop(&s->encoder);
    }
}

/* Commit the open command buffer without waiting; its completion is counted (and its
   failure recorded) in the stream's MXCompletion. Returns it (retained), or nil. */
static id<MTLCommandBuffer> commit_cb(mx_stream *s) {
    end_encoder(s);
    s->n_ops = 0;
    if (!s->cb) return nil;
    id<MTLCommandBuffer> cb = (__bridge_transfer id<MTLCommandBuffer>)s->cb;
    s->cb = NULL;
    MXCompletion *c = BORROW(MXCompletion *, s->completion);
    pthread_mutex_lock(&c->lock);
    c->pending++;
    pthread_mutex_unlock(&c->lock);
    @try {
        [cb addCompletedHandler:^(id<MTLCommandBuffer> done) {
            pthread_mutex_lock(&c->lock);
            if (done.status == MTLCommandBufferStatusError && !c->failed) {
                c->failed = 1;
                snprintf(c->message, sizeof c->message, "%s",
                         done.error ? ns_text(done.error.localizedDescription) : "unknown error");
            }
            c->pending--;
            pthread_cond_broadcast(&c->done);
            pthread_mutex_unlock(&c->lock);
        }];
        [cb commit];
    } @catch (NSException *e) {
        /* never committed: nothing will complete it (the caller reports the exception) */
        pthread_mutex_lock(&c->lock);
        c->pending--;
        pthread_mutex_unlock(&c->lock);
        @throw;
    }
    return cb;
}

/* Count a queued operation; a full command buffer goes to the GPU now, so that the GPU
   works while the host encodes the next ones. */
static void count_op(mx_stream *s) {
    if (++s->n_ops >= ops_per_buffer) (void)commit_cb(s);
}

static int commit_stream(mx_stream *s) {
    int rc = MX_OK;
    pthread_mutex_lock(&s->lock);
    @try {
        (void)commit_cb(s);
    } @catch (NSException *e) {
        set_exception("commit", e);
        rc = MX_ERROR;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Wait for every committed command buffer of s; the first failure since the last wait. */
static int wait_stream(mx_stream *s) {
    MXCompletion *c = BORROW(MXCompletion *, s->completion);
    char message[sizeof c->message];
    int failed;
    pthread_mutex_lock(&c->lock);
    while (c->pending > 0) pthread_cond_wait(&c->done, &c->lock);
    failed = c->failed;
    memcpy(message, c->message, sizeof message);
    c->failed = 0;
    pthread_mutex_unlock(&c->lock);
    if (failed) {
        set_error("a Metal command buffer failed: %s", message);
        return MX_ERROR;
    }
    return MX_OK;
}

mx_stream *mx_stream_new(mx_device *d) {
    if (!d) { set_error("no device"); return NULL; }
    mx_stream *s = calloc(1, sizeof *s);
    if (!s) { set_error("out of host memory"); return NULL; }
    @autoreleasepool {
        id<MTLCommandQueue> q = nil;
        @try {
            q = [BORROW(id<MTLDevice>, d->mtl) newCommandQueue];
            if (!q) set_error("the Metal device made no command queue");
        } @catch (NSException *e) {
            set_exception("newCommandQueue", e);
        }
        if (!q) {
            free(s);
            return NULL;
        }
        s->queue = own(q);
        s->completion = own([MXCompletion new]);
    }
    s->dev = d;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_lock(&d->lock);
    s->next = d->streams;
    d->streams = s;
    pthread_mutex_unlock(&d->lock);
    return s;
}

/* The queue, after committing what mx queued, so that work others queue on it runs after. */
void *mx_stream_native(mx_stream *s) {
    if (!s) { set_error("no stream"); return NULL; }
    @autoreleasepool {
        if (commit_stream(s) != MX_OK) return NULL;
    }
    return s->queue;
}

int mx_stream_synchronize(mx_stream *s) {
    if (!s) { set_error("no stream"); return MX_INVALID; }
    int rc;
    @autoreleasepool {
        rc = commit_stream(s);
    }
    int wait_rc = wait_stream(s);
    return rc != MX_OK ? rc : wait_rc;
}

void mx_stream_free(mx_stream *s) {
    if (!s) return;
    mx_device *d = s->dev;
    mx_stream_synchronize(s);
    pthread_mutex_lock(&d->lock);
    for (mx_stream **p = &d->streams; *p; p = &(*p)->next)
        if (*p == s) { *p = s->next; break; }
    pthread_mutex_unlock(&d->lock);
    @autoreleasepool {
        drop(&s->encoder);
        drop(&s->cb);
        drop(&s->queue);
        drop(&s->completion);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Commit every stream first, then wait for each: a stream waiting on another's event never
   waits for work that is not yet committed. */
int mx_device_synchronize(mx_device *d) {
    if (!d) { set_error("no device"); return MX_INVALID; }
    int rc = MX_OK;
    pthread_mutex_lock(&d->lock);
    @autoreleasepool {
        for (mx_stream *s = d->streams; s; s = s->next) {
            int r = commit_stream(s);
            if (rc == MX_OK) rc = r;
        }
    }
    for (mx_stream *s = d->streams; s; s = s->next) {
        int r = wait_stream(s);
        if (rc == MX_OK) rc = r;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* ------------------------------------------------------------------------------------
 * Events: an MTLSharedEvent whose value each record raises. The recording command buffer
 * is committed at once, so that a queue waiting for the value never waits on work that
 * nothing will commit.
 * ---------------------------------------------------------------------------------- */
mx_event *mx_event_new(mx_device *d, int timing) {
    if (!d) { set_error("no device"); return NULL; }
    mx_event *e = calloc(1, sizeof *e);
    if (!e) { set_error("out of host memory"); return NULL; }
    @autoreleasepool {
        id<MTLSharedEvent> ev = nil;
        @try {
            ev = [BORROW(id<MTLDevice>, d->mtl) newSharedEvent];
            if (!ev) set_error("the Metal device made no shared event");
        } @catch (NSException *ex) {
            set_exception("newSharedEvent", ex);
        }
        if (!ev) {
            free(e);
            return NULL;
        }
        e->event = own(ev);
    }
    e->dev = d;
    e->timing = timing ? 1 : 0;
    pthread_mutex_init(&e->lock, NULL);
    return e;
}

int mx_event_record(mx_event *e, mx_stream *s) {
    if (!e || !s) { set_error("no event or stream"); return MX_INVALID; }
    int rc = MX_OK;
    pthread_mutex_lock(&s->lock);
    pthread_mutex_lock(&e->lock);
    @autoreleasepool {
        @try {
            id<MTLCommandBuffer> cb = open_cb(s);
            if (!cb) {
                rc = MX_ERROR;
            } else {
                end_encoder(s);
                uint64_t value = e->value + 1;
                [cb encodeSignalEvent:BORROW(id<MTLSharedEvent>, e->event) value:value];
                id<MTLCommandBuffer> committed = commit_cb(s);
                e->value = value;
                drop(&e->signal_cb);
                e->signal_cb = own(committed);
            }
        } @catch (NSException *ex) {
            set_exception("encodeSignalEvent", ex);
            rc = MX_ERROR;
        }
    }
    pthread_mutex_unlock(&e->lock);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int mx_stream_wait_event(mx_stream *s, mx_event *e) {
    if (!e || !s) { set_error("no event or stream"); return MX_INVALID; }
    pthread_mutex_lock(&e->lock);
    uint64_t value = e->value;
    pthread_mutex_unlock(&e->lock);
    if (value == 0) return MX_OK;   /* never recorded: nothing to wait for */
    int rc = MX_OK;
    pthread_mutex_lock(&s->lock);
    @autoreleasepool {
        @try {
            id<MTLCommandBuffer> cb = open_cb(s);
            if (!cb) {
                rc = MX_ERROR;
            } else {
                end_encoder(s);
                [cb encodeWaitForEvent:BORROW(id<MTLSharedEvent>, e->event) value:value];
            }
        } @catch (NSException *ex) {
            set_exception("encodeWaitForEvent", ex);
            rc = MX_ERROR;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* The command buffer of the event's last record, completed (retained), or nil; *rc says
   whether it failed. */
static id<MTLCommandBuffer> completed_signal(mx_event *e, int *rc) {
    pthread_mutex_lock(&e->lock);
    id<MTLCommandBuffer> cb = e->signal_cb ? BORROW(id<MTLCommandBuffer>, e->signal_cb) : nil;
    pthread_mutex_unlock(&e->lock);
    *rc = MX_OK;
    if (!cb) return nil;
    [cb waitUntilCompleted];
    if (cb.status == MTLCommandBufferStatusError) {
        set_error("a Metal command buffer failed: %s",
                  cb.error ? ns_text(cb.error.localizedDescription) : "unknown error");
        *rc = MX_ERROR;
    }
    return cb;
}

int mx_event_synchronize(mx_event *e) {
    if (!e) { set_error("no event"); return MX_INVALID; }
    int rc;
    @autoreleasepool {
        (void)completed_signal(e, &rc);
    }
    return rc;
}

/* The time between the GPU finishing the work before `a` and the work before `b`. */
int mx_event_elapsed_ms(mx_event *a, mx_event *b, float *ms) {
    if (!a || !b || !ms) { set_error("no event"); return MX_INVALID; }
    if (!a->timing || !b->timing) {
        set_error("mx_event_elapsed_ms: an event was made without timing");
        return MX_INVALID;
    }
    int rc = MX_OK;
    @autoreleasepool {
        int rc_a, rc_b;
        id<MTLCommandBuffer> ca = completed_signal(a, &rc_a);
        if (rc_a != MX_OK) return rc_a;
        id<MTLCommandBuffer> cb = completed_signal(b, &rc_b);
        if (rc_b != MX_OK) return rc_b;
        if (!ca || !cb) {
            set_error("mx_event_elapsed_ms: an event was never recorded");
            rc = MX_INVALID;
        } else {
            *ms = (float)((cb.GPUEndTime - ca.GPUEndTime) * 1000.0);
        }
    }
    return rc;
}

void mx_event_free(mx_event *e) {
    if (!e) return;
    @autoreleasepool {
        drop(&e->signal_cb);
        drop(&e->event);
    }
    pthread_mutex_destroy(&e->lock);
    free(e);
}

/* ------------------------------------------------------------------------------------
 * Dispatch
 * ---------------------------------------------------------------------------------- */
#define MAX_ARGS 31              /* Metal's buffer argument table */
#define MAX_SET_BYTES 4096       /* setBytes' documented limit */

int mx_dispatch(mx_kernel *k, mx_stream *s, const uint64_t *grid, const uint32_t *tg,
                const mx_arg *args, int n_args, uint32_t shared_bytes) {
    if (!k || !s || !grid || !tg || n_args < 0 || n_args > MAX_ARGS || (n_args > 0 && !args)) {
        set_error("mx_dispatch: bad arguments");
        return MX_INVALID;
    }
    if (!k->pipeline) { set_error("mx_dispatch: kernel %s has no pipeline", k->name); return MX_INVALID; }
    uint64_t groups[3], threads = 1;
    for (int i = 0; i < 3; i++) {
        if (tg[i] == 0) { set_error("mx_dispatch: empty threadgroup"); return MX_INVALID; }
        groups[i] = grid[i] / tg[i] + (grid[i] % tg[i] != 0);
        threads *= tg[i];
    }
    if (groups[0] == 0 || groups[1] == 0 || groups[2] == 0) return MX_OK;   /* nothing to run */
    if (threads > k->max_threads) {
        set_error("mx_dispatch: a threadgroup of %llu threads exceeds the %u kernel %s allows",
                  (unsigned long long)threads, k->max_threads, k->name);
        return MX_INVALID;
    }
    for (int i = 0; i < 3; i++) {
        /* thread positions are 32-bit in the kernels */
        if (groups[i] > UINT32_MAX / tg[i]) {
            set_error("mx_dispatch: grid %llu x %llu x %llu threads is too large",
                      (unsigned long long)grid[0], (unsigned long long)grid[1],
                      (unsigned long long)grid[2]);
            return MX_INVALID;
        }
    }
    mx_device *d = s->dev;
    if (shared_bytes && (uint64_t)shared_bytes + k->static_memory > d->max_threadgroup_memory) {
        set_error("mx_dispatch: %u bytes of threadgroup memory exceed the device's %u",
                  shared_bytes + k->static_memory, d->max_threadgroup_memory);
        return MX_INVALID;
    }
    for (int i = 0; i < n_args; i++) {
        if (args[i].buffer) {
            if (args[i].offset > args[i].buffer->size) {
                set_error("mx_dispatch: argument %d: offset %llu is past the buffer's %llu bytes", i,
                          (unsigned long long)args[i].offset, (unsigned long long)args[i].buffer->size);
                return MX_INVALID;
            }
        } else if (!args[i].bytes || args[i].nbytes == 0) {
            set_error("mx_dispatch: argument %d has neither a buffer nor bytes", i);
            return MX_INVALID;
        }
    }
    int rc = MX_OK;
    pthread_mutex_lock(&s->lock);
    @autoreleasepool {
        @try {
            id<MTLComputeCommandEncoder> enc = open_encoder(s);
            if (!enc) {
                rc = MX_ERROR;
            } else {
                [enc setComputePipelineState:BORROW(id<MTLComputePipelineState>, k->pipeline)];
                for (int i = 0; i < n_args && rc == MX_OK; i++) {
                    const mx_arg *a = &args[i];
                    if (a->buffer) {
                        [enc setBuffer:BORROW(id<MTLBuffer>, a->buffer->mtl) offset:(NSUInteger)a->offset
                               atIndex:(NSUInteger)i];
                    } else if (a->nbytes <= MAX_SET_BYTES) {
                        [enc setBytes:a->bytes length:(NSUInteger)a->nbytes atIndex:(NSUInteger)i];
                    } else {
                        /* too large for setBytes: a buffer of its own, which the command
                           buffer keeps alive until it has run */
                        id<MTLBuffer> tmp = [BORROW(id<MTLDevice>, d->mtl)
                            newBufferWithBytes:a->bytes length:(NSUInteger)a->nbytes
                                       options:MTLResourceStorageModeShared];
                        if (!tmp) {
                            set_error("mx_dispatch: no buffer for a %llu-byte constant",
                                      (unsigned long long)a->nbytes);
                            rc = MX_OUT_OF_MEMORY;
                        } else {
                            [enc setBuffer:tmp offset:0 atIndex:(NSUInteger)i];
                        }
                    }
                }
                if (rc == MX_OK) {
                    if (shared_bytes)
                        [enc setThreadgroupMemoryLength:((NSUInteger)shared_bytes + 15) & ~(NSUInteger)15
                                                atIndex:0];
                    [enc dispatchThreadgroups:MTLSizeMake((NSUInteger)groups[0], (NSUInteger)groups[1],
                                                          (NSUInteger)groups[2])
                        threadsPerThreadgroup:MTLSizeMake(tg[0], tg[1], tg[2])];
                    count_op(s);
                }
            }
        } @catch (NSException *e) {
            set_exception("encoding a dispatch", e);
            rc = MX_ERROR;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int mx_launch(mx_kernel *k, mx_stream *s, uint64_t threads, uint32_t tg,
              const uint64_t *addrs, int n_addrs, const void *consts,
              const uint32_t *const_sizes, int n_consts) {
    if (!k || !s || tg == 0 || n_addrs < 0 || n_consts < 0 || n_addrs + n_consts > MAX_ARGS ||
        (n_addrs && !addrs) || (n_consts && (!consts || !const_sizes))) {
        set_error("mx_launch: bad arguments");
        return MX_INVALID;
    }
    if (threads == 0) return MX_OK;
    mx_arg args[MAX_ARGS];
    for (int i = 0; i < n_addrs; i++) {
        uint64_t off = 0;
        mx_buffer *b = mx_buffer_find(NULL, (const void *)(uintptr_t)addrs[i], &off);
        if (!b) {
            set_error("mx_launch: argument %d (address %#llx) is not in unified memory", i,
                      (unsigned long long)addrs[i]);
            return MX_NOT_UNIFIED;
        }
        args[i].buffer = b;
        args[i].offset = off;
        args[i].bytes = NULL;
        args[i].nbytes = 0;
    }
    const char *c = (const char *)consts;
    for (int j = 0; j < n_consts; j++) {
        mx_arg *a = &args[n_addrs + j];
        a->buffer = NULL;
        a->offset = 0;
        a->bytes = c;
        a->nbytes = const_sizes[j];
        c += const_sizes[j];
    }
    /* the same grid as the Python launcher's: rows of 2^30 threads past 2^30 */
    const uint64_t row = 1ULL << 30;
    uint64_t grid[3] = {threads <= row ? threads : row, (threads + row - 1) / row, 1};
    uint32_t group[3] = {tg, 1, 1};
    return mx_dispatch(k, s, grid, group, args, n_addrs + n_consts, 0);
}

/* ------------------------------------------------------------------------------------
 * gemm: MPSMatrixMultiplication (float32, float16)
 * ---------------------------------------------------------------------------------- */

/* One operand as MPS sees it: `rows` x `cols` stored matrices with row stride `ld` and
   batch stride `stride` (elements), from `offset` bytes into buffer. */
typedef struct {
    const char *what;
    mx_buffer *buf;
    uint64_t offset;
    int64_t rows, cols, ld, stride;
} operand;

static int check_operand(const operand *o, int64_t batch, size_t es) {
    if (!o->buf) { set_error("mx_gemm: no buffer for %s", o->what); return MX_INVALID; }
    if (o->ld < o->cols || o->ld < 1 || o->stride < 0) {
        set_error("mx_gemm: %s has row stride %lld for %lld columns and batch stride %lld",
                  o->what, (long long)o->ld, (long long)o->cols, (long long)o->stride);
        return MX_INVALID;
    }
    if (o->offset % es) {
        set_error("mx_gemm: %s starts at byte %llu, not a whole element", o->what,
                  (unsigned long long)o->offset);
        return MX_INVALID;
    }
    /* the last element read, in elements; dimensions are below 2^31 (checked) */
    double last = (double)(batch - 1) * (double)o->stride + (double)(o->rows - 1) * (double)o->ld
                  + (double)o->cols;
    if ((double)o->offset + last * (double)es > (double)o->buf->size) {
        set_error("mx_gemm: %s extends past the end of its buffer (%llu bytes)", o->what,
                  (unsigned long long)o->buf->size);
        return MX_INVALID;
    }
    return MX_OK;
}

/* MPS batches only matrices a whole number of rows apart that do not overlap; others
   (broadcast operands among them) are multiplied one batch item at a time. */
static int batchable(const operand *o, int64_t batch) {
    return batch == 1 || (o->stride % o->ld == 0 && o->stride >= o->rows * o->ld);
}

static MPSMatrix *mps_matrix(const operand *o, int64_t matrices, uint64_t extra_offset,
                             MPSDataType type, size_t es) {
    int64_t stride = matrices > 1 ? o->stride : o->rows * o->ld;
    MPSMatrixDescriptor *desc =
        [MPSMatrixDescriptor matrixDescriptorWithRows:(NSUInteger)o->rows
                                              columns:(NSUInteger)o->cols
                                             matrices:(NSUInteger)matrices
                                             rowBytes:(NSUInteger)(o->ld * (int64_t)es)
                                          matrixBytes:(NSUInteger)(stride * (int64_t)es)
                                             dataType:type];
    return [[MPSMatrix alloc] initWithBuffer:BORROW(id<MTLBuffer>, o->buf->mtl)
                                      offset:(NSUInteger)(o->offset + extra_offset)
                                  descriptor:desc];
}

static int encode_gemm(mx_stream *s, const mx_gemm_desc *g, const operand *A, const operand *B,
                       const operand *C, MPSDataType type, size_t es) {
    id<MTLDevice> dev = BORROW(id<MTLDevice>, s->dev->mtl);
    id<MTLCommandBuffer> cb = open_cb(s);
    if (!cb) return MX_ERROR;
    end_encoder(s);
    int together = batchable(A, g->batch) && batchable(B, g->batch) && batchable(C, g->batch);
    int64_t items = together ? 1 : g->batch;
    for (int64_t i = 0; i < items; i++) {
        int64_t matrices = together ? g->batch : 1;
        MPSMatrixMultiplication *mm =
            [[MPSMatrixMultiplication alloc] initWithDevice:dev
                                              transposeLeft:g->trans_a ? YES : NO
                                             transposeRight:g->trans_b ? YES : NO
                                                 resultRows:(NSUInteger)g->m
                                              resultColumns:(NSUInteger)g->n
                                            interiorColumns:(NSUInteger)g->k
                                                      alpha:g->alpha
                                                       beta:g->beta];
        if (!mm) { set_error("mx_gemm: MPSMatrixMultiplication could not be made"); return MX_ERROR; }
        mm.batchStart = 0;
        mm.batchSize = (NSUInteger)matrices;
        MPSMatrix *a = mps_matrix(A, matrices, (uint64_t)(i * A->stride) * es, type, es);
        MPSMatrix *b = mps_matrix(B, matrices, (uint64_t)(i * B->stride) * es, type, es);
        MPSMatrix *c = mps_matrix(C, matrices, (uint64_t)(i * C->stride) * es, type, es);
        if (!a || !b || !c) { set_error("mx_gemm: MPSMatrix could not be made"); return MX_ERROR; }
        [mm encodeToCommandBuffer:cb leftMatrix:a rightMatrix:b resultMatrix:c];
    }
    count_op(s);
    return MX_OK;
}

int mx_gemm(mx_stream *s, const mx_gemm_desc *g) {
    if (!s || !g || !g->a || !g->b || !g->c) { set_error("mx_gemm: bad arguments"); return MX_INVALID; }
    MPSDataType type;
    size_t es;
    switch (g->dtype) {
    case MX_GEMM_F32: type = MPSDataTypeFloat32; es = 4; break;
    case MX_GEMM_F16: type = MPSDataTypeFloat16; es = 2; break;
    case MX_GEMM_BF16:
        set_error("mx_gemm: bfloat16 matrix products are not available on Metal "
                  "(MPSMatrixMultiplication takes float32 and float16)");
        return MX_UNAVAILABLE;
    case MX_GEMM_F64:
        set_error("mx_gemm: float64 matrix products are not available on Metal (Metal has no double)");
        return MX_UNAVAILABLE;
    default:
        set_error("mx_gemm: unknown dtype %d", g->dtype);
        return MX_INVALID;
    }
    if (g->m < 0 || g->n < 0 || g->k < 0 || g->batch < 0 || g->m > 0x7fffffff ||
        g->n > 0x7fffffff || g->k > 0x7fffffff || g->batch > 0x7fffffff ||
        g->lda > 0x7fffffff || g->ldb > 0x7fffffff || g->ldc > 0x7fffffff) {
        set_error("mx_gemm: a dimension is negative or exceeds 2^31-1");
        return MX_INVALID;
    }
    if (g->m == 0 || g->n == 0 || g->batch == 0) return MX_OK;
    if (g->k == 0) {
        set_error("mx_gemm: k = 0 (an empty sum) is not available on Metal: "
                  "MPSMatrixMultiplication needs k >= 1 (fill C on the host)");
        return MX_UNAVAILABLE;
    }
    if (!MPSSupportsMTLDevice(BORROW(id<MTLDevice>, s->dev->mtl))) {
        set_error("mx_gemm: Metal Performance Shaders does not support the device %s", s->dev->info.name);
        return MX_UNAVAILABLE;
    }
    /* MPS matrices are row-major like mx's, so each operand goes as it is stored: A is
       m x k, or k x m with transposeLeft; likewise B */
    operand A = {"A", g->a, g->a_offset, g->trans_a ? g->k : g->m, g->trans_a ? g->m : g->k,
                 g->lda, g->stride_a};
    operand B = {"B", g->b, g->b_offset, g->trans_b ? g->n : g->k, g->trans_b ? g->k : g->n,
                 g->ldb, g->stride_b};
    operand C = {"C", g->c, g->c_offset, g->m, g->n, g->ldc, g->stride_c};
    int rc;
    if ((rc = check_operand(&A, g->batch, es)) || (rc = check_operand(&B, g->batch, es)) ||
        (rc = check_operand(&C, g->batch, es)))
        return rc;
    pthread_mutex_lock(&s->lock);
    @autoreleasepool {
        @try {
            rc = encode_gemm(s, g, &A, &B, &C, type, es);
        } @catch (NSException *e) {
            set_exception("MPSMatrixMultiplication", e);
            rc = MX_ERROR;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}
