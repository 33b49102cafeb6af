/* mx_cuda.c: the CUDA implementation of shim/mx_shim.h.
 *
 * libcuda.so.1 (driver API), NVRTC and cuBLAS are dlopen-ed on first use, so this file
 * compiles and loads on machines without CUDA; mx_device_count() is then 0 and
 * mx_last_error() says what was missing. Memory is managed (cuMemAllocManaged), so host and
 * device share addresses. Kernels are compiled by NVRTC to a cubin for the device's
 * architecture and cached in memory and on disk.
 */
#define _GNU_SOURCE
#include "mx_shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------
 * Minimal CUDA declarations (no CUDA headers at build time)
 * ---------------------------------------------------------------------------------- */
typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef void *CUevent;
typedef unsigned long long CUdeviceptr;
typedef struct { int type; int id; } CUmemLocation;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK 1
#define CU_DEVICE_ATTRIBUTE_WARP_SIZE 10
#define CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
#define CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY 83
#define CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS 88
#define CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS 89
#define CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN 97
#define CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES 8
#define CU_MEM_ATTACH_GLOBAL 1
#define CU_MEM_ADVISE_SET_PREFERRED_LOCATION 3
#define CU_MEM_ADVISE_SET_ACCESSED_BY 5
#define CU_MEM_LOCATION_TYPE_DEVICE 1
#define CU_MEM_LOCATION_TYPE_HOST 2
#define CU_STREAM_NON_BLOCKING 1
#define CU_EVENT_DEFAULT 0
#define CU_EVENT_DISABLE_TIMING 2

typedef int nvrtcResult;
typedef void *nvrtcProgram;

typedef int cublasStatus_t;
typedef void *cublasHandle_t;
#define CUBLAS_OP_N 0
#define CUBLAS_OP_T 1
#define CUDA_R_32F 0
#define CUDA_R_64F 1
#define CUDA_R_16F 2
#define CUDA_R_16BF 14
#define CUBLAS_COMPUTE_32F 68
#define CUBLAS_COMPUTE_64F 70
#define CUBLAS_GEMM_DEFAULT (-1)

/* ------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------- */
static __thread char err_buf[2048];

const char *mx_last_error(void) { return err_buf; }

static void set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------------------
 * Dynamic loading
 * ---------------------------------------------------------------------------------- */
static struct {
    CUresult (*Init)(unsigned);
    CUresult (*DriverGetVersion)(int *);
    CUresult (*DeviceGetCount)(int *);
    CUresult (*DeviceGet)(CUdevice *, int);
    CUresult (*DeviceGetName)(char *, int, CUdevice);
    CUresult (*DeviceTotalMem)(size_t *, CUdevice);
    CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*CtxSetCurrent)(CUcontext);
    CUresult (*CtxSynchronize)(void);
    CUresult (*MemAllocManaged)(CUdeviceptr *, size_t, unsigned);
    CUresult (*MemFree)(CUdeviceptr);
    CUresult (*MemAlloc)(CUdeviceptr *, size_t);
    CUresult (*MemGetInfo)(size_t *, size_t *);
    CUresult (*MemAdvise)(CUdeviceptr, size_t, int, CUmemLocation);
    CUresult (*ModuleLoadData)(CUmodule *, const void *);
    CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*FuncSetAttribute)(CUfunction, int, int);
    CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, CUstream, void **, void **);
    CUresult (*StreamCreate)(CUstream *, unsigned);
    CUresult (*StreamSynchronize)(CUstream);
    CUresult (*StreamDestroy)(CUstream);
    CUresult (*EventCreate)(CUevent *, unsigned);
    CUresult (*EventRecord)(CUevent, CUstream);
    CUresult (*StreamWaitEvent)(CUstream, CUevent, unsigned);
    CUresult (*EventSynchronize)(CUevent);
    CUresult (*EventElapsedTime)(float *, CUevent, CUevent);
    CUresult (*EventDestroy)(CUevent);
    CUresult (*GetErrorString)(CUresult, const char **);
} cu;

static struct {
    nvrtcResult (*Version)(int *, int *);
    nvrtcResult (*CreateProgram)(nvrtcProgram *, const char *, const char *, int,
                                 const char *const *, const char *const *);
    nvrtcResult (*CompileProgram)(nvrtcProgram, int, const char *const *);
    nvrtcResult (*GetProgramLogSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetProgramLog)(nvrtcProgram, char *);
    nvrtcResult (*GetCUBINSize)(nvrtcProgram, size_t *);
    nvrtcResult (*GetCUBIN)(nvrtcProgram, char *);
    nvrtcResult (*AddNameExpression)(nvrtcProgram, const char *);
    nvrtcResult (*GetLoweredName)(nvrtcProgram, const char *, const char **);
    nvrtcResult (*DestroyProgram)(nvrtcProgram *);
    const char *(*GetErrorString)(nvrtcResult);
} nvrtc;

static struct {
    cublasStatus_t (*Create)(cublasHandle_t *);
    cublasStatus_t (*SetStream)(cublasHandle_t, CUstream);
    cublasStatus_t (*GetVersion)(cublasHandle_t, int *);
    cublasStatus_t (*SetWorkspace)(cublasHandle_t, void *, size_t);   /* optional (CUDA 11.4+) */
    cublasStatus_t (*GemmEx)(cublasHandle_t, int, int, int, int, int, const void *,
                             const void *, int, int, const void *, int, int, const void *,
                             void *, int, int, int, int);                /* optional */
    cublasStatus_t (*GemmStridedBatchedEx)(cublasHandle_t, int, int, int, int, int,
                                           const void *, const void *, int, int, long long,
                                           const void *, int, int, long long, const void *,
                                           void *, int, int, long long, int, int, int);
} cublas;

static void *open_first(const char *env, const char *const *names, char *which, size_t n) {
    const char *override = getenv(env);
    if (override && *override) {
        void *h = dlopen(override, RTLD_NOW | RTLD_LOCAL);
        if (h) snprintf(which, n, "%s", override);
        return h;
    }
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) { snprintf(which, n, "%s", names[i]); return h; }
    }
    return NULL;
}

#define LOAD(lib, table, field, sym)                                            \
    do {                                                                        \
        *(void **)(&table.field) = dlsym(lib, sym);                             \
        if (!table.field) { set_error("%s lacks %s", libname, sym); return -1; } \
    } while (0)

static int load_driver(void) {
    static const char *names[] = {"libcuda.so.1", "libcuda.so", NULL};
    char libname[256] = "libcuda.so.1";
    void *h = open_first("MX_CUDA_DRIVER", names, libname, sizeof libname);
    if (!h) { set_error("CUDA driver not found (libcuda.so.1): %s", dlerror()); return -1; }
    LOAD(h, cu, Init, "cuInit");
    LOAD(h, cu, DriverGetVersion, "cuDriverGetVersion");
    LOAD(h, cu, DeviceGetCount, "cuDeviceGetCount");
    LOAD(h, cu, DeviceGet, "cuDeviceGet");
    LOAD(h, cu, DeviceGetName, "cuDeviceGetName");
    LOAD(h, cu, DeviceTotalMem, "cuDeviceTotalMem_v2");
    LOAD(h, cu, DeviceGetAttribute, "cuDeviceGetAttribute");
    LOAD(h, cu, DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    LOAD(h, cu, CtxSetCurrent, "cuCtxSetCurrent");
    LOAD(h, cu, CtxSynchronize, "cuCtxSynchronize");
    LOAD(h, cu, MemAllocManaged, "cuMemAllocManaged");
    LOAD(h, cu, MemFree, "cuMemFree_v2");
    LOAD(h, cu, MemAlloc, "cuMemAlloc_v2");
    LOAD(h, cu, MemGetInfo, "cuMemGetInfo_v2");
    LOAD(h, cu, ModuleLoadData, "cuModuleLoadData");
    LOAD(h, cu, ModuleGetFunction, "cuModuleGetFunction");
    LOAD(h, cu, FuncSetAttribute, "cuFuncSetAttribute");
    LOAD(h, cu, LaunchKernel, "cuLaunchKernel");
    LOAD(h, cu, StreamCreate, "cuStreamCreate");
    LOAD(h, cu, StreamSynchronize, "cuStreamSynchronize");
    LOAD(h, cu, StreamDestroy, "cuStreamDestroy_v2");
    LOAD(h, cu, EventCreate, "cuEventCreate");
    LOAD(h, cu, EventRecord, "cuEventRecord");
    LOAD(h, cu, StreamWaitEvent, "cuStreamWaitEvent");
    LOAD(h, cu, EventSynchronize, "cuEventSynchronize");
    LOAD(h, cu, EventDestroy, "cuEventDestroy_v2");
    LOAD(h, cu, GetErrorString, "cuGetErrorString");
    *(void **)(&cu.MemAdvise) = dlsym(h, "cuMemAdvise_v2");   /* optional (CUDA 12.2+) */
    *(void **)(&cu.EventElapsedTime) = dlsym(h, "cuEventElapsedTime_v2");
    if (!cu.EventElapsedTime) LOAD(h, cu, EventElapsedTime, "cuEventElapsedTime");
    return 0;
}

static char nvrtc_name[256];
static char cublas_name[256];

static int load_nvrtc(void) {
    static const char *names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", NULL};
    char libname[256] = "libnvrtc";
    void *h = open_first("MX_NVRTC_LIBRARY", names, nvrtc_name, sizeof nvrtc_name);
    if (!h) { set_error("NVRTC not found (libnvrtc.so.13/.12): %s", dlerror()); return -1; }
    snprintf(libname, sizeof libname, "%s", nvrtc_name);
    LOAD(h, nvrtc, Version, "nvrtcVersion");
    LOAD(h, nvrtc, CreateProgram, "nvrtcCreateProgram");
    LOAD(h, nvrtc, CompileProgram, "nvrtcCompileProgram");
    LOAD(h, nvrtc, GetProgramLogSize, "nvrtcGetProgramLogSize");
    LOAD(h, nvrtc, GetProgramLog, "nvrtcGetProgramLog");
    LOAD(h, nvrtc, GetCUBINSize, "nvrtcGetCUBINSize");
    LOAD(h, nvrtc, GetCUBIN, "nvrtcGetCUBIN");
    LOAD(h, nvrtc, AddNameExpression, "nvrtcAddNameExpression");
    LOAD(h, nvrtc, GetLoweredName, "nvrtcGetLoweredName");
    LOAD(h, nvrtc, DestroyProgram, "nvrtcDestroyProgram");
    LOAD(h, nvrtc, GetErrorString, "nvrtcGetErrorString");
    return 0;
}

static int load_cublas(void) {
    static const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so", NULL};
    char libname[256] = "libcublas";
    void *h = open_first("MX_CUBLAS_LIBRARY", names, cublas_name, sizeof cublas_name);
    if (!h) { set_error("cuBLAS not found (libcublas.so.13/.12): %s", dlerror()); return -1; }
    snprintf(libname, sizeof libname, "%s", cublas_name);
    LOAD(h, cublas, Create, "cublasCreate_v2");
    LOAD(h, cublas, SetStream, "cublasSetStream_v2");
    LOAD(h, cublas, GetVersion, "cublasGetVersion_v2");
    LOAD(h, cublas, GemmStridedBatchedEx, "cublasGemmStridedBatchedEx");
    *(void **)(&cublas.SetWorkspace) = dlsym(h, "cublasSetWorkspace_v2");
    *(void **)(&cublas.GemmEx) = dlsym(h, "cublasGemmEx");
    return 0;
}

static const char *cu_str(CUresult r) {
    const char *s = NULL;
    if (cu.GetErrorString && cu.GetErrorString(r, &s) == CUDA_SUCCESS && s) return s;
    return "unknown CUDA error";
}

#define CU_TRY(call, what)                                                         \
    do {                                                                           \
        CUresult r_ = (call);                                                      \
        if (r_ != CUDA_SUCCESS) {                                                  \
            set_error("%s failed: %s (CUDA error %d)", what, cu_str(r_), r_);       \
            return r_ == CUDA_ERROR_OUT_OF_MEMORY ? MX_OUT_OF_MEMORY : MX_ERROR;    \
        }                                                                          \
    } while (0)

/* ------------------------------------------------------------------------------------
 * Devices
 * ---------------------------------------------------------------------------------- */
struct mx_device {
    int index;
    CUdevice dev;
    CUcontext ctx;
    int cc_major, cc_minor;
    mx_device_info info;
    pthread_mutex_t lock;        /* kernel cache, cuBLAS handle */
    cublasHandle_t blas;
    int blas_tried;
    CUstream blas_stream;        /* the stream the handle was last bound to */
    CUdeviceptr blas_workspace;  /* cuBLAS's workspace, device memory (0: its default) */
    mx_stream *streams;          /* every stream made, for mx_device_synchronize */
};

struct mx_stream { mx_device *dev; CUstream s; mx_stream *next; };
struct mx_event { mx_device *dev; CUevent e; };

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = MX_UNAVAILABLE;
static char init_error[1024];
static int n_devices = 0;
static mx_device *devices[16];
static pthread_mutex_t devices_lock = PTHREAD_MUTEX_INITIALIZER;
static mx_device *default_dev = NULL;   /* the first device opened: the pool's */
static __thread CUcontext thread_ctx = NULL;

static void init_driver(void) {
    if (load_driver() != 0) { snprintf(init_error, sizeof init_error, "%s", err_buf); return; }
    CUresult r = cu.Init(0);
    if (r != CUDA_SUCCESS) {
        snprintf(init_error, sizeof init_error, "cuInit failed: %s (CUDA error %d)", cu_str(r), r);
        return;
    }
    if (cu.DeviceGetCount(&n_devices) != CUDA_SUCCESS || n_devices <= 0) {
        n_devices = 0;
        snprintf(init_error, sizeof init_error, "the CUDA driver reports no device");
        return;
    }
    init_status = MX_OK;
}

static int ensure_init(void) {
    pthread_once(&init_once, init_driver);
    if (init_status != MX_OK) { set_error("%s", init_error); return MX_UNAVAILABLE; }
    return MX_OK;
}

static int make_current(mx_device *d) {
    if (thread_ctx == d->ctx) return MX_OK;
    CU_TRY(cu.CtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    thread_ctx = d->ctx;
    return MX_OK;
}

int mx_device_count(void) {
    if (ensure_init() != MX_OK) return 0;
    return n_devices;
}

static int attr(mx_device *d, int which) {
    int v = 0;
    cu.DeviceGetAttribute(&v, which, d->dev);
    return v;
}

mx_device *mx_device_open(int index) {
    if (ensure_init() != MX_OK) return NULL;
    if (index < 0 || index >= n_devices || index >= 16) {
        set_error("no CUDA device %d (there are %d)", index, n_devices);
        return NULL;
    }
    pthread_mutex_lock(&devices_lock);
    mx_device *d = devices[index];
    if (d) { pthread_mutex_unlock(&devices_lock); return d; }
    d = calloc(1, sizeof *d);
    if (!d) { pthread_mutex_unlock(&devices_lock); set_error("out of host memory"); return NULL; }
    d->index = index;
    pthread_mutex_init(&d->lock, NULL);
    CUresult r = cu.DeviceGet(&d->dev, index);
    if (r == CUDA_SUCCESS) r = cu.DevicePrimaryCtxRetain(&d->ctx, d->dev);
    if (r != CUDA_SUCCESS) {
        pthread_mutex_unlock(&devices_lock);
        set_error("opening CUDA device %d failed: %s (CUDA error %d)", index, cu_str(r), r);
        free(d);
        return NULL;
    }
    mx_device_info *in = &d->info;
    cu.DeviceGetName(in->name, sizeof in->name, d->dev);
    d->cc_major = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    d->cc_minor = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    snprintf(in->architecture, sizeof in->architecture, "sm_%d%d", d->cc_major, d->cc_minor);
    snprintf(in->backend, sizeof in->backend, "cuda");
    size_t total = 0;
    cu.DeviceTotalMem(&total, d->dev);
    in->memory_size = total;
    in->max_buffer_length = total;
    in->max_threads_per_threadgroup = attr(d, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
    in->multiprocessor_count = attr(d, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    in->simd_width = attr(d, CU_DEVICE_ATTRIBUTE_WARP_SIZE);
    in->unified_memory = attr(d, CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY) ? 1 : 0;
    in->concurrent_managed_access = attr(d, CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS) ? 1 : 0;
    in->pageable_memory_access = attr(d, CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS) ? 1 : 0;
    int drv = 0;
    cu.DriverGetVersion(&drv);
    snprintf(in->versions, sizeof in->versions, "CUDA driver %d.%d", drv / 1000, (drv % 1000) / 10);
    devices[index] = d;
    if (!default_dev) default_dev = d;
    pthread_mutex_unlock(&devices_lock);
    return d;
}

int mx_device_get_info(mx_device *d, mx_device_info *info) {
    if (!d) { set_error("no device"); return MX_INVALID; }
    /* the compiler and BLAS versions are known once they have been loaded */
    char extra[160] = "";
    int maj = 0, min = 0;
    if (nvrtc.Version && nvrtc.Version(&maj, &min) == 0)
        snprintf(extra, sizeof extra, ", NVRTC %d.%d", maj, min);
    *info = d->info;
    size_t used = strlen(info->versions);
    snprintf(info->versions + used, sizeof info->versions - used, "%s", extra);
    if (d->blas) {
        int v = 0;
        cublas.GetVersion(d->blas, &v);
        used = strlen(info->versions);
        snprintf(info->versions + used, sizeof info->versions - used, ", cuBLAS %d.%d.%d",
                 v / 10000, (v / 100) % 100, v % 100);
    }
    return MX_OK;
}

int mx_device_memory(mx_device *d, uint64_t *free_bytes, uint64_t *total_bytes) {
    if (!d) { set_error("no device"); return MX_INVALID; }
    int rc = make_current(d);
    if (rc) return rc;
    size_t f = 0, t = 0;
    CU_TRY(cu.MemGetInfo(&f, &t), "cuMemGetInfo");
    *free_bytes = f;
    *total_bytes = t;
    return MX_OK;
}

int mx_device_synchronize(mx_device *d) {
    if (!d) { set_error("no device"); return MX_INVALID; }
    int rc = make_current(d);
    if (rc) return rc;
    CU_TRY(cu.CtxSynchronize(), "cuCtxSynchronize");
    return MX_OK;
}

/* ------------------------------------------------------------------------------------
 * Memory: a pool of managed memory.
 *
 * Blocks up to SMALL_MAX bytes are carved from SLAB-sized managed allocations by size class
 * (powers of two); larger ones are allocations of their own. Every allocation the pool holds
 * from the driver is a "region", kept in an address-sorted table so that any address inside
 * one can be traced to its region (mx_buffer_find). Free lists live in host memory, never
 * in the managed blocks, so recycling a block does not pull its pages back to the host.
 *
 * The host writes a small header in front of every block it gets from mx_host_alloc (mx's
 * allocator records the block's size there). A host write to a page the GPU last wrote
 * moves that page back to the host, and the GPU's next touch moves it back: tens of
 * microseconds each way. So the pool keeps those headers off the GPU's pages:
 *   - a large block starts HEADER_GAP bytes into its region: the header sits alone at the
 *     end of the region's first chunk, which is advised to stay on the host;
 *   - slabs of small blocks are advised to stay on the host and be mapped for the GPU: the
 *     GPU reads and writes small arrays in place over the bus instead of moving pages.
 *
 * The pool refuses to grow beyond its cap (the device's memory less a reserve): asking the
 * driver for more managed memory than the card holds can hang the GPU.
 * ---------------------------------------------------------------------------------- */
#define MIN_CLASS 8              /* 256 B */
#define MAX_CLASS 16             /* 64 KiB */
#define SMALL_MAX ((size_t)1 << MAX_CLASS)
#define SLAB ((size_t)2 << 20)
#define LARGE_ALIGN ((size_t)64 << 10)
#define HEADER_GAP ((size_t)64 << 10)
#define HOST_HEADER 64           /* the bytes mx's allocator writes in front of a block */

struct mx_buffer {
    CUdeviceptr base;
    uint64_t size;
    int size_class;              /* slab: its block class; 0: a single large block */
    int standalone;              /* made by mx_buffer_alloc (freed by mx_buffer_free) */
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
        if ((uintptr_t)regions[mid]->base <= addr) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static mx_buffer *region_of(uintptr_t addr) {
    size_t i = region_index(addr);
    if (i == 0) return NULL;
    mx_buffer *r = regions[i - 1];
    return addr < (uintptr_t)r->base + r->size ? r : NULL;
}

static int region_insert(mx_buffer *r) {
    if (n_regions == cap_regions) {
        size_t cap = cap_regions ? cap_regions * 2 : 64;
        mx_buffer **t = realloc(regions, cap * sizeof *t);
        if (!t) return -1;
        regions = t;
        cap_regions = cap;
    }
    size_t i = region_index((uintptr_t)r->base);
    memmove(regions + i + 1, regions + i, (n_regions - i) * sizeof *regions);
    regions[i] = r;
    n_regions++;
    return 0;
}

static void region_remove(mx_buffer *r) {
    size_t i = region_index((uintptr_t)r->base);
    if (i == 0 || regions[i - 1] != r) return;
    memmove(regions + i - 1, regions + i, (n_regions - i) * sizeof *regions);
    n_regions--;
}

static uint64_t default_limit(mx_device *d) {
    uint64_t total = d->info.memory_size;
    uint64_t reserve = total / 16 > ((uint64_t)1 << 30) ? total / 16 : ((uint64_t)1 << 30);
    return total > reserve ? total - reserve : total / 2;
}

/* Ask the driver for managed memory, under the cap and within what the card has free. */
static mx_buffer *region_new(mx_device *d, uint64_t size, int size_class) {
    if (!pool_limit) pool_limit = default_limit(d);
    if (pool_reserved + size > pool_limit) {
        set_error("out of GPU memory: %llu bytes requested with %llu of %llu bytes already in use",
                  (unsigned long long)size, (unsigned long long)pool_reserved,
                  (unsigned long long)pool_limit);
        return NULL;
    }
    if (make_current(d) != MX_OK) return NULL;
    size_t f = 0, t = 0;
    if (cu.MemGetInfo(&f, &t) == CUDA_SUCCESS && size + ((uint64_t)256 << 20) > f) {
        set_error("out of GPU memory: %llu bytes requested, %llu bytes free on the device",
                  (unsigned long long)size, (unsigned long long)f);
        return NULL;
    }
    mx_buffer *r = calloc(1, sizeof *r);
    if (!r) { set_error("out of host memory"); return NULL; }
    CUresult rc = cu.MemAllocManaged(&r->base, size, CU_MEM_ATTACH_GLOBAL);
    if (rc != CUDA_SUCCESS) {
        set_error("cuMemAllocManaged(%llu bytes) failed: %s", (unsigned long long)size, cu_str(rc));
        free(r);
        return NULL;
    }
    r->size = size;
    r->size_class = size_class;
    if (region_insert(r) != 0) {
        cu.MemFree(r->base);
        free(r);
        set_error("out of host memory");
        return NULL;
    }
    pool_reserved += size;
    return r;
}

/* Keep [ptr, ptr + n) in host memory, mapped for the device (best effort: advice is only
   a hint, and older drivers lack cuMemAdvise_v2). */
static void advise_host(mx_device *d, CUdeviceptr ptr, size_t n) {
    if (!cu.MemAdvise) return;
    CUmemLocation host = {CU_MEM_LOCATION_TYPE_HOST, 0};
    CUmemLocation gpu = {CU_MEM_LOCATION_TYPE_DEVICE, d->index};
    cu.MemAdvise(ptr, n, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host);
    cu.MemAdvise(ptr, n, CU_MEM_ADVISE_SET_ACCESSED_BY, gpu);
}

static void region_release(mx_buffer *r) {
    region_remove(r);
    pool_reserved -= r->size;
    cu.MemFree(r->base);
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
            advise_host(d, slab->base, SLAB);
            size_t block = (size_t)1 << c;
            for (size_t off = SLAB; off >= block; off -= block)
                if (push(s, (char *)(uintptr_t)slab->base + off - block) != 0) break;
        }
        pool_in_use += (size_t)1 << c;
        return s->items[--s->n];
    }
    uint64_t size = HEADER_GAP + ((nbytes + LARGE_ALIGN - 1) & ~(uint64_t)(LARGE_ALIGN - 1));
    mx_buffer *r = region_new(d, size, 0);
    if (!r) return NULL;
    advise_host(d, r->base, HEADER_GAP);
    pool_in_use += size;
    /* the data (after the host's header) starts at base + HEADER_GAP */
    return (void *)(uintptr_t)(r->base + HEADER_GAP - HOST_HEADER);
}

void *mx_host_alloc(size_t nbytes) {
    mx_device *d = default_dev;
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
        region_release(r);
    }
    pthread_mutex_unlock(&pool_lock);
}

int mx_pool_stats(uint64_t *reserved, uint64_t *in_use, uint64_t *limit) {
    pthread_mutex_lock(&pool_lock);
    if (!pool_limit && default_dev) pool_limit = default_limit(default_dev);
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
    region_release(buf);
    pthread_mutex_unlock(&pool_lock);
}

void *mx_buffer_contents(mx_buffer *buf) { return buf ? (void *)(uintptr_t)buf->base : NULL; }
uint64_t mx_buffer_length(mx_buffer *buf) { return buf ? buf->size : 0; }

mx_buffer *mx_buffer_find(mx_device *d, const void *ptr, uint64_t *offset) {
    (void)d;
    pthread_mutex_lock(&pool_lock);
    mx_buffer *r = region_of((uintptr_t)ptr);
    pthread_mutex_unlock(&pool_lock);
    if (r && offset) *offset = (uintptr_t)ptr - (uintptr_t)r->base;
    return r;
}

/* ------------------------------------------------------------------------------------
 * Kernels: NVRTC with an in-memory and an on-disk cache
 * ---------------------------------------------------------------------------------- */
struct mx_kernel { CUfunction fn; int shared_set; };

struct mx_library {
    mx_device *dev;
    uint64_t key[2];
    CUmodule module;
    int n;
    char **names;
    mx_kernel *kernels;
    int from_disk;
    mx_library *next;
};

static mx_library *libraries = NULL;    /* in-memory cache (guarded by the device lock) */
static pthread_once_t nvrtc_once = PTHREAD_ONCE_INIT;
static int nvrtc_status = MX_UNAVAILABLE;
static char nvrtc_error[1024];

static void init_nvrtc(void) {
    if (load_nvrtc() == 0) nvrtc_status = MX_OK;
    else snprintf(nvrtc_error, sizeof nvrtc_error, "%s", err_buf);
}

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

static char include_buf[1024];
static pthread_once_t include_once = PTHREAD_ONCE_INIT;

static void find_include_dir(void) {
    const char *envs[] = {"CUDA_HOME", "CUDA_PATH", "CUDA_ROOT", NULL};
    for (int i = 0; envs[i]; i++) {
        const char *root = getenv(envs[i]);
        if (!root || !*root) continue;
        char probe[1200];
        snprintf(probe, sizeof probe, "%s/include/cuda_fp16.h", root);
        if (access(probe, R_OK) == 0) {
            snprintf(include_buf, sizeof include_buf, "%s/include", root);
            return;
        }
    }
    if (access("/usr/local/cuda/include/cuda_fp16.h", R_OK) == 0)
        snprintf(include_buf, sizeof include_buf, "/usr/local/cuda/include");
}

/* Where NVRTC finds cuda_fp16.h and cuda_bf16.h (NULL when nowhere); compiles run in many
   threads at once, hence the once-guard. */
static const char *include_dir(void) {
    pthread_once(&include_once, find_include_dir);
    return include_buf[0] ? include_buf : NULL;
}

static void cache_path(const uint64_t *key, char *out, size_t n) {
    const char *dir = getenv("MX_CACHE_DIR");
    char base[900];
    if (dir && *dir) snprintf(base, sizeof base, "%s", dir);
    else if (getenv("XDG_CACHE_HOME") && *getenv("XDG_CACHE_HOME"))
        snprintf(base, sizeof base, "%s/mx", getenv("XDG_CACHE_HOME"));
    else if (getenv("HOME")) snprintf(base, sizeof base, "%s/.cache/mx", getenv("HOME"));
    else { out[0] = 0; return; }
    char sub[1000];
    snprintf(sub, sizeof sub, "%s/cuda", base);
    mkdir(base, 0755);
    mkdir(sub, 0755);
    snprintf(out, n, "%s/%016llx%016llx.cubin", sub, (unsigned long long)key[0],
             (unsigned long long)key[1]);
}

/* Disk format: "MXCUBIN1", u32 count, per name (u32 length, lowered name), u64 size, cubin. */
static int write_cache(const char *path, char **lowered, int n, const char *cubin, size_t size) {
    if (!path[0]) return -1;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    uint32_t cnt = (uint32_t)n;
    int ok = fwrite("MXCUBIN1", 1, 8, f) == 8 && fwrite(&cnt, 4, 1, f) == 1;
    for (int i = 0; ok && i < n; i++) {
        uint32_t len = (uint32_t)strlen(lowered[i]);
        ok = fwrite(&len, 4, 1, f) == 1 && fwrite(lowered[i], 1, len, f) == len;
    }
    uint64_t sz = size;
    ok = ok && fwrite(&sz, 8, 1, f) == 1 && fwrite(cubin, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) { unlink(tmp); return -1; }
    return 0;
}

static char *read_cache(const char *path, int n, char **lowered, size_t *size) {
    if (!path[0]) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char magic[8];
    uint32_t cnt = 0;
    char *cubin = NULL;
    int i = 0, ok = fread(magic, 1, 8, f) == 8 && memcmp(magic, "MXCUBIN1", 8) == 0 &&
                    fread(&cnt, 4, 1, f) == 1 && cnt == (uint32_t)n;
    for (; ok && i < n; i++) {
        uint32_t len = 0;
        ok = fread(&len, 4, 1, f) == 1 && len < 65536;
        if (!ok) break;
        lowered[i] = malloc(len + 1);
        ok = lowered[i] && fread(lowered[i], 1, len, f) == len;
        if (ok) lowered[i][len] = 0;
    }
    uint64_t sz = 0;
    ok = ok && fread(&sz, 8, 1, f) == 1 && sz > 0 && sz < ((uint64_t)1 << 31);
    if (ok) {
        cubin = malloc(sz);
        ok = cubin && fread(cubin, 1, sz, f) == sz;
    }
    fclose(f);
    if (!ok) {
        for (int j = 0; j < n; j++) { free(lowered[j]); lowered[j] = NULL; }
        free(cubin);
        return NULL;
    }
    *size = sz;
    return cubin;
}

#define MAX_OPTS 64

static char *compile_nvrtc(mx_device *d, const char *source, const char *options,
                           const char *const *names, int n, char **lowered, size_t *size) {
    /* options: ours, then the caller's, split on whitespace */
    char arch[64], inc[1100], ccl[1100];
    const char *opts[MAX_OPTS];
    int no = 0;
    snprintf(arch, sizeof arch, "--gpu-architecture=sm_%d%d", d->cc_major, d->cc_minor);
    opts[no++] = arch;
    opts[no++] = "--std=c++17";
    opts[no++] = "--device-as-default-execution-space";
    const char *dir = include_dir();
    if (dir) {
        snprintf(inc, sizeof inc, "--include-path=%s", dir);
        opts[no++] = inc;
        snprintf(ccl, sizeof ccl, "--include-path=%s/cccl", dir);
        opts[no++] = ccl;
    }
    char *copy = strdup(options ? options : "");
    if (!copy) { set_error("out of host memory"); return NULL; }
    for (char *tok = strtok(copy, " \t\n"); tok && no < MAX_OPTS; tok = strtok(NULL, " \t\n"))
        opts[no++] = tok;

    nvrtcProgram prog = NULL;
    nvrtcResult r = nvrtc.CreateProgram(&prog, source, "mx_kernels.cu", 0, NULL, NULL);
    if (r != 0) { set_error("nvrtcCreateProgram: %s", nvrtc.GetErrorString(r)); free(copy); return NULL; }
    for (int i = 0; i < n; i++) nvrtc.AddNameExpression(prog, names[i]);
    r = nvrtc.CompileProgram(prog, no, opts);
    free(copy);
    if (r != 0) {
        size_t log_size = 0;
        nvrtc.GetProgramLogSize(prog, &log_size);
        char *log = malloc(log_size + 1);
        if (log) { nvrtc.GetProgramLog(prog, log); log[log_size] = 0; }
        set_error("NVRTC could not compile the kernels (%s)%s:\n%s", nvrtc.GetErrorString(r),
                  dir ? "" : "; CUDA headers not found: set CUDA_HOME", log ? log : "");
        free(log);
        nvrtc.DestroyProgram(&prog);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const char *low = NULL;
        if (nvrtc.GetLoweredName(prog, names[i], &low) != 0 || !low) {
            set_error("NVRTC has no kernel named %s", names[i]);
            for (int j = 0; j < i; j++) { free(lowered[j]); lowered[j] = NULL; }
            nvrtc.DestroyProgram(&prog);
            return NULL;
        }
        lowered[i] = strdup(low);
    }
    nvrtc.GetCUBINSize(prog, size);
    char *cubin = malloc(*size);
    if (cubin) nvrtc.GetCUBIN(prog, cubin);
    nvrtc.DestroyProgram(&prog);
    if (!cubin) set_error("out of host memory");
    return cubin;
}

static mx_library *find_library(mx_device *d, const uint64_t *key) {
    for (mx_library *l = libraries; l; l = l->next)
        if (l->dev == d && l->key[0] == key[0] && l->key[1] == key[1]) return l;
    return NULL;
}

mx_library *mx_library_new(mx_device *d, const char *source, const char *options,
                           const char *const *names, int n) {
    if (!d || !source || n < 0 || (n > 0 && !names)) { set_error("mx_library_new: bad arguments"); return NULL; }
    pthread_once(&nvrtc_once, init_nvrtc);
    if (nvrtc_status != MX_OK) { set_error("%s", nvrtc_error); return NULL; }
    int maj = 0, min = 0;
    nvrtc.Version(&maj, &min);

    uint64_t key[2] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    char meta[128];
    snprintf(meta, sizeof meta, "abi%d nvrtc%d.%d sm_%d%d", MX_SHIM_ABI_VERSION, maj, min,
             d->cc_major, d->cc_minor);
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
    mx_library *lib = calloc(1, sizeof *lib);
    char **lowered = calloc(n ? n : 1, sizeof *lowered);
    if (!lib || !lowered) goto oom;
    lib->dev = d;
    lib->key[0] = key[0];
    lib->key[1] = key[1];
    lib->n = n;

    char path[1200];
    cache_path(key, path, sizeof path);
    size_t size = 0;
    char *cubin = read_cache(path, n, lowered, &size);
    lib->from_disk = cubin != NULL;
    if (!cubin) {
        cubin = compile_nvrtc(d, source, options, names, n, lowered, &size);
        if (!cubin) goto fail;
        write_cache(path, lowered, n, cubin, size);
    }
    if (make_current(d) != MX_OK) { free(cubin); goto fail; }
    CUresult r = cu.ModuleLoadData(&lib->module, cubin);
    free(cubin);
    if (r != CUDA_SUCCESS) {
        set_error("cuModuleLoadData failed: %s", cu_str(r));
        if (lib->from_disk) unlink(path);   /* a stale or damaged cache entry */
        goto fail;
    }
    lib->names = calloc(n ? n : 1, sizeof *lib->names);
    lib->kernels = calloc(n ? n : 1, sizeof *lib->kernels);
    if (!lib->names || !lib->kernels) goto oom;
    for (int i = 0; i < n; i++) {
        r = cu.ModuleGetFunction(&lib->kernels[i].fn, lib->module, lowered[i]);
        if (r != CUDA_SUCCESS) {
            set_error("kernel %s (%s) not found: %s", names[i], lowered[i], cu_str(r));
            goto fail;
        }
        lib->names[i] = strdup(names[i]);
    }
    for (int i = 0; i < n; i++) free(lowered[i]);
    free(lowered);
    pthread_mutex_lock(&d->lock);
    found = find_library(d, key);
    if (!found) {
        lib->next = libraries;
        libraries = lib;
    }
    pthread_mutex_unlock(&d->lock);
    if (found) {   /* another thread won: keep its library (the module stays loaded) */
        for (int i = 0; i < n; i++) free(lib->names[i]);
        free(lib->names);
        free(lib->kernels);
        free(lib);
        return found;
    }
    return lib;
oom:
    set_error("out of host memory");
fail:
    if (lowered) for (int i = 0; i < n; i++) free(lowered[i]);
    free(lowered);
    if (lib) {
        if (lib->names) for (int i = 0; i < n; i++) free(lib->names[i]);
        free(lib->names);
        free(lib->kernels);
        free(lib);
    }
    return NULL;
}

mx_kernel *mx_library_kernel(mx_library *lib, const char *name) {
    if (!lib || !name) { set_error("mx_library_kernel: bad arguments"); return NULL; }
    for (int i = 0; i < lib->n; i++)
        if (lib->names[i] && strcmp(lib->names[i], name) == 0) return &lib->kernels[i];
    set_error("the library has no kernel %s", name);
    return NULL;
}

int mx_library_was_cached(mx_library *lib) { return lib ? lib->from_disk : 0; }

/* ------------------------------------------------------------------------------------
 * Streams, events, dispatch
 * ---------------------------------------------------------------------------------- */
mx_stream *mx_stream_new(mx_device *d) {
    if (!d) { set_error("no device"); return NULL; }
    if (make_current(d) != MX_OK) return NULL;
    mx_stream *s = calloc(1, sizeof *s);
    if (!s) { set_error("out of host memory"); return NULL; }
    CUresult r = cu.StreamCreate(&s->s, CU_STREAM_NON_BLOCKING);
    if (r != CUDA_SUCCESS) { set_error("cuStreamCreate failed: %s", cu_str(r)); free(s); return NULL; }
    s->dev = d;
    pthread_mutex_lock(&d->lock);
    s->next = d->streams;
    d->streams = s;
    pthread_mutex_unlock(&d->lock);
    return s;
}

void *mx_stream_native(mx_stream *s) { return s ? (void *)s->s : NULL; }

int mx_stream_synchronize(mx_stream *s) {
    if (!s) { set_error("no stream"); return MX_INVALID; }
    int rc = make_current(s->dev);
    if (rc) return rc;
    CU_TRY(cu.StreamSynchronize(s->s), "cuStreamSynchronize");
    return MX_OK;
}

void mx_stream_free(mx_stream *s) {
    if (!s) return;
    mx_device *d = s->dev;
    make_current(d);
    cu.StreamSynchronize(s->s);
    cu.StreamDestroy(s->s);
    pthread_mutex_lock(&d->lock);
    for (mx_stream **p = &d->streams; *p; p = &(*p)->next)
        if (*p == s) { *p = s->next; break; }
    pthread_mutex_unlock(&d->lock);
    free(s);
}

mx_event *mx_event_new(mx_device *d, int timing) {
    if (!d) { set_error("no device"); return NULL; }
    if (make_current(d) != MX_OK) return NULL;
    mx_event *e = calloc(1, sizeof *e);
    if (!e) { set_error("out of host memory"); return NULL; }
    CUresult r = cu.EventCreate(&e->e, timing ? CU_EVENT_DEFAULT : CU_EVENT_DISABLE_TIMING);
    if (r != CUDA_SUCCESS) { set_error("cuEventCreate failed: %s", cu_str(r)); free(e); return NULL; }
    e->dev = d;
    return e;
}

int mx_event_record(mx_event *e, mx_stream *s) {
    if (!e || !s) { set_error("no event or stream"); return MX_INVALID; }
    int rc = make_current(s->dev);
    if (rc) return rc;
    CU_TRY(cu.EventRecord(e->e, s->s), "cuEventRecord");
    return MX_OK;
}

int mx_stream_wait_event(mx_stream *s, mx_event *e) {
    if (!e || !s) { set_error("no event or stream"); return MX_INVALID; }
    int rc = make_current(s->dev);
    if (rc) return rc;
    CU_TRY(cu.StreamWaitEvent(s->s, e->e, 0), "cuStreamWaitEvent");
    return MX_OK;
}

int mx_event_synchronize(mx_event *e) {
    if (!e) { set_error("no event"); return MX_INVALID; }
    int rc = make_current(e->dev);
    if (rc) return rc;
    CU_TRY(cu.EventSynchronize(e->e), "cuEventSynchronize");
    return MX_OK;
}

int mx_event_elapsed_ms(mx_event *a, mx_event *b, float *ms) {
    if (!a || !b || !ms) { set_error("no event"); return MX_INVALID; }
    int rc = make_current(a->dev);
    if (rc) return rc;
    CU_TRY(cu.EventElapsedTime(ms, a->e, b->e), "cuEventElapsedTime");
    return MX_OK;
}

void mx_event_free(mx_event *e) {
    if (!e) return;
    make_current(e->dev);
    cu.EventDestroy(e->e);
    free(e);
}

#define MAX_ARGS 32

int mx_dispatch(mx_kernel *k, mx_stream *s, const uint64_t *grid, const uint32_t *tg,
                const mx_arg *args, int n_args, uint32_t shared_bytes) {
    if (!k || !s || !grid || !tg || n_args < 0 || n_args > MAX_ARGS) {
        set_error("mx_dispatch: bad arguments");
        return MX_INVALID;
    }
    int rc = make_current(s->dev);
    if (rc) return rc;
    uint64_t blocks[3];
    for (int i = 0; i < 3; i++) {
        if (tg[i] == 0) { set_error("mx_dispatch: empty threadgroup"); return MX_INVALID; }
        blocks[i] = (grid[i] + tg[i] - 1) / tg[i];
        if (blocks[i] == 0) return MX_OK;       /* nothing to run */
    }
    if (blocks[0] > 0x7fffffffULL || blocks[1] > 65535 || blocks[2] > 65535) {
        set_error("mx_dispatch: grid %llu x %llu x %llu threads is too large",
                  (unsigned long long)grid[0], (unsigned long long)grid[1],
                  (unsigned long long)grid[2]);
        return MX_INVALID;
    }
    CUdeviceptr ptrs[MAX_ARGS];
    void *params[MAX_ARGS];
    for (int i = 0; i < n_args; i++) {
        if (args[i].buffer) {
            ptrs[i] = args[i].buffer->base + args[i].offset;
            params[i] = &ptrs[i];
        } else {
            params[i] = (void *)args[i].bytes;
        }
    }
    if (shared_bytes > 48 * 1024 && !k->shared_set) {
        CU_TRY(cu.FuncSetAttribute(k->fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                   (int)shared_bytes), "cuFuncSetAttribute");
        k->shared_set = 1;
    }
    CU_TRY(cu.LaunchKernel(k->fn, (unsigned)blocks[0], (unsigned)blocks[1], (unsigned)blocks[2],
                           tg[0], tg[1], tg[2], shared_bytes, s->s, params, NULL),
           "cuLaunchKernel");
    return MX_OK;
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
    pthread_mutex_lock(&pool_lock);
    for (int i = 0; i < n_addrs; i++) {
        if (!region_of((uintptr_t)addrs[i])) {
            pthread_mutex_unlock(&pool_lock);
            set_error("mx_launch: argument %d (address %#llx) is not in unified memory", i,
                      (unsigned long long)addrs[i]);
            return MX_NOT_UNIFIED;
        }
    }
    pthread_mutex_unlock(&pool_lock);
    int rc = make_current(s->dev);
    if (rc) return rc;
    const uint64_t row = 1ULL << 30;
    uint64_t x = threads <= row ? threads : row;
    uint64_t y = (threads + row - 1) / row;
    uint64_t bx = (x + tg - 1) / tg;
    if (y > 65535) { set_error("mx_launch: %llu threads is too many", (unsigned long long)threads); return MX_INVALID; }
    CUdeviceptr ptrs[MAX_ARGS];
    void *params[MAX_ARGS];
    for (int i = 0; i < n_addrs; i++) {
        ptrs[i] = (CUdeviceptr)addrs[i];
        params[i] = &ptrs[i];
    }
    const char *c = (const char *)consts;
    for (int j = 0; j < n_consts; j++) {
        params[n_addrs + j] = (void *)c;
        c += const_sizes[j];
    }
    CU_TRY(cu.LaunchKernel(k->fn, (unsigned)bx, (unsigned)y, 1, tg, 1, 1, 0, s->s, params, NULL),
           "cuLaunchKernel");
    return MX_OK;
}

/* ------------------------------------------------------------------------------------
 * cuBLAS
 * ---------------------------------------------------------------------------------- */
static pthread_once_t cublas_once = PTHREAD_ONCE_INIT;
static int cublas_status = MX_UNAVAILABLE;
static char cublas_error[1024];

static void init_cublas(void) {
    if (load_cublas() == 0) cublas_status = MX_OK;
    else snprintf(cublas_error, sizeof cublas_error, "%s", err_buf);
}

/* cuBLAS's workspace: 32 MiB is what its documentation recommends for Hopper; without one
   of our own it draws on a default pool. Device memory (not managed): only cuBLAS reads it. */
#define BLAS_WORKSPACE ((size_t)32 << 20)

int mx_gemm(mx_stream *s, const mx_gemm_desc *g) {
    if (!s || !g || !g->a || !g->b || !g->c) { set_error("mx_gemm: bad arguments"); return MX_INVALID; }
    pthread_once(&cublas_once, init_cublas);
    if (cublas_status != MX_OK) { set_error("%s", cublas_error); return MX_UNAVAILABLE; }
    if (g->m > 0x7fffffff || g->n > 0x7fffffff || g->k > 0x7fffffff || g->batch > 0x7fffffff ||
        g->lda > 0x7fffffff || g->ldb > 0x7fffffff || g->ldc > 0x7fffffff) {
        set_error("mx_gemm: a dimension exceeds 2^31-1");
        return MX_INVALID;
    }
    if (g->m == 0 || g->n == 0 || g->batch == 0) return MX_OK;
    mx_device *d = s->dev;
    int rc = make_current(d);
    if (rc) return rc;
    pthread_mutex_lock(&d->lock);
    if (!d->blas) {
        cublasStatus_t st = cublas.Create(&d->blas);
        if (st != 0) {
            d->blas = NULL;
            pthread_mutex_unlock(&d->lock);
            set_error("cublasCreate failed (status %d)", st);
            return MX_ERROR;
        }
    }
    int type, compute;
    float alpha32 = (float)g->alpha, beta32 = (float)g->beta;
    const void *alpha = &alpha32, *beta = &beta32;
    switch (g->dtype) {
    case MX_GEMM_F32: type = CUDA_R_32F; compute = CUBLAS_COMPUTE_32F; break;
    case MX_GEMM_F16: type = CUDA_R_16F; compute = CUBLAS_COMPUTE_32F; break;
    case MX_GEMM_BF16: type = CUDA_R_16BF; compute = CUBLAS_COMPUTE_32F; break;
    case MX_GEMM_F64: type = CUDA_R_64F; compute = CUBLAS_COMPUTE_64F;
        alpha = &g->alpha; beta = &g->beta; break;
    default:
        pthread_mutex_unlock(&d->lock);
        set_error("mx_gemm: unknown dtype %d", g->dtype);
        return MX_INVALID;
    }
    /* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
       A row-major matrix stored untransposed reads, column-major, as its transpose, so the
       column-major op of each operand is "N" exactly when it is stored untransposed. */
    const char *base_a = (const char *)(uintptr_t)(g->a->base + g->a_offset);
    const char *base_b = (const char *)(uintptr_t)(g->b->base + g->b_offset);
    char *base_c = (char *)(uintptr_t)(g->c->base + g->c_offset);
    if (d->blas_stream != s->s) {
        /* rebinding costs a small gemm's time: only when the stream changes. It also resets
           the workspace, so ours is set again. */
        cublas.SetStream(d->blas, s->s);
        d->blas_stream = s->s;
        if (!d->blas_workspace && cublas.SetWorkspace &&
            cu.MemAlloc(&d->blas_workspace, BLAS_WORKSPACE) != CUDA_SUCCESS)
            d->blas_workspace = 0;
        if (d->blas_workspace)
            cublas.SetWorkspace(d->blas, (void *)(uintptr_t)d->blas_workspace, BLAS_WORKSPACE);
    }
    cublasStatus_t st;
    if (g->batch == 1 && cublas.GemmEx) {
        /* one product: the plain call (the strided-batched one costs more host time) */
        st = cublas.GemmEx(
            d->blas, g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
            (int)g->n, (int)g->m, (int)g->k, alpha, base_b, type, (int)g->ldb,
            base_a, type, (int)g->lda, beta, base_c, type, (int)g->ldc, compute,
            CUBLAS_GEMM_DEFAULT);
    } else {
        st = cublas.GemmStridedBatchedEx(
            d->blas, g->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
            (int)g->n, (int)g->m, (int)g->k, alpha,
            base_b, type, (int)g->ldb, (long long)g->stride_b,
            base_a, type, (int)g->lda, (long long)g->stride_a, beta,
            base_c, type, (int)g->ldc, (long long)g->stride_c, (int)g->batch, compute,
            CUBLAS_GEMM_DEFAULT);
    }
    pthread_mutex_unlock(&d->lock);
    if (st != 0) {
        set_error("%s failed (status %d) for m=%lld n=%lld k=%lld batch=%lld",
                  g->batch == 1 && cublas.GemmEx ? "cublasGemmEx" : "cublasGemmStridedBatchedEx",
                  st, (long long)g->m, (long long)g->n, (long long)g->k, (long long)g->batch);
        return MX_ERROR;
    }
    return MX_OK;
}
