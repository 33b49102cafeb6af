// layout.metal: kernels of the creation and layout primitives that are more than a strided
// copy (shaders/copy.metal), of the sums along one axis of trace and vecdot, and of the
// elementwise primitives that take parameters (MSL subset; docs/gpu.md).
// Instances: unary_pv<T, U, Op> / unary_pg<T, U, Op> (Op a parameterised function object of
// ops.metal: Round<A>, NanToNum<T>), band<T> (eye, tri, tril, triu), roll_g<T>,
// linspace<U, C>, window<U>, sum_axis<T, A, U> (trace), dot_axis<T, A, U> (vecdot).
#include <metal_stdlib>
#include "utils.metal"
#include "ops.metal"
using namespace metal;

// must equal the backend's threadgroup size (mx/backend/gpu/backend.py THREADGROUP)
#define MX_AXIS_THREADS 256

// A product rounded on its own: the CPU kernels (NumPy) round every product before the
// addition that follows, and a compiler that fuses the two into one multiply-add would
// round once. (CUDA fuses unless told not to; Metal's compiler is trusted not to here.)
#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
inline float mx_mul_rn(float a, float b) { return __fmul_rn(a, b); }
inline double mx_mul_rn(double a, double b) { return __dmul_rn(a, b); }
#else
inline float mx_mul_rn(float a, float b) { return a * b; }
#endif

// the widest float the device has: double on CUDA (what the CPU kernels compute in), float
// on Metal
#if MX_DOUBLE
typedef double mx_layout_wide;
#define MX_WIDE(x) x
#else
typedef float mx_layout_wide;
#define MX_WIDE(x) x##f
#endif

// ---------------------------------------------------------------------------------------
// elementwise with parameters: out[i] = Op(params)(in[i]) converted to U
// ---------------------------------------------------------------------------------------
// contiguous input: MX_WORK elements a thread
template <typename T, typename U, typename Op>
[[kernel]] void unary_pv(
    device const T* in [[buffer(0)]],
    device U* out [[buffer(1)]],
    constant const size_t& size [[buffer(2)]],
    constant const typename Op::Params& params [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  const Op op(params);
  size_t i = mx_linear_index(index, grid);
  size_t step = size_t(grid.x) * size_t(grid.y);
  for (int k = 0; k < MX_WORK; ++k, i += step) {
    if (i >= size) return;
    out[i] = CastTo<U>::run(op(in[i]));
  }
}

// strided input (element strides, any sign; 0 broadcasts), contiguous output
template <typename T, typename U, typename Op>
[[kernel]] void unary_pg(
    device const T* in [[buffer(0)]],
    device U* out [[buffer(1)]],
    constant const size_t& size [[buffer(2)]],
    constant const typename Op::Params& params [[buffer(3)]],
    constant const Strided1& layout [[buffer(4)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  const Op op(params);
  int64_t loc = 0;
  size_t rest = i;
  for (int d = int(layout.ndim) - 1; d >= 0; --d) {
    size_t n = size_t(layout.shape[d]);
    loc += int64_t(rest % n) * layout.strides[d];
    rest /= n;
  }
  out[i] = CastTo<U>::run(op(in[loc]));
}

// ---------------------------------------------------------------------------------------
// bands of matrices: eye, tri, tril, triu
// ---------------------------------------------------------------------------------------
struct BandLayout {
  Strided1 s;       // the input over the output's shape (collapsed; 0 strides broadcast)
  int64_t rows;     // the last two axes of the (contiguous) output
  int64_t cols;
  int64_t lo;       // element (r, c) is kept when lo <= c - r <= hi, else zero
  int64_t hi;
};

template <typename T>
[[kernel]] void band(
    device const T* in [[buffer(0)]],
    device T* out [[buffer(1)]],
    constant const size_t& size [[buffer(2)]],
    constant const BandLayout& lay [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  int64_t c = int64_t(i % size_t(lay.cols));
  int64_t r = int64_t((i / size_t(lay.cols)) % size_t(lay.rows));
  int64_t d = c - r;
  if (d < lay.lo || d > lay.hi) {
    out[i] = T(0);
    return;
  }
  int64_t loc = 0;
  size_t rest = i;
  for (int k = int(lay.s.ndim) - 1; k >= 0; --k) {
    size_t n = size_t(lay.s.shape[k]);
    loc += int64_t(rest % n) * lay.s.strides[k];
    rest /= n;
  }
  out[i] = in[loc];
}

// ---------------------------------------------------------------------------------------
// roll: out[..., c_d, ...] = in[..., (c_d - shift_d) mod n_d, ...], contiguous output
// ---------------------------------------------------------------------------------------
struct RollLayout {
  Strided1 s;                    // the shape and the input's element strides
  int64_t shift[MX_MAX_DIMS];    // each dim's shift, in [0, n)
};

template <typename T>
[[kernel]] void roll_g(
    device const T* in [[buffer(0)]],
    device T* out [[buffer(1)]],
    constant const size_t& size [[buffer(2)]],
    constant const RollLayout& lay [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  int64_t loc = 0;
  size_t rest = i;
  for (int d = int(lay.s.ndim) - 1; d >= 0; --d) {
    int64_t n = lay.s.shape[d];
    int64_t k = int64_t(rest % size_t(n)) - lay.shift[d];
    if (k < 0) k += n;
    loc += k * lay.s.strides[d];
    rest /= size_t(n);
  }
  out[i] = in[loc];
}

// ---------------------------------------------------------------------------------------
// linspace and windows
// ---------------------------------------------------------------------------------------
// the CPU kernels' conversion of computed floats: to integers through int64 (negative values
// wrap into unsigned types), to bool and to floats as NumPy's astype
template <typename U> struct FloatTo {
  template <typename C> static U run(C v) { return U(int64_t(v)); }
};
template <> struct FloatTo<bool> {
  template <typename C> static bool run(C v) { return v != C(0); }
};
template <> struct FloatTo<half> {
  template <typename C> static half run(C v) { return CastTo<half>::run(v); }
};
template <> struct FloatTo<bfloat> {
  template <typename C> static bfloat run(C v) { return CastTo<bfloat>::run(v); }
};
template <> struct FloatTo<float> {
  template <typename C> static float run(C v) { return float(v); }
};
#if MX_DOUBLE
template <> struct FloatTo<double> {
  template <typename C> static double run(C v) { return double(v); }
};
#endif

// (1 - t) * start + t * stop with t = i / div (t = i when div is 0), each step rounded to C
// (float, or double for a float64 result) as the CPU kernel computes
template <typename U, typename C>
[[kernel]] void linspace(
    device U* out [[buffer(0)]],
    constant const size_t& size [[buffer(1)]],
    constant const C& start [[buffer(2)]],
    constant const C& stop [[buffer(3)]],
    constant const int64_t& div [[buffer(4)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  C t = C(i);
  if (div > 0) t = t / C(div);
  C v = mx_mul_rn(C(1) - t, start) + mx_mul_rn(t, stop);
  out[i] = FloatTo<U>::run(v);
}

// NumPy's windows of M = size points (M > 1), computed in mx_layout_wide and rounded to U;
// kind: 0 hanning, 1 hamming, 2 blackman, 3 bartlett
template <typename U>
[[kernel]] void window(
    device U* out [[buffer(0)]],
    constant const size_t& size [[buffer(1)]],
    constant const int32_t& kind [[buffer(2)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  typedef mx_layout_wide W;
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  const W pi = MX_WIDE(3.141592653589793);
  W m1 = W(size) - W(1);
  W n = W(1) - W(size) + W(2) * W(i);       // arange(1 - M, M, 2): exact
  W v;
  if (kind == 3) {
    W q = n / m1;
    v = n <= W(0) ? W(1) + q : W(1) - q;
  } else {
    W c = metal::cos(mx_mul_rn(pi, n) / m1);
    if (kind == 0) {
      v = MX_WIDE(0.5) + mx_mul_rn(MX_WIDE(0.5), c);
    } else if (kind == 1) {
      v = MX_WIDE(0.54) + mx_mul_rn(MX_WIDE(0.46), c);
    } else {
      W c2 = metal::cos(mx_mul_rn(W(2) * pi, n) / m1);
      v = (MX_WIDE(0.42) + mx_mul_rn(MX_WIDE(0.5), c)) + mx_mul_rn(MX_WIDE(0.08), c2);
    }
  }
  out[i] = CastTo<U>::run(v);
}

// ---------------------------------------------------------------------------------------
// sums along one axis (trace: the diagonal; vecdot: products of two operands): one
// threadgroup of MX_AXIS_THREADS threads an output; T input, A accumulator, U output
// ---------------------------------------------------------------------------------------
struct AxisLayout {
  Strided2 s;        // the outputs' shape (collapsed) and the operands' strides along it
  int64_t n;         // elements summed into each output
  int64_t a_step;    // the operands' element strides along the summed axis
  int64_t b_step;
};

// one term of vecdot: floats multiply in A (float for half and bfloat, as the CPU kernel
// upcasts), integers in T (wrapping as NumPy's multiply) before the sum widens them
template <typename A> struct DotTerm {
  template <typename T> static A f(T a, T b, Tag<1>) { return A(a) * A(b); }
  template <typename T> static A f(T a, T b, Tag<0>) { return A(T(a * b)); }
  template <typename T> static A run(T a, T b) { return f(a, b, Tag<IsFloat<T>::value>()); }
};

// the sum of the threadgroup's values of `acc`, in thread 0
template <typename A>
A mx_group_sum(A acc, uint lid, MX_THREADGROUP_PTR A* shared) {
  shared[lid] = acc;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint s = MX_AXIS_THREADS / 2; s > 0; s >>= 1) {
    if (lid < s) shared[lid] = A(shared[lid] + shared[lid + s]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  return shared[0];
}

template <typename T, typename A, typename U>
[[kernel]] void sum_axis(
    device const T* in [[buffer(0)]],
    device U* out [[buffer(1)]],
    constant const size_t& size [[buffer(2)]],
    constant const AxisLayout& lay [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A shared[MX_AXIS_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t o = i / MX_AXIS_THREADS;
  uint lid = uint(i % MX_AXIS_THREADS);
  if (o >= size) return;       // (whole threadgroups: size counts outputs)
  int64_t loc = 0;
  size_t rest = o;
  for (int d = int(lay.s.ndim) - 1; d >= 0; --d) {
    size_t n = size_t(lay.s.shape[d]);
    loc += int64_t(rest % n) * lay.s.a_strides[d];
    rest /= n;
  }
  A acc = A(0);
  for (int64_t k = int64_t(lid); k < lay.n; k += MX_AXIS_THREADS) {
    acc = A(acc + A(in[loc + k * lay.a_step]));
  }
  A total = mx_group_sum<A>(acc, lid, shared);
  if (lid == 0) out[o] = CastTo<U>::run(total);
}

template <typename T, typename A, typename U>
[[kernel]] void dot_axis(
    device const T* a [[buffer(0)]],
    device const T* b [[buffer(1)]],
    device U* out [[buffer(2)]],
    constant const size_t& size [[buffer(3)]],
    constant const AxisLayout& lay [[buffer(4)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A shared[MX_AXIS_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t o = i / MX_AXIS_THREADS;
  uint lid = uint(i % MX_AXIS_THREADS);
  if (o >= size) return;
  int64_t la = 0;
  int64_t lb = 0;
  size_t rest = o;
  for (int d = int(lay.s.ndim) - 1; d >= 0; --d) {
    size_t n = size_t(lay.s.shape[d]);
    int64_t k = int64_t(rest % n);
    la += k * lay.s.a_strides[d];
    lb += k * lay.s.b_strides[d];
    rest /= n;
  }
  A acc = A(0);
  for (int64_t k = int64_t(lid); k < lay.n; k += MX_AXIS_THREADS) {
    acc = A(acc + DotTerm<A>::run(a[la + k * lay.a_step], b[lb + k * lay.b_step]));
  }
  A total = mx_group_sum<A>(acc, lid, shared);
  if (lid == 0) out[o] = CastTo<U>::run(total);
}
