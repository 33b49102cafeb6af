// utils.metal: type traits and math shared by mx's kernels (MSL subset; see docs/gpu.md).
#include <metal_stdlib>
using namespace metal;

// Arithmetic on half and bfloat is carried out in float and rounded once; on every other
// type in the type itself. (NumPy and ml_dtypes compute float16/bfloat16 ufuncs the same
// way, so results match the CPU backend.)
template <typename T> struct Acc { typedef T type; };
template <> struct Acc<half> { typedef float type; };
template <> struct Acc<bfloat> { typedef float type; };

// Kinds of element type, for tag dispatch (MSL has no `if constexpr`).
template <int K> struct Tag {};
template <typename T> struct IsFloat { enum { value = 0 }; };
template <> struct IsFloat<half> { enum { value = 1 }; };
template <> struct IsFloat<bfloat> { enum { value = 1 }; };
template <> struct IsFloat<float> { enum { value = 1 }; };
#if MX_DOUBLE
template <> struct IsFloat<double> { enum { value = 1 }; };
#endif

// Conversions with NumPy's results: to bool is `!= 0`; floats go to integers of 32 bits or
// fewer through int64 (so out-of-range values wrap as they do on the CPU); half and
// bfloat convert through float.
template <typename U> struct CastTo {
  template <typename T> static U run(T x) { return U(x); }
  static U run(float x) { return sizeof(U) == 8 ? U(x) : U(int64_t(x)); }
  static U run(half x) { return run(float(x)); }
  static U run(bfloat x) { return run(float(x)); }
#if MX_DOUBLE
  static U run(double x) { return sizeof(U) == 8 ? U(x) : U(int64_t(x)); }
#endif
};

template <> struct CastTo<bool> {
  template <typename T> static bool run(T x) { return x != T(0); }
  static bool run(half x) { return float(x) != 0.0f; }
  static bool run(bfloat x) { return float(x) != 0.0f; }
};

template <> struct CastTo<half> {
  template <typename T> static half run(T x) { return half(float(x)); }
  static half run(half x) { return x; }
  static half run(float x) { return half(x); }
#if MX_DOUBLE
  static half run(double x) { return half(x); }
#endif
};

template <> struct CastTo<bfloat> {
  template <typename T> static bfloat run(T x) { return bfloat(float(x)); }
  static bfloat run(bfloat x) { return x; }
  static bfloat run(float x) { return bfloat(x); }
#if MX_DOUBLE
  static bfloat run(double x) { return bfloat(float(x)); }
#endif
};

template <> struct CastTo<float> {
  template <typename T> static float run(T x) { return float(x); }
};

#if MX_DOUBLE
template <> struct CastTo<double> {
  template <typename T> static double run(T x) { return double(x); }
  static double run(half x) { return double(float(x)); }
  static double run(bfloat x) { return double(float(x)); }
};
#endif

// Constants in the precision of the computation.
template <typename A> struct Consts {
  static A degrees_per_radian() { return A(57.29577951308232f); }
  static A radians_per_degree() { return A(0.017453292519943295f); }
  static A ln2() { return A(0.6931471805599453f); }
};
#if MX_DOUBLE
template <> struct Consts<double> {
  static double degrees_per_radian() { return 57.29577951308232; }
  static double radians_per_degree() { return 0.017453292519943295; }
  static double ln2() { return 0.6931471805599453; }
};
#endif

// log(1 + x) accurate for small x: log(u) scaled by x / (u - 1) cancels the rounding of u.
template <typename A> A mx_log1p(A x) {
  A u = A(1) + x;
  if (u == A(1)) return x;
  if (metal::isinf(u)) return u;
  return metal::log(u) * (x / (u - A(1)));
}

// exp(x) - 1 accurate for small x (Kahan): (u - 1) scaled by x / log(u).
template <typename A> A mx_expm1(A x) {
  A u = metal::exp(x);
  if (u == A(1)) return x;
  A um1 = u - A(1);
  if (um1 == A(-1)) return A(-1);
  if (metal::isinf(u)) return u;
  return um1 * (x / metal::log(u));
}

// erf in float: the Taylor series below 2, a continued fraction for erfc above.
float mx_erf(float x) {
  float ax = metal::fabs(x);
  if (metal::isnan(x)) return x;
  if (ax < 2.0f) {
    float x2 = x * x;
    float term = x;
    float sum = x;
    for (int n = 1; n < 60; ++n) {
      term *= -x2 / float(n);
      float t = term / float(2 * n + 1);
      sum += t;
      if (metal::fabs(t) < 1e-9f * metal::fabs(sum)) break;
    }
    return sum * 1.1283791670955126f;
  }
  if (ax >= 4.0f) return metal::copysign(1.0f, x);
  float f = ax;
  for (int k = 60; k > 0; --k) f = ax + (0.5f * float(k)) / f;
  float erfc = metal::exp(-ax * ax) / (1.7724538509055159f * f);
  return metal::copysign(1.0f - erfc, x);
}

// erfinv in float: a two-branch polynomial in w = -log(1 - x^2).
float mx_erfinv(float x) {
  if (metal::isnan(x) || metal::fabs(x) > 1.0f) return NAN;
  if (metal::fabs(x) == 1.0f) return metal::copysign(INFINITY, x);
  float w = -metal::log((1.0f - x) * (1.0f + x));
  float p;
  if (w < 5.0f) {
    w = w - 2.5f;
    p = 2.81022636e-08f;
    p = 3.43273939e-07f + p * w;
    p = -3.5233877e-06f + p * w;
    p = -4.39150654e-06f + p * w;
    p = 0.00021858087f + p * w;
    p = -0.00125372503f + p * w;
    p = -0.00417768164f + p * w;
    p = 0.246640727f + p * w;
    p = 1.50140941f + p * w;
  } else {
    w = metal::sqrt(w) - 3.0f;
    p = -0.000200214257f;
    p = 0.000100950558f + p * w;
    p = 0.00134934322f + p * w;
    p = -0.00367342844f + p * w;
    p = 0.00573950773f + p * w;
    p = -0.0076224613f + p * w;
    p = 0.00943887047f + p * w;
    p = 1.00167406f + p * w;
    p = 2.83297682f + p * w;
  }
  return p * x;
}

#if MX_DOUBLE
double mx_erf(double x) { return metal::erf(x); }
double mx_erfinv(double x) { return metal::erfinv(x); }
#endif

// NumPy's floor division and modulus of floats (the sign of the modulus follows b).
template <typename A> A mx_fmod_floor(A a, A b) {
  A mod = metal::fmod(a, b);
  if (b == A(0)) return mod;
  if (mod != A(0)) {
    if ((b < A(0)) != (mod < A(0))) mod += b;
  } else {
    mod = metal::copysign(A(0), b);
  }
  return mod;
}

template <typename A> A mx_floor_div(A a, A b) {
  if (b == A(0)) return a / b;
  A mod = metal::fmod(a, b);
  A div = (a - mod) / b;
  if (mod != A(0) && ((b < A(0)) != (mod < A(0)))) div -= A(1);
  if (div == A(0)) return metal::copysign(A(0), a / b);
  A fl = metal::floor(div);
  if (div - fl > A(0.5)) fl += A(1);
  return fl;
}

// Integer floor division and modulus as in Python; division by zero gives 0 (NumPy).
template <typename T> T mx_int_floor_div(T a, T b) {
  if (b == T(0)) return T(0);
  if (T(-1) < T(0) && b == T(-1)) return T(T(0) - a);  // signed: no overflow trap
  T q = T(a / b);
  if (T(-1) < T(0) && T(a % b) != T(0) && ((a < T(0)) != (b < T(0)))) q = T(q - T(1));
  return q;
}

template <typename T> T mx_int_mod(T a, T b) {
  if (b == T(0)) return T(0);
  if (T(-1) < T(0) && b == T(-1)) return T(0);
  T r = T(a % b);
  if (T(-1) < T(0) && r != T(0) && ((r < T(0)) != (b < T(0)))) r = T(r + b);
  return r;
}

// Integer power by squaring; a negative exponent leaves only 1 and -1 (C truncation).
template <typename T> T mx_int_pow(T a, T b) {
  if (T(-1) < T(0) && b < T(0)) {
    if (a == T(1)) return T(1);
    if (a == T(-1)) return (b & T(1)) ? T(-1) : T(1);
    return T(0);
  }
  T result = T(1);
  T base = a;
  while (b != T(0)) {
    if (b & T(1)) result = T(result * base);
    base = T(base * base);
    b = T(b >> 1);
  }
  return result;
}

// Shifts by a count outside [0, bits) give 0 (left) or the sign fill (right), as NumPy.
template <typename T> T mx_shift_left(T a, T b) {
  if (b < T(0) || int64_t(b) >= int64_t(sizeof(T) * 8)) return T(0);
  return T(a << b);
}

template <typename T> T mx_shift_right(T a, T b) {
  if (b < T(0) || int64_t(b) >= int64_t(sizeof(T) * 8)) return (a < T(0)) ? T(-1) : T(0);
  return T(a >> b);
}

// A pointer to threadgroup memory: MSL spells its address space; in CUDA a pointer to
// shared memory is a plain pointer (__shared__ qualifies only declarations).
#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define MX_THREADGROUP_PTR
#else
#define MX_THREADGROUP_PTR threadgroup
#endif

// Contiguous kernels give each thread MX_WORK elements, `threads` apart (so that every
// load and store of a warp is coalesced): launch ceil(size / MX_WORK) threads.
#define MX_WORK 4

// MX_WORK consecutive elements as one aligned unit: a contiguous kernel whose arrays are
// all aligned to it (the host checks) moves each thread's elements with one wide load or
// store (128 bits for float) instead of MX_WORK narrow ones.
template <typename T> struct alignas(MX_WORK * sizeof(T)) MxVec { T v[MX_WORK]; };

// The 64-bit linear index of a thread in a 2-D grid (grids over 2^32 elements use y).
inline size_t mx_linear_index(uint2 index, uint2 grid) {
  return size_t(index.x) + size_t(grid.x) * size_t(index.y);
}

// Element offset of linear index i in a strided layout of ndim dims.
#define MX_MAX_DIMS 8

struct Strided1 {
  int64_t ndim;
  int64_t shape[MX_MAX_DIMS];
  int64_t strides[MX_MAX_DIMS];
};

struct Strided2 {
  int64_t ndim;
  int64_t shape[MX_MAX_DIMS];
  int64_t a_strides[MX_MAX_DIMS];
  int64_t b_strides[MX_MAX_DIMS];
};

struct Strided3 {
  int64_t ndim;
  int64_t shape[MX_MAX_DIMS];
  int64_t a_strides[MX_MAX_DIMS];
  int64_t b_strides[MX_MAX_DIMS];
  int64_t c_strides[MX_MAX_DIMS];
};

// Set when a kernel meets an index out of range (the backend raises IndexError after the
// wait); the kernel then reads or writes element 0 instead, so nothing outside the buffer
// is touched.
inline int64_t mx_checked_index(int64_t v, int64_t n, device int32_t* err) {
  if (v < 0) v += n;
  if (v < 0 || v >= n) {
    err[0] = 1;
    return 0;
  }
  return v;
}
