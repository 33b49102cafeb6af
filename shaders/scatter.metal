// scatter.metal: accumulating scatters, out[dst(i)] = Op(out[dst(i)], vals[i]) for every
// element i of an update region, with atomics, so that repeated destinations all contribute
// (as NumPy's ufunc.at). The handler (mx/backend/gpu/scatter.py) has copied the destination
// into `out` first.
// Instances: scatter_acc<T, I, Acc> (T element type, I index type, Acc ScatterAdd,
// ScatterSubtract or ScatterOp<Multiply|Divide|Maximum|Minimum>).
#include <metal_stdlib>
#include "utils.metal"
#include "ops.metal"
using namespace metal;

// index arrays a scatter reads (NumPy advanced indexing with up to this many arrays)
#define MX_SCATTER_IDX 4

// The bits of T as the unsigned integer of its size, and back: integers and bool convert by
// value (two's complement), floats are bit-cast.
template <int N> struct UWord {};
template <> struct UWord<1> { typedef uint8_t type; };
template <> struct UWord<2> { typedef uint16_t type; };
template <> struct UWord<4> { typedef uint32_t type; };
template <> struct UWord<8> { typedef uint64_t type; };

template <typename T> struct Bits {
  typedef typename UWord<sizeof(T)>::type B;
  static B to(T x, Tag<0>) { return B(x); }
  static T from(B b, Tag<0>) { return T(b); }
  static B to(T x, Tag<1>) { return mx_as_type<B>(x); }
  static T from(B b, Tag<1>) { return mx_as_type<T>(b); }
  static B to(T x) { return to(x, Tag<IsFloat<T>::value>()); }
  static T from(B b) { return from(b, Tag<IsFloat<T>::value>()); }
};

// out[i] = Op(out[i], v) atomically, as a compare-and-swap loop. A value the operation leaves
// unchanged is not written. Types of 1 and 2 bytes swap the aligned 32-bit word that holds
// the element (the handler checks that `out` starts 4-byte aligned); the neighbours in the
// word are written back as they were read, and a change to them makes the swap retry.
template <typename Op, typename T>
void mx_atomic_subword(device T* out, int64_t i, T v) {
  typedef typename Bits<T>::B B;
  int64_t byte = i * int64_t(sizeof(T));
  device uint32_t* w = reinterpret_cast<device uint32_t*>(out) + (byte >> 2);
  uint32_t shift = uint32_t(byte & 3) * 8u;
  uint32_t mask = uint32_t(B(~B(0))) << shift;
  uint32_t old = mx_atomic_load32(w);
  for (;;) {
    T cur = Bits<T>::from(B((old & mask) >> shift));
    uint32_t want = (old & ~mask) | (uint32_t(Bits<T>::to(Op()(cur, v))) << shift);
    if (want == old || mx_atomic_cas32(w, old, want)) return;
  }
}

template <typename Op, typename T>
void mx_atomic_apply(device T* out, int64_t i, T v, Tag<1>) { mx_atomic_subword<Op, T>(out, i, v); }

template <typename Op, typename T>
void mx_atomic_apply(device T* out, int64_t i, T v, Tag<2>) { mx_atomic_subword<Op, T>(out, i, v); }

template <typename Op, typename T>
void mx_atomic_apply(device T* out, int64_t i, T v, Tag<4>) {
  device uint32_t* w = reinterpret_cast<device uint32_t*>(out + i);
  uint32_t old = mx_atomic_load32(w);
  for (;;) {
    uint32_t want = uint32_t(Bits<T>::to(Op()(Bits<T>::from(typename Bits<T>::B(old)), v)));
    if (want == old || mx_atomic_cas32(w, old, want)) return;
  }
}

#if MX_ATOMIC64
template <typename Op, typename T>
void mx_atomic_apply(device T* out, int64_t i, T v, Tag<8>) {
  device uint64_t* w = reinterpret_cast<device uint64_t*>(out + i);
  uint64_t old = mx_atomic_load64(w);
  for (;;) {
    uint64_t want = uint64_t(Bits<T>::to(Op()(Bits<T>::from(typename Bits<T>::B(old)), v)));
    if (want == old || mx_atomic_cas64(w, old, want)) return;
  }
}
#endif

// The accumulations: apply(out, i, v) does out[i] = Op(out[i], v) atomically.
template <typename Op> struct ScatterOp {
  template <typename T> static void apply(device T* out, int64_t i, T v) {
    mx_atomic_apply<Op, T>(out, i, v, Tag<int(sizeof(T))>());
  }
};

// Adds use the hardware's atomic adds where the type has one (float, 32-bit integers and,
// with MX_ATOMIC64, 64-bit integers and double); half, bfloat, bool and 8/16-bit integers
// swap (in float for half and bfloat, rounded once, as the CPU adds them).
struct ScatterAdd {
  template <typename T> static void apply(device T* out, int64_t i, T v) {
    mx_atomic_apply<Add, T>(out, i, v, Tag<int(sizeof(T))>());
  }
  // CUDA's float atomic add flushes subnormal operands and results to zero: it is exact
  // only for |v| >= 2^-100 (then a flushed old value is below half an ulp of the sum, and
  // the sum is not subnormal); smaller values, zeros and NaN swap (a zero writes nothing)
  static void apply(device float* out, int64_t i, float v) {
    if (metal::fabs(v) >= 7.888609052210118e-31f) {
      mx_atomic_add_f32(out + i, v);
    } else {
      mx_atomic_apply<Add, float>(out, i, v, Tag<4>());
    }
  }
  static void apply(device uint32_t* out, int64_t i, uint32_t v) { mx_atomic_add_u32(out + i, v); }
  static void apply(device int32_t* out, int64_t i, int32_t v) {
    mx_atomic_add_u32(reinterpret_cast<device uint32_t*>(out + i), uint32_t(v));
  }
#if MX_ATOMIC64
  static void apply(device uint64_t* out, int64_t i, uint64_t v) { mx_atomic_add_u64(out + i, v); }
  static void apply(device int64_t* out, int64_t i, int64_t v) {
    mx_atomic_add_u64(reinterpret_cast<device uint64_t*>(out + i), uint64_t(v));
  }
#if MX_DOUBLE
  static void apply(device double* out, int64_t i, double v) { mx_atomic_add_f64(out + i, v); }
#endif
#endif
};

// a - v is a + (-v) exactly, in floats and in wrapping integers (bool has no subtraction)
struct ScatterSubtract {
  template <typename T> static void apply(device T* out, int64_t i, T v) {
    ScatterAdd::apply(out, i, Negative()(v));
  }
};

struct ScatterLayout {
  int64_t ndim;                                   // dims of the update region (collapsed)
  int64_t shape[MX_MAX_DIMS];
  int64_t out_strides[MX_MAX_DIMS];               // destination element strides (0 on index dims)
  int64_t val_strides[MX_MAX_DIMS];               // the values' (0 where they broadcast)
  int64_t idx_strides[MX_SCATTER_IDX][MX_MAX_DIMS];  // each index array's (0 off its dims)
  int64_t base;                                   // destination offset of ints and slice starts
  int64_t n_idx;                                  // index arrays read (0 to MX_SCATTER_IDX)
  int64_t axis_n[MX_SCATTER_IDX];                 // size of the axis each one indexes
  int64_t axis_stride[MX_SCATTER_IDX];            // and its destination element stride
};

// Adds index v (negative counts from the end) along an axis of size n and stride `stride`
// to `off`; false (and the error flag set) when it is out of range.
inline bool mx_scatter_offset(int64_t v, int64_t n, int64_t stride, device int32_t* err,
                              thread int64_t& off) {
  if (v < 0) v += n;
  if (v < 0 || v >= n) {
    err[0] = 1;
    return false;
  }
  off += v * stride;
  return true;
}

// One thread an element of the update region. An index out of range sets err[0] (the
// backend raises IndexError after the wait) and that element is not applied. Unused index
// buffers may be any buffer (they are not read); err is not touched without index arrays.
template <typename T, typename I, typename Acc>
[[kernel]] void scatter_acc(
    device const T* vals [[buffer(0)]],
    device const I* idx0 [[buffer(1)]],
    device const I* idx1 [[buffer(2)]],
    device const I* idx2 [[buffer(3)]],
    device const I* idx3 [[buffer(4)]],
    device T* out [[buffer(5)]],
    device int32_t* err [[buffer(6)]],
    constant const size_t& size [[buffer(7)]],
    constant const ScatterLayout& lay [[buffer(8)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  int64_t lo = lay.base;
  int64_t lv = 0;
  int64_t l0 = 0;
  int64_t l1 = 0;
  int64_t l2 = 0;
  int64_t l3 = 0;
  size_t rest = i;
  for (int d = int(lay.ndim) - 1; d >= 0; --d) {
    size_t n = size_t(lay.shape[d]);
    int64_t k = int64_t(rest % n);
    rest /= n;
    lo += k * lay.out_strides[d];
    lv += k * lay.val_strides[d];
    l0 += k * lay.idx_strides[0][d];
    l1 += k * lay.idx_strides[1][d];
    l2 += k * lay.idx_strides[2][d];
    l3 += k * lay.idx_strides[3][d];
  }
  int64_t n_idx = lay.n_idx;
  if (n_idx > 0 && !mx_scatter_offset(int64_t(idx0[l0]), lay.axis_n[0], lay.axis_stride[0], err, lo)) return;
  if (n_idx > 1 && !mx_scatter_offset(int64_t(idx1[l1]), lay.axis_n[1], lay.axis_stride[1], err, lo)) return;
  if (n_idx > 2 && !mx_scatter_offset(int64_t(idx2[l2]), lay.axis_n[2], lay.axis_stride[2], err, lo)) return;
  if (n_idx > 3 && !mx_scatter_offset(int64_t(idx3[l3]), lay.axis_n[3], lay.axis_stride[3], err, lo)) return;
  Acc::apply(out, lo, vals[lv]);
}
