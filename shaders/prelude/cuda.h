// prelude/cuda.h: makes the MSL subset of shaders/*.metal valid CUDA C++ for NVRTC.
// mx/backend/gpu/translate.py puts it in front of the translated kernels: the kernel
// signatures are rewritten there; everything else the kernels use is defined here.
#include <cuda_fp16.h>
#include <cuda_bf16.h>

typedef __half half;
typedef __nv_bfloat16 bfloat;
typedef unsigned int uint;
// NVRTC has no <cstdint>
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;

#define MX_DOUBLE 1

// address-space qualifiers of MSL: CUDA's generic pointers need none
#define device
#define thread
#define constant
// threadgroup memory is CUDA's shared memory (per block)
#define threadgroup __shared__

#define INFINITY __int_as_float(0x7f800000)
#define NAN __int_as_float(0x7fffffff)

// Thread coordinates of MSL's attributes (Metal counts threads in the grid, CUDA in blocks).
__device__ inline uint mx_thread_position_in_grid_uint() { return blockIdx.x * blockDim.x + threadIdx.x; }
__device__ inline uint2 mx_thread_position_in_grid_uint2() {
  return make_uint2(blockIdx.x * blockDim.x + threadIdx.x, blockIdx.y * blockDim.y + threadIdx.y);
}
__device__ inline uint3 mx_thread_position_in_grid_uint3() {
  return make_uint3(blockIdx.x * blockDim.x + threadIdx.x, blockIdx.y * blockDim.y + threadIdx.y,
                    blockIdx.z * blockDim.z + threadIdx.z);
}
__device__ inline uint mx_threads_per_grid_uint() { return gridDim.x * blockDim.x; }
__device__ inline uint2 mx_threads_per_grid_uint2() {
  return make_uint2(gridDim.x * blockDim.x, gridDim.y * blockDim.y);
}
__device__ inline uint3 mx_threads_per_grid_uint3() {
  return make_uint3(gridDim.x * blockDim.x, gridDim.y * blockDim.y, gridDim.z * blockDim.z);
}
__device__ inline uint mx_thread_position_in_threadgroup_uint() { return threadIdx.x; }
__device__ inline uint2 mx_thread_position_in_threadgroup_uint2() { return make_uint2(threadIdx.x, threadIdx.y); }
__device__ inline uint3 mx_thread_position_in_threadgroup_uint3() { return make_uint3(threadIdx.x, threadIdx.y, threadIdx.z); }
__device__ inline uint mx_threadgroup_position_in_grid_uint() { return blockIdx.x; }
__device__ inline uint2 mx_threadgroup_position_in_grid_uint2() { return make_uint2(blockIdx.x, blockIdx.y); }
__device__ inline uint3 mx_threadgroup_position_in_grid_uint3() { return make_uint3(blockIdx.x, blockIdx.y, blockIdx.z); }
__device__ inline uint mx_threads_per_threadgroup_uint() { return blockDim.x; }
__device__ inline uint2 mx_threads_per_threadgroup_uint2() { return make_uint2(blockDim.x, blockDim.y); }
__device__ inline uint3 mx_threads_per_threadgroup_uint3() { return make_uint3(blockDim.x, blockDim.y, blockDim.z); }

// The metal:: math the kernels use, for float and double (half and bfloat are computed in
// float by the kernels themselves).
namespace metal {
#define MX_MATH1(NAME, F32, F64)                                  \
  __device__ inline float NAME(float x) { return ::F32(x); }      \
  __device__ inline double NAME(double x) { return ::F64(x); }
#define MX_MATH2(NAME, F32, F64)                                             \
  __device__ inline float NAME(float x, float y) { return ::F32(x, y); }     \
  __device__ inline double NAME(double x, double y) { return ::F64(x, y); }
MX_MATH1(fabs, fabsf, fabs)
MX_MATH1(floor, floorf, floor)
MX_MATH1(ceil, ceilf, ceil)
MX_MATH1(trunc, truncf, trunc)
MX_MATH1(rint, rintf, rint)
MX_MATH1(sqrt, sqrtf, sqrt)
MX_MATH1(rsqrt, rsqrtf, rsqrt)
MX_MATH1(exp, expf, exp)
MX_MATH1(exp2, exp2f, exp2)
MX_MATH1(log, logf, log)
MX_MATH1(log2, log2f, log2)
MX_MATH1(log10, log10f, log10)
MX_MATH1(sin, sinf, sin)
MX_MATH1(cos, cosf, cos)
MX_MATH1(tan, tanf, tan)
MX_MATH1(asin, asinf, asin)
MX_MATH1(acos, acosf, acos)
MX_MATH1(atan, atanf, atan)
MX_MATH1(sinh, sinhf, sinh)
MX_MATH1(cosh, coshf, cosh)
MX_MATH1(tanh, tanhf, tanh)
MX_MATH1(asinh, asinhf, asinh)
MX_MATH1(acosh, acoshf, acosh)
MX_MATH1(atanh, atanhf, atanh)
MX_MATH1(erf, erff, erf)
MX_MATH1(erfinv, erfinvf, erfinv)
MX_MATH2(atan2, atan2f, atan2)
MX_MATH2(pow, powf, pow)
MX_MATH2(fmod, fmodf, fmod)
MX_MATH2(copysign, copysignf, copysign)
MX_MATH2(fmin, fminf, fmin)
MX_MATH2(fmax, fmaxf, fmax)
#undef MX_MATH1
#undef MX_MATH2
__device__ inline bool isnan(float x) { return x != x; }
__device__ inline bool isnan(double x) { return x != x; }
__device__ inline bool isinf(float x) { return ::fabsf(x) == INFINITY; }
__device__ inline bool isinf(double x) { return ::fabs(x) == (double)INFINITY; }
__device__ inline bool isfinite(float x) { return ::fabsf(x) < INFINITY; }
__device__ inline bool isfinite(double x) { return ::fabs(x) < (double)INFINITY; }
enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2 };
__device__ inline void threadgroup_barrier(mem_flags) { __syncthreads(); }
}  // namespace metal

// Atomics (shaders/scatter.metal builds every read-modify-write on these): 32-bit loads,
// compare-and-swap and adds in every dialect; 64-bit ones where MX_ATOMIC64 (not Metal).
// mx_atomic_cas*: store `desired` if *p holds `expected` and return true; else return false
// with `expected` set to what *p holds.
#define MX_ATOMIC64 1
__device__ inline uint32_t mx_atomic_load32(uint32_t* p) { return *(volatile uint32_t*)p; }
__device__ inline bool mx_atomic_cas32(uint32_t* p, uint32_t& expected, uint32_t desired) {
  uint32_t seen = atomicCAS(p, expected, desired);
  bool ok = seen == expected;
  expected = seen;
  return ok;
}
__device__ inline void mx_atomic_add_u32(uint32_t* p, uint32_t v) { atomicAdd(p, v); }
// (flushes subnormal operands and results to zero: see ScatterAdd in scatter.metal)
__device__ inline void mx_atomic_add_f32(float* p, float v) { atomicAdd(p, v); }
__device__ inline uint64_t mx_atomic_load64(uint64_t* p) { return *(volatile uint64_t*)p; }
__device__ inline bool mx_atomic_cas64(uint64_t* p, uint64_t& expected, uint64_t desired) {
  uint64_t seen = atomicCAS(p, expected, desired);
  bool ok = seen == expected;
  expected = seen;
  return ok;
}
__device__ inline void mx_atomic_add_u64(uint64_t* p, uint64_t v) { atomicAdd(p, v); }
__device__ inline void mx_atomic_add_f64(double* p, double v) { atomicAdd(p, v); }
// the bits of a value as another type of its size (Metal's as_type)
template <typename B, typename T> __device__ inline B mx_as_type(T x) {
  B b;
  memcpy(&b, &x, sizeof(B));
  return b;
}
