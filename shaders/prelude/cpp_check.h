// prelude/cpp_check.h: lets a C++ compiler parse shaders/*.metal (the Metal view: no double)
// so CI, without a GPU, catches undeclared names and type errors in the kernels. The
// checker strips [[...]] attributes; this header maps MSL's qualifiers and types.
#include <cmath>
#include <cstddef>
#include <cstdint>

#define MX_DOUBLE 0
#define device
#define thread
#define constant
#define threadgroup

typedef unsigned int uint;
struct uint2 { uint x, y; };
struct uint3 { uint x, y, z; };

// 16-bit floats as float-backed classes: conversions only, like the real types' use here
struct half {
  float v;
  half() : v(0) {}
  template <typename X> half(X x) : v(static_cast<float>(x)) {}
  operator float() const { return v; }
};
struct bfloat {
  float v;
  bfloat() : v(0) {}
  template <typename X> bfloat(X x) : v(static_cast<float>(x)) {}
  operator float() const { return v; }
};

namespace metal {
using std::fabs; using std::floor; using std::ceil; using std::trunc; using std::rint;
using std::sqrt; using std::exp; using std::exp2; using std::log; using std::log2;
using std::log10; using std::sin; using std::cos; using std::tan; using std::asin;
using std::acos; using std::atan; using std::sinh; using std::cosh; using std::tanh;
using std::asinh; using std::acosh; using std::atanh; using std::atan2; using std::pow;
using std::fmod; using std::copysign; using std::fmin; using std::fmax;
using std::isnan; using std::isinf; using std::isfinite;
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2 };
inline void threadgroup_barrier(mem_flags) {}
}  // namespace metal

// the atomics of prelude/metal.h (declarations that parse; nothing runs here)
#include <cstring>
#define MX_ATOMIC64 0
inline uint32_t mx_atomic_load32(uint32_t* p) { return *p; }
inline bool mx_atomic_cas32(uint32_t* p, uint32_t& expected, uint32_t desired) {
  if (*p != expected) { expected = *p; return false; }
  *p = desired;
  return true;
}
inline void mx_atomic_add_u32(uint32_t* p, uint32_t v) { *p += v; }
inline void mx_atomic_add_f32(float* p, float v) { *p += v; }
template <typename B, typename T> B mx_as_type(T x) {
  B b;
  std::memcpy(&b, &x, sizeof(B));
  return b;
}
