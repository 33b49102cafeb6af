// ops.metal: the elementwise operations as function objects (MSL subset; docs/gpu.md).
// Each has the semantics of mx's CPU kernel (NumPy's): the GPU tests compare them.
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

// Float functions computed in Acc<T> (float for half and bfloat) and rounded once.
#define MX_FLOAT_UNARY(NAME, EXPR)                         \
  struct NAME {                                            \
    template <typename T> T operator()(T x_) const {       \
      typedef typename Acc<T>::type A;                     \
      A x = A(x_);                                         \
      return T(EXPR);                                      \
    }                                                      \
  };

MX_FLOAT_UNARY(Exp, metal::exp(x))
MX_FLOAT_UNARY(Expm1, mx_expm1(x))
MX_FLOAT_UNARY(Log, metal::log(x))
MX_FLOAT_UNARY(Log2, metal::log2(x))
MX_FLOAT_UNARY(Log10, metal::log10(x))
MX_FLOAT_UNARY(Log1p, mx_log1p(x))
MX_FLOAT_UNARY(Sqrt, metal::sqrt(x))
MX_FLOAT_UNARY(Rsqrt, A(1) / metal::sqrt(x))
MX_FLOAT_UNARY(Reciprocal, A(1) / x)
MX_FLOAT_UNARY(Sin, metal::sin(x))
MX_FLOAT_UNARY(Cos, metal::cos(x))
MX_FLOAT_UNARY(Tan, metal::tan(x))
MX_FLOAT_UNARY(ArcSin, metal::asin(x))
MX_FLOAT_UNARY(ArcCos, metal::acos(x))
MX_FLOAT_UNARY(ArcTan, metal::atan(x))
MX_FLOAT_UNARY(Sinh, metal::sinh(x))
MX_FLOAT_UNARY(Cosh, metal::cosh(x))
MX_FLOAT_UNARY(Tanh, metal::tanh(x))
MX_FLOAT_UNARY(ArcSinh, metal::asinh(x))
MX_FLOAT_UNARY(ArcCosh, metal::acosh(x))
MX_FLOAT_UNARY(ArcTanh, metal::atanh(x))
// 1 / (1 + exp(-x)) written so that no subtraction cancels: accurate to a few ulp for every x
MX_FLOAT_UNARY(Sigmoid, x >= A(0) ? A(1) / (A(1) + metal::exp(-x))
                                  : metal::exp(x) / (A(1) + metal::exp(x)))
MX_FLOAT_UNARY(Erf, mx_erf(x))
MX_FLOAT_UNARY(ErfInv, mx_erfinv(x))
// the constant is rounded to T first, as the CPU kernel multiplies by T(180 / pi)
MX_FLOAT_UNARY(Degrees, x * A(T(Consts<A>::degrees_per_radian())))
MX_FLOAT_UNARY(Radians, x * A(T(Consts<A>::radians_per_degree())))

struct Identity {
  template <typename T> T operator()(T x) const { return x; }
};

struct Zero {
  template <typename T> T operator()(T) const { return T(0); }
};

struct Abs {
  template <typename T> T f(T x, Tag<1>) const {
    typedef typename Acc<T>::type A;
    return T(metal::fabs(A(x)));
  }
  // integers: wraps at the minimum (abs(-128) is -128 in int8), unsigned and bool unchanged
  template <typename T> T f(T x, Tag<0>) const { return x < T(0) ? T(T(0) - x) : x; }
  template <typename T> T operator()(T x) const { return f(x, Tag<IsFloat<T>::value>()); }
};

struct Negative {
  template <typename T> T f(T x, Tag<1>) const {
    typedef typename Acc<T>::type A;
    return T(-A(x));
  }
  template <typename T> T f(T x, Tag<0>) const { return T(T(0) - x); }
  template <typename T> T operator()(T x) const { return f(x, Tag<IsFloat<T>::value>()); }
};

struct Sign {
  template <typename T> T f(T x_, Tag<1>) const {
    typedef typename Acc<T>::type A;
    A x = A(x_);
    if (metal::isnan(x)) return x_;
    return T(x > A(0) ? A(1) : (x < A(0) ? A(-1) : A(0)));
  }
  template <typename T> T f(T x, Tag<0>) const {
    return T(x > T(0) ? 1 : (x < T(0) ? -1 : 0));
  }
  template <typename T> T operator()(T x) const { return f(x, Tag<IsFloat<T>::value>()); }
};

struct Square {
  template <typename T> T operator()(T x) const {
    typedef typename Acc<T>::type A;
    return T(A(x) * A(x));
  }
};

struct Floor {
  template <typename T> T f(T x, Tag<1>) const {
    typedef typename Acc<T>::type A;
    return T(metal::floor(A(x)));
  }
  template <typename T> T f(T x, Tag<0>) const { return x; }
  template <typename T> T operator()(T x) const { return f(x, Tag<IsFloat<T>::value>()); }
};

struct Trunc {
  template <typename T> T f(T x, Tag<1>) const {
    typedef typename Acc<T>::type A;
    return T(metal::trunc(A(x)));
  }
  template <typename T> T f(T x, Tag<0>) const { return x; }
  template <typename T> T operator()(T x) const { return f(x, Tag<IsFloat<T>::value>()); }
};

struct Ceil {
  template <typename T> T f(T x, Tag<1>) const {
    typedef typename Acc<T>::type A;
    return T(metal::ceil(A(x)));
  }
  template <typename T> T f(T x, Tag<0>) const { return x; }
  template <typename T> T operator()(T x) const { return f(x, Tag<IsFloat<T>::value>()); }
};

// Predicates: integers are never nan or infinite.
#define MX_PREDICATE(NAME, EXPR, INT_RESULT)                                   \
  struct NAME {                                                                \
    template <typename T> bool f(T x_, Tag<1>) const {                        \
      typedef typename Acc<T>::type A;                                         \
      A x = A(x_);                                                             \
      return EXPR;                                                             \
    }                                                                          \
    template <typename T> bool f(T, Tag<0>) const { return INT_RESULT; }      \
    template <typename T> bool operator()(T x) const {                         \
      return f(x, Tag<IsFloat<T>::value>());                                   \
    }                                                                          \
  };

MX_PREDICATE(IsNan, metal::isnan(x), false)
MX_PREDICATE(IsInf, metal::isinf(x), false)
MX_PREDICATE(IsFinite, metal::isfinite(x), true)
MX_PREDICATE(IsPosInf, metal::isinf(x) && x > A(0), false)
MX_PREDICATE(IsNegInf, metal::isinf(x) && x < A(0), false)

struct BitwiseInvert {
  template <typename T> T operator()(T x) const { return T(~x); }
  bool operator()(bool x) const { return !x; }
};

struct LogicalNot {
  bool operator()(bool x) const { return !x; }
};

// ---------------------------------------------------------------------------------------
// binary
// ---------------------------------------------------------------------------------------
// Arithmetic in Acc<T>; bool follows from C++'s conversions (+ is or, * is and, - is xor).
#define MX_ARITH(NAME, EXPR)                                       \
  struct NAME {                                                    \
    template <typename T> T operator()(T a_, T b_) const {         \
      typedef typename Acc<T>::type A;                             \
      A a = A(a_);                                                 \
      A b = A(b_);                                                 \
      return T(EXPR);                                              \
    }                                                              \
  };

MX_ARITH(Add, a + b)
MX_ARITH(Subtract, a - b)
MX_ARITH(Multiply, a * b)
MX_ARITH(Divide, a / b)
MX_ARITH(ArcTan2, metal::atan2(a, b))

#define MX_COMPARE(NAME, OP)                                       \
  struct NAME {                                                    \
    template <typename T> bool operator()(T a, T b) const {        \
      typedef typename Acc<T>::type A;                             \
      return A(a) OP A(b);                                         \
    }                                                              \
  };

MX_COMPARE(Equal, ==)
MX_COMPARE(NotEqual, !=)
MX_COMPARE(Less, <)
MX_COMPARE(LessEqual, <=)
MX_COMPARE(Greater, >)
MX_COMPARE(GreaterEqual, >=)

struct LogicalAnd {
  bool operator()(bool a, bool b) const { return a && b; }
};

struct LogicalOr {
  bool operator()(bool a, bool b) const { return a || b; }
};

struct LogicalXor {
  bool operator()(bool a, bool b) const { return a != b; }
};

struct BitwiseAnd {
  template <typename T> T operator()(T a, T b) const { return T(a & b); }
};

struct BitwiseOr {
  template <typename T> T operator()(T a, T b) const { return T(a | b); }
};

struct BitwiseXor {
  template <typename T> T operator()(T a, T b) const { return T(a ^ b); }
};

struct LeftShift {
  template <typename T> T operator()(T a, T b) const { return mx_shift_left(a, b); }
};

struct RightShift {
  template <typename T> T operator()(T a, T b) const { return mx_shift_right(a, b); }
};

// NaN propagates through maximum and minimum.
struct Maximum {
  template <typename T> T f(T a, T b, Tag<1>) const {
    typedef typename Acc<T>::type A;
    if (metal::isnan(A(a))) return a;
    if (metal::isnan(A(b))) return b;
    return A(a) >= A(b) ? a : b;
  }
  template <typename T> T f(T a, T b, Tag<0>) const { return a >= b ? a : b; }
  template <typename T> T operator()(T a, T b) const { return f(a, b, Tag<IsFloat<T>::value>()); }
};

struct Minimum {
  template <typename T> T f(T a, T b, Tag<1>) const {
    typedef typename Acc<T>::type A;
    if (metal::isnan(A(a))) return a;
    if (metal::isnan(A(b))) return b;
    return A(a) <= A(b) ? a : b;
  }
  template <typename T> T f(T a, T b, Tag<0>) const { return a <= b ? a : b; }
  template <typename T> T operator()(T a, T b) const { return f(a, b, Tag<IsFloat<T>::value>()); }
};

struct FloorDivide {
  template <typename T> T f(T a, T b, Tag<1>) const {
    typedef typename Acc<T>::type A;
    return T(mx_floor_div(A(a), A(b)));
  }
  template <typename T> T f(T a, T b, Tag<0>) const { return mx_int_floor_div(a, b); }
  template <typename T> T operator()(T a, T b) const { return f(a, b, Tag<IsFloat<T>::value>()); }
};

struct Remainder {
  template <typename T> T f(T a, T b, Tag<1>) const {
    typedef typename Acc<T>::type A;
    return T(mx_fmod_floor(A(a), A(b)));
  }
  template <typename T> T f(T a, T b, Tag<0>) const { return mx_int_mod(a, b); }
  template <typename T> T operator()(T a, T b) const { return f(a, b, Tag<IsFloat<T>::value>()); }
};

struct Power {
  template <typename T> T f(T a, T b, Tag<1>) const {
    typedef typename Acc<T>::type A;
    return T(metal::pow(A(a), A(b)));
  }
  template <typename T> T f(T a, T b, Tag<0>) const { return mx_int_pow(a, b); }
  template <typename T> T operator()(T a, T b) const { return f(a, b, Tag<IsFloat<T>::value>()); }
};

// log(exp(a) + exp(b)) without overflow; equal arguments (infinities too) give a + log 2.
struct LogAddExp {
  template <typename T> T operator()(T a_, T b_) const {
    typedef typename Acc<T>::type A;
    A a = A(a_);
    A b = A(b_);
    if (a == b) return T(a + Consts<A>::ln2());
    A d = a - b;
    if (d > A(0)) return T(a + mx_log1p(metal::exp(-d)));
    if (d <= A(0)) return T(b + mx_log1p(metal::exp(d)));
    return T(d);
  }
};

// ---------------------------------------------------------------------------------------
// parameterised (shaders/layout.metal's unary_pv / unary_pg): each has a Params struct,
// passed as a constant, and is constructed from it
// ---------------------------------------------------------------------------------------
// round(x, decimals) as NumPy computes it: with mode 1 (decimals > 0) x is multiplied by
// scale = 10^decimals, rounded half to even and divided by scale; with mode -1 (decimals < 0)
// divided by scale = 10^-decimals, rounded and multiplied; with mode 0 only rounded. A is the
// precision of each step (float for half and bfloat, double for integers); for floating T
// each step's result is rounded to T, as NumPy's ufuncs round it (integers are computed
// in double and converted once).
template <typename A> struct RoundParams {
  A scale;
  int32_t mode;
};

template <typename A> struct Round {
  typedef RoundParams<A> Params;
  A scale;
  int32_t mode;
  Round(constant const Params& p) : scale(p.scale), mode(p.mode) {}
  template <typename T> T f(T x, Tag<1>) const {
    A v = A(x);
    if (mode == 0) return T(metal::rint(v));
    A y = A(T(mode > 0 ? v * scale : v / scale));
    A r = metal::rint(y);
    return T(mode > 0 ? r / scale : r * scale);
  }
  template <typename T> T f(T x, Tag<0>) const {
    A v = A(x);
    if (mode == 0) return x;
    A r = metal::rint(mode > 0 ? v * scale : v / scale);
    return CastTo<T>::run(mode > 0 ? r / scale : r * scale);
  }
  template <typename T> T operator()(T x) const { return f(x, Tag<IsFloat<T>::value>()); }
};

// NaN -> nan, +inf -> posinf, -inf -> neginf (the values already converted to T)
template <typename T> struct NanToNumParams {
  T nan;
  T posinf;
  T neginf;
};

template <typename T> struct NanToNum {
  typedef NanToNumParams<T> Params;
  T nan;
  T posinf;
  T neginf;
  NanToNum(constant const Params& p) : nan(p.nan), posinf(p.posinf), neginf(p.neginf) {}
  T operator()(T x) const {
    typedef typename Acc<T>::type A;
    A v = A(x);
    if (metal::isnan(v)) return nan;
    if (metal::isinf(v)) return v > A(0) ? posinf : neginf;
    return x;
  }
};
