// prelude/metal.h: what the Metal dialect puts in front of shaders/*.metal.
#include <metal_stdlib>
using namespace metal;

#define MX_DOUBLE 0   // Metal has no double

// Atomics (shaders/scatter.metal; the same names as in cuda.h): 32-bit loads,
// compare-and-swap and adds on atomic_uint. Metal has no 64-bit compare-and-swap in general:
// MX_ATOMIC64 is 0 and the backend makes no 64-bit scatter kernels here.
#define MX_ATOMIC64 0
inline uint32_t mx_atomic_load32(device uint32_t* p) {
  return atomic_load_explicit(reinterpret_cast<device atomic_uint*>(p), memory_order_relaxed);
}
// store `desired` if *p holds `expected` and return true; else return false with `expected`
// set to what *p holds (a weak exchange may fail spuriously: callers loop)
inline bool mx_atomic_cas32(device uint32_t* p, thread uint32_t& expected, uint32_t desired) {
  return atomic_compare_exchange_weak_explicit(reinterpret_cast<device atomic_uint*>(p),
                                               &expected, desired, memory_order_relaxed,
                                               memory_order_relaxed);
}
inline void mx_atomic_add_u32(device uint32_t* p, uint32_t v) {
  atomic_fetch_add_explicit(reinterpret_cast<device atomic_uint*>(p), v, memory_order_relaxed);
}
inline void mx_atomic_add_f32(device float* p, float v) {
  device uint32_t* w = reinterpret_cast<device uint32_t*>(p);
  uint32_t old = mx_atomic_load32(w);
  while (!mx_atomic_cas32(w, old, as_type<uint32_t>(as_type<float>(old) + v))) {
  }
}
template <typename B, typename T> B mx_as_type(T x) { return as_type<B>(x); }
