// misc.metal: hadamard_transform, searchsorted and median's middle values.
// Instances: hadamard_rows<T, A>, searchsorted<C>, median_rows<T, A, U>.
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

// must equal the backend's threadgroup size (mx/backend/gpu/backend.py THREADGROUP)
#define MX_MISC_THREADS 256
// the longest row hadamard_rows transforms (mx/backend/gpu/misc.py HADAMARD_MAX)
#define MX_HADAMARD_MAX 4096

// The Walsh-Hadamard transform of contiguous rows of n = m * p elements (p a power of two),
// one threadgroup a row, computed in A (float for half/bfloat, as on the CPU) in
// threadgroup memory: the butterflies (a + b, a - b) of the pairs (i, i + h) in blocks of
// 2h, h = p/2 down to 1 (the CPU kernel's stages, in its order), then, when m > 1, each
// output i * p + j is sum_k H[i, k] * y[k * p + j] (k in order, as the CPU's matrix
// product accumulates), then multiplied by `scale` (rounded to A) and rounded to T.
template <typename T, typename A>
[[kernel]] void hadamard_rows(
    device const T* in [[buffer(0)]],
    device const A* h [[buffer(1)]],
    device T* out [[buffer(2)]],
    constant const size_t& rows [[buffer(3)]],
    constant const size_t& n [[buffer(4)]],
    constant const size_t& m [[buffer(5)]],
    constant const A& scale [[buffer(6)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A y[MX_HADAMARD_MAX];
  size_t i = mx_linear_index(index, grid);
  size_t r = i / MX_MISC_THREADS;
  uint lid = uint(i % MX_MISC_THREADS);
  if (r >= rows) return;
  uint len = uint(n);
  uint mm = uint(m);
  uint p = len / mm;
  device const T* row = in + r * n;
  for (uint j = lid; j < len; j += MX_MISC_THREADS) y[j] = A(row[j]);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint hh = p / 2; hh >= 1; hh /= 2) {
    for (uint q = lid; q < len / 2; q += MX_MISC_THREADS) {
      uint i0 = (q / hh) * (2 * hh) + q % hh;
      uint i1 = i0 + hh;
      A a = y[i0];
      A b = y[i1];
      y[i0] = a + b;
      y[i1] = a - b;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  device T* orow = out + r * n;
  for (uint e = lid; e < len; e += MX_MISC_THREADS) {
    A v;
    if (mm > 1) {
      uint oi = e / p;
      uint oj = e % p;
      v = A(0);
      for (uint k = 0; k < mm; ++k) v += h[oi * mm + k] * y[k * p + oj];
    } else {
      v = y[e];
    }
    orow[e] = CastTo<T>::run(A(v * scale));
  }
}

// NumPy's order of a sorted sequence: NaN after every number
template <typename C> inline bool mx_ss_less(C a, C b) { return a < b || (b != b && a == a); }

// out[i] = the insertion index of values[i] into the ascending row of `seq` it belongs to
// (rows of `len` elements, `per` values a row; one row for an unbatched searchsorted):
// side 0 ('left') counts the elements less than the value, side 1 ('right') those not
// greater. Both inputs are contiguous and of the comparison type C.
template <typename C>
[[kernel]] void searchsorted(
    device const C* seq [[buffer(0)]],
    device const C* values [[buffer(1)]],
    device uint32_t* out [[buffer(2)]],
    constant const size_t& count [[buffer(3)]],
    constant const size_t& len [[buffer(4)]],
    constant const size_t& per [[buffer(5)]],
    constant const int64_t& side [[buffer(6)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= count) return;
  device const C* s = seq + (i / per) * len;
  C v = values[i];
  size_t lo = 0;
  size_t hi = len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    C e = s[mid];
    bool right_of = side == 0 ? mx_ss_less<C>(e, v) : !mx_ss_less<C>(v, e);
    if (right_of) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  out[i] = uint32_t(lo);
}

// median of sorted contiguous rows of n elements (NaN last): NaN when the row's last is
// NaN, else the middle element, or the mean (a + b) / 2 of the middle two, in A (NumPy's
// mean: float for half/bfloat/float, double for double and integers), rounded to U.
template <typename T, typename A, typename U>
[[kernel]] void median_rows(
    device const T* sorted [[buffer(0)]],
    device U* out [[buffer(1)]],
    constant const size_t& rows [[buffer(2)]],
    constant const size_t& n [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t r = mx_linear_index(index, grid);
  if (r >= rows) return;
  device const T* s = sorted + r * n;
  A last = A(s[n - 1]);
  A v;
  if (last != last) {
    v = last;
  } else if ((n & 1) != 0) {
    v = A(s[n / 2]);
  } else {
    v = (A(s[n / 2 - 1]) + A(s[n / 2])) / A(2);
  }
  out[r] = CastTo<U>::run(v);
}
