# cython: language_level=3
"""Real memory accounting for mx's CPU buffers.

mx's CPU kernels allocate through NumPy, so this module installs a NumPy data-memory
handler (NEP 49) while mx evaluates or converts arrays. The handler counts every byte it
hands out and takes back, keeps a peak, enforces the memory limit (an allocation over it
fails, which NumPy turns into a MemoryError naming the size) and keeps freed large blocks
in a size-keyed cache for reuse (a page-faulted block is cheaper to reuse than to map
again). Arrays remember the handler that allocated them, so frees are counted even when
they happen outside mx.
"""
from cpython.pycapsule cimport PyCapsule_New

cdef extern from "numpy/arrayobject.h":
    object PyDataMem_SetHandler(object handler)
    void _import_array() except *

cdef extern from *:
    """
    #include <stdlib.h>
    #include <string.h>
    #include <stdint.h>
    #include <pthread.h>
    #include <sys/mman.h>

    typedef struct {
        void *ctx;
        void* (*malloc) (void *ctx, size_t size);
        void* (*calloc) (void *ctx, size_t nelem, size_t elsize);
        void* (*realloc) (void *ctx, void *ptr, size_t new_size);
        void (*free) (void *ctx, void *ptr, size_t size);
    } mx_allocator;

    typedef struct {
        char name[127];
        uint8_t version;
        mx_allocator allocator;
    } mx_handler;

    /* Every block carries a 64-byte header holding its usable size (keeps 64-byte
       alignment for SIMD loops), whether a backing allocator made it and, while cached,
       the next cached block of its bin. */
    #define MX_HDR 64
    #define MX_BINS 64
    #define MX_CACHE_MIN 16384

    typedef struct mx_block { size_t size; struct mx_block *next; int backed; } mx_block;

    /* A GPU backend may back the blocks with its unified memory (CUDA managed memory)
       so that CPU and GPU kernels share buffers: set_backing_allocator. */
    static void *(*mx_backing_alloc)(size_t) = NULL;
    static void (*mx_backing_free)(void *) = NULL;

    static void mx_release(mx_block *blk) {
        if (blk->backed) mx_backing_free(blk);
        else free(blk);
    }

    static pthread_mutex_t mx_lock = PTHREAD_MUTEX_INITIALIZER;
    static size_t mx_active = 0, mx_peak = 0, mx_cached = 0;
    static size_t mx_limit = (size_t)-1, mx_cache_limit = (size_t)-1;
    static mx_block *mx_bins[MX_BINS];

    static int mx_bin(size_t size) {           /* bins by power of two of the size */
        int b = 0;
        while (b < MX_BINS - 1 && ((size_t)1 << b) < size) b++;
        return b;
    }

    static size_t mx_round(size_t size) {       /* cacheable sizes round to 4 KiB pages */
        if (size < MX_CACHE_MIN) return size;
        return (size + 4095) & ~(size_t)4095;
    }

    static void *mx_take_cached(size_t size) {
        int b = mx_bin(size);
        mx_block **prev = &mx_bins[b];
        for (mx_block *blk = mx_bins[b]; blk; prev = &blk->next, blk = blk->next) {
            if (blk->size == size) { *prev = blk->next; mx_cached -= size; return blk; }
        }
        return NULL;
    }

    static void mx_trim_cache(size_t keep) {
        for (int b = MX_BINS - 1; b >= 0 && mx_cached > keep; b--) {
            while (mx_bins[b] && mx_cached > keep) {
                mx_block *blk = mx_bins[b];
                mx_bins[b] = blk->next;
                mx_cached -= blk->size;
                mx_release(blk);
            }
        }
    }

    /* Large blocks ask for transparent huge pages (as NumPy's own allocator does): fewer
       page faults on first touch and fewer TLB misses in the kernels that stream them. */
    #define MX_HUGE_MIN (4u << 20)
    static void mx_advise_huge(void *raw, size_t len) {
    #ifdef MADV_HUGEPAGE
        uintptr_t start = ((uintptr_t)raw + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
        uintptr_t end = ((uintptr_t)raw + len) & ~(uintptr_t)((2u << 20) - 1);
        if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
    #else
        (void)raw; (void)len;
    #endif
    }

    static void *mx_alloc(size_t size, int zero) {
        size_t rounded = mx_round(size);
        void *raw = NULL;
        pthread_mutex_lock(&mx_lock);
        if (mx_active + rounded > mx_limit) { pthread_mutex_unlock(&mx_lock); return NULL; }
        if (rounded >= MX_CACHE_MIN) raw = mx_take_cached(rounded);
        mx_active += rounded;
        if (mx_active > mx_peak) mx_peak = mx_active;
        pthread_mutex_unlock(&mx_lock);
        int backed = mx_backing_alloc != NULL;
        if (raw == NULL) {
            if (backed) {
                raw = mx_backing_alloc(rounded + MX_HDR);
                if (raw != NULL && zero) memset((char *)raw + MX_HDR, 0, rounded);
            } else {
                raw = zero ? calloc(1, rounded + MX_HDR) : malloc(rounded + MX_HDR);
                if (raw != NULL && rounded >= MX_HUGE_MIN) mx_advise_huge(raw, rounded + MX_HDR);
            }
            if (raw == NULL) {
                pthread_mutex_lock(&mx_lock); mx_active -= rounded; pthread_mutex_unlock(&mx_lock);
                return NULL;
            }
        } else {
            backed = ((mx_block *)raw)->backed;
            if (zero) memset((char *)raw + MX_HDR, 0, rounded);
        }
        ((mx_block *)raw)->size = rounded;
        ((mx_block *)raw)->backed = backed;
        return (char *)raw + MX_HDR;
    }

    static void *mx_malloc(void *ctx, size_t size) { (void)ctx; return mx_alloc(size, 0); }
    static void *mx_calloc(void *ctx, size_t n, size_t sz) { (void)ctx; return mx_alloc(n * sz, 1); }

    static void mx_free(void *ctx, void *p, size_t size) {
        (void)ctx; (void)size;
        if (p == NULL) return;
        mx_block *blk = (mx_block *)((char *)p - MX_HDR);
        size_t s = blk->size;
        pthread_mutex_lock(&mx_lock);
        mx_active -= s;
        /* only blocks of the current kind are cached (see mx_set_backing) */
        if (s >= MX_CACHE_MIN && mx_cached + s <= mx_cache_limit
                && blk->backed == (mx_backing_alloc != NULL)) {
            int b = mx_bin(s);
            blk->next = mx_bins[b];
            mx_bins[b] = blk;
            mx_cached += s;
            pthread_mutex_unlock(&mx_lock);
            return;
        }
        pthread_mutex_unlock(&mx_lock);
        mx_release(blk);
    }

    static void *mx_realloc(void *ctx, void *p, size_t new_size) {
        if (p == NULL) return mx_malloc(ctx, new_size);
        mx_block *blk = (mx_block *)((char *)p - MX_HDR);
        size_t old = blk->size;
        void *q = mx_malloc(ctx, new_size);
        if (q == NULL) return NULL;
        memcpy(q, p, old < new_size ? old : new_size);
        mx_free(ctx, p, old);
        return q;
    }

    static mx_handler mx_numpy_handler = {
        "mx_counting_allocator", 1,
        {NULL, mx_malloc, mx_calloc, mx_realloc, mx_free}
    };

    static size_t mx_get_active(void) { return mx_active; }
    static size_t mx_get_peak(void) { return mx_peak; }
    static size_t mx_get_cached(void) { return mx_cached; }
    static void mx_reset_peak(void) { pthread_mutex_lock(&mx_lock); mx_peak = mx_active; pthread_mutex_unlock(&mx_lock); }
    static size_t mx_set_limit(size_t l) { size_t o = mx_limit; mx_limit = l; return o; }
    static size_t mx_set_cache_limit(size_t l) {
        pthread_mutex_lock(&mx_lock);
        size_t o = mx_cache_limit; mx_cache_limit = l; mx_trim_cache(l);
        pthread_mutex_unlock(&mx_lock);
        return o;
    }
    static void mx_clear_cache(void) { pthread_mutex_lock(&mx_lock); mx_trim_cache(0); pthread_mutex_unlock(&mx_lock); }
    static void *mx_handler_ptr(void) { return &mx_numpy_handler; }
    /* Switching allocators empties the cache: a cached block of the other kind must not be
       handed out (a GPU kernel cannot read malloc memory). Live blocks remember their kind. */
    static void mx_set_backing(size_t alloc_fn, size_t free_fn) {
        pthread_mutex_lock(&mx_lock);
        mx_trim_cache(0);
        if (alloc_fn && free_fn) {
            mx_backing_alloc = (void *(*)(size_t))alloc_fn;
            mx_backing_free = (void (*)(void *))free_fn;
        } else {
            /* the free function stays: live backed blocks still need it */
            mx_backing_alloc = NULL;
        }
        pthread_mutex_unlock(&mx_lock);
    }
    static int mx_is_backed(void) { return mx_backing_alloc != NULL; }
    """
    size_t mx_get_active()
    size_t mx_get_peak()
    size_t mx_get_cached()
    void mx_reset_peak()
    size_t mx_set_limit(size_t l)
    size_t mx_set_cache_limit(size_t l)
    void mx_clear_cache()
    void *mx_handler_ptr()
    void mx_set_backing(size_t alloc_fn, size_t free_fn)
    int mx_is_backed()

_import_array()

cdef object HANDLER = PyCapsule_New(mx_handler_ptr(), "mem_handler", NULL)


class using_mx_allocator:
    """Context manager: NumPy allocations inside go through mx's counting allocator."""

    __slots__ = ("_prev",)

    def __enter__(self):
        self._prev = PyDataMem_SetHandler(HANDLER)
        return self

    def __exit__(self, *exc):
        PyDataMem_SetHandler(self._prev)
        return False


def install(bint on):
    """Make mx's allocator the handler of the calling thread's context (or undo it)."""
    return PyDataMem_SetHandler(HANDLER if on else None)


def set_handler(h):
    return PyDataMem_SetHandler(h)


def handler():
    return HANDLER


def active():
    return mx_get_active()


def peak():
    return mx_get_peak()


def cached():
    return mx_get_cached()


def reset_peak():
    mx_reset_peak()


def set_limit(size_t limit):
    return mx_set_limit(limit)


def set_cache_limit(size_t limit):
    return mx_set_cache_limit(limit)


def clear_cache():
    mx_clear_cache()


def set_backing_allocator(size_t alloc_fn_ptr, size_t free_fn_ptr):
    """Back mx's blocks with another allocator: the addresses of C functions
    `void *alloc(size_t)` and `void free(void *)` (e.g. a GPU shim's unified memory), or
    (0, 0) for malloc again. The cache is emptied; live blocks are freed by whichever
    allocator made them."""
    mx_set_backing(alloc_fn_ptr, free_fn_ptr)


def is_backed():
    """True while a backing allocator is set."""
    return bool(mx_is_backed())
