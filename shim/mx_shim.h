/* mx_shim.h: the one C ABI of mx's GPU shims.
 *
 * Two implementations provide it: shim/cuda/mx_cuda.c (NVIDIA: the driver API, NVRTC and
 * cuBLAS, all dlopen-ed at run time) and a Metal shim (Apple silicon). Python loads either
 * through cffi; neither contains Python C-API code.
 *
 * Model. Memory is unified: a buffer has one address that both the host and the device
 * read and write (CUDA managed memory, Metal shared storage), so arrays have no device;
 * work runs on a stream. Kernels are compiled at run time from source with options and
 * picked by name. All sizes are in bytes unless a name says otherwise.
 *
 * Errors. A function that can fail returns MX_OK (0), a negative MX_* code, or NULL; the
 * reason is then in mx_last_error() (per thread). Nothing aborts the process.
 *
 * The part between the MX-CDEF markers is plain C that cffi's cdef parses as is.
 */
#ifndef MX_SHIM_H
#define MX_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* MX-CDEF-BEGIN */
#define MX_SHIM_ABI_VERSION 1

#define MX_OK 0
#define MX_ERROR -1
#define MX_UNAVAILABLE -2
#define MX_OUT_OF_MEMORY -3
#define MX_INVALID -4
#define MX_NOT_UNIFIED -5

/* element types of mx_gemm */
#define MX_GEMM_F32 0
#define MX_GEMM_F16 1
#define MX_GEMM_BF16 2
#define MX_GEMM_F64 3

typedef struct mx_device mx_device;
typedef struct mx_buffer mx_buffer;
typedef struct mx_library mx_library;
typedef struct mx_kernel mx_kernel;
typedef struct mx_stream mx_stream;
typedef struct mx_event mx_event;

typedef struct {
    char name[256];              /* "NVIDIA H100 80GB HBM3", "Apple M2 Max" */
    char architecture[32];       /* "sm_90", "applegpu_g14s" */
    char backend[16];            /* "cuda" or "metal" */
    char versions[160];          /* driver, compiler and BLAS versions, for humans */
    uint64_t memory_size;        /* bytes of device memory */
    uint64_t max_buffer_length;  /* largest single buffer */
    uint32_t max_threads_per_threadgroup;
    uint32_t multiprocessor_count;
    uint32_t simd_width;
    uint32_t unified_memory;     /* 1: host and device share buffers (always, in this ABI) */
    uint32_t concurrent_managed_access;  /* 1: host may touch buffers while kernels run */
    uint32_t pageable_memory_access;     /* 1: kernels may read ordinary host memory */
} mx_device_info;

/* One kernel argument: a buffer (with a byte offset into it) or a small constant passed
   by value (Metal: setBytes for a `constant T&` parameter; CUDA: a by-value parameter). */
typedef struct {
    mx_buffer *buffer;           /* non-NULL: a buffer argument */
    uint64_t offset;             /* byte offset into buffer */
    const void *bytes;           /* buffer == NULL: the constant's bytes */
    uint64_t nbytes;             /* and its size */
} mx_arg;

/* Row-major batched strided matrix product:
     C[i] = alpha * op(A[i]) @ op(B[i]) + beta * C[i],  i < batch,
   C[i] is m x n with row stride ldc; A[i] is m x k (row stride lda) or, when trans_a,
   stored as its k x m transpose (row stride lda); likewise B[i] (k x n, or n x k when
   trans_b). Strides between batch items are in elements (0 broadcasts). */
typedef struct {
    int32_t dtype;               /* MX_GEMM_* (A, B and C share it; accumulation is f32/f64) */
    int32_t trans_a, trans_b;
    int64_t m, n, k, batch;
    mx_buffer *a; uint64_t a_offset; int64_t lda; int64_t stride_a;
    mx_buffer *b; uint64_t b_offset; int64_t ldb; int64_t stride_b;
    mx_buffer *c; uint64_t c_offset; int64_t ldc; int64_t stride_c;
    double alpha, beta;
} mx_gemm_desc;

/* errors */
const char *mx_last_error(void);

/* devices */
int mx_device_count(void);                          /* 0 without a driver or device */
mx_device *mx_device_open(int index);               /* shared; never closed */
int mx_device_get_info(mx_device *dev, mx_device_info *info);
int mx_device_memory(mx_device *dev, uint64_t *free_bytes, uint64_t *total_bytes);
int mx_device_synchronize(mx_device *dev);          /* waits for every stream */

/* unified buffers */
mx_buffer *mx_buffer_alloc(mx_device *dev, uint64_t nbytes);
void mx_buffer_free(mx_buffer *buf);
void *mx_buffer_contents(mx_buffer *buf);           /* the host (= device) address */
uint64_t mx_buffer_length(mx_buffer *buf);
/* The buffer holding host address `ptr` and the offset of ptr in it; NULL when ptr is not
   inside a live buffer of this shim (e.g. ordinary malloc memory). */
mx_buffer *mx_buffer_find(mx_device *dev, const void *ptr, uint64_t *offset);

/* The same memory as a plain allocator (for NumPy's data-memory handler): the host address
   of nbytes of unified memory from the opened device's pool, or NULL (out of memory, or no
   device opened). It is laid out for mx's allocator, which writes a 64-byte header in front
   of the data it hands on: that header never shares a page with a large block's data, so
   host writes to it do not pull GPU pages back (see the pool in each shim). */
void *mx_host_alloc(size_t nbytes);
void mx_host_free(void *ptr);
/* Bytes the pool holds from the system, and the cap it keeps under. */
int mx_pool_stats(uint64_t *reserved_bytes, uint64_t *in_use_bytes, uint64_t *limit_bytes);
uint64_t mx_pool_set_limit(uint64_t limit_bytes);   /* returns the previous cap */

/* kernels: compile `source` with `options` (whitespace-separated) and make the kernels named
   in names[0..n_names) available. On CUDA a name may be a template instance
   ("unary_v<float, float, Exp>"); on Metal it is a function name. Compiled code is cached in
   memory and on disk (MX_CACHE_DIR, else ~/.cache/mx), keyed by everything it depends on. */
mx_library *mx_library_new(mx_device *dev, const char *source, const char *options,
                           const char *const *names, int n_names);
mx_kernel *mx_library_kernel(mx_library *lib, const char *name);
int mx_library_was_cached(mx_library *lib);         /* 1: came from the disk cache */

/* streams and events */
mx_stream *mx_stream_new(mx_device *dev);
int mx_stream_synchronize(mx_stream *s);
void mx_stream_free(mx_stream *s);
/* The native queue under an mx stream (a CUstream, an id<MTLCommandQueue>), for libraries that
   queue their own work on it (NCCL). */
void *mx_stream_native(mx_stream *s);
mx_event *mx_event_new(mx_device *dev, int timing);
int mx_event_record(mx_event *e, mx_stream *s);
int mx_stream_wait_event(mx_stream *s, mx_event *e);
int mx_event_synchronize(mx_event *e);
int mx_event_elapsed_ms(mx_event *start, mx_event *end, float *ms);
void mx_event_free(mx_event *e);

/* dispatch: run `kernel` over grid[0] x grid[1] x grid[2] threads (kernels bound-check; the
   CUDA shim rounds each dimension up to whole threadgroups) in threadgroups of
   threadgroup[0..3) threads, with `shared_bytes` of threadgroup memory. Queued on s. */
int mx_dispatch(mx_kernel *kernel, mx_stream *s, const uint64_t *grid,
                const uint32_t *threadgroup, const mx_arg *args, int n_args,
                uint32_t shared_bytes);

/* dispatch, the short way (the hot path of small ops): `threads` threads in threadgroups
   of `threadgroup` (a grid over 2^30 threads gets a second dimension of 2^30-thread rows),
   the arguments being first n_addrs host addresses of unified memory (each checked: an
   address outside the shim's buffers fails with MX_NOT_UNIFIED and nothing is queued),
   then n_consts constants packed back to back in `consts` (sizes in const_sizes). */
int mx_launch(mx_kernel *kernel, mx_stream *s, uint64_t threads, uint32_t threadgroup,
              const uint64_t *addrs, int n_addrs, const void *consts,
              const uint32_t *const_sizes, int n_consts);

/* BLAS */
int mx_gemm(mx_stream *s, const mx_gemm_desc *desc);
/* MX-CDEF-END */

#ifdef __cplusplus
}
#endif

#endif /* MX_SHIM_H */
