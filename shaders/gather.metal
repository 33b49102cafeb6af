// gather.metal: reads and writes at integer indices. Indices may be negative (counted from
// the end); one out of range sets err[0] (the backend raises IndexError after the wait).
// Instances (T element type, I index type): take_axis<T, I>, take_along<T, I>,
// put_along<T, I>.
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

struct TakeLayout {
  int64_t n_idx;      // indices (the flattened index array)
  int64_t n_axis;     // length of the axis taken from
  int64_t n_post;     // elements after that axis (the input is contiguous)
};

// out[a, j, b] = x[a, idx[j], b] for contiguous x and idx
template <typename T, typename I>
[[kernel]] void take_axis(
    device const T* x [[buffer(0)]],
    device const I* idx [[buffer(1)]],
    device T* out [[buffer(2)]],
    device int32_t* err [[buffer(3)]],
    constant const size_t& size [[buffer(4)]],
    constant const TakeLayout& lay [[buffer(5)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  int64_t b = int64_t(i % size_t(lay.n_post));
  size_t rest = i / size_t(lay.n_post);
  int64_t j = int64_t(rest % size_t(lay.n_idx));
  int64_t a = int64_t(rest / size_t(lay.n_idx));
  int64_t v = mx_checked_index(int64_t(idx[j]), lay.n_axis, err);
  out[i] = x[(a * lay.n_axis + v) * lay.n_post + b];
}

struct AlongLayout {
  Strided3 s;           // the iteration shape and the strides of the three arrays
  int64_t axis_n;       // length of the indexed axis of x
  int64_t axis_stride;  // its element stride in x
};

// out[i] = x[pos(i) with the axis coordinate replaced by idx[pos(i)]]; s.a_strides are x's
// strides with 0 on the axis, s.b_strides idx's (0 where it broadcasts); out is contiguous
template <typename T, typename I>
[[kernel]] void take_along(
    device const T* x [[buffer(0)]],
    device const I* idx [[buffer(1)]],
    device T* out [[buffer(2)]],
    device int32_t* err [[buffer(3)]],
    constant const size_t& size [[buffer(4)]],
    constant const AlongLayout& lay [[buffer(5)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  int64_t lx = 0;
  int64_t li = 0;
  size_t rest = i;
  for (int d = int(lay.s.ndim) - 1; d >= 0; --d) {
    size_t n = size_t(lay.s.shape[d]);
    int64_t k = int64_t(rest % n);
    lx += k * lay.s.a_strides[d];
    li += k * lay.s.b_strides[d];
    rest /= n;
  }
  int64_t v = mx_checked_index(int64_t(idx[li]), lay.axis_n, err);
  out[i] = x[lx + v * lay.axis_stride];
}

// res[pos(i) with the axis coordinate replaced by idx[pos(i)]] = vals[pos(i)] over the
// broadcast shape of idx and vals; s.a_strides are idx's, s.b_strides vals', s.c_strides
// res's (0 on the axis). Repeated indices: one of the writes wins.
template <typename T, typename I>
[[kernel]] void put_along(
    device const I* idx [[buffer(0)]],
    device const T* vals [[buffer(1)]],
    device T* res [[buffer(2)]],
    device int32_t* err [[buffer(3)]],
    constant const size_t& size [[buffer(4)]],
    constant const AlongLayout& lay [[buffer(5)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  int64_t li = 0;
  int64_t lv = 0;
  int64_t lr = 0;
  size_t rest = i;
  for (int d = int(lay.s.ndim) - 1; d >= 0; --d) {
    size_t n = size_t(lay.s.shape[d]);
    int64_t k = int64_t(rest % n);
    li += k * lay.s.a_strides[d];
    lv += k * lay.s.b_strides[d];
    lr += k * lay.s.c_strides[d];
    rest /= n;
  }
  int64_t v = mx_checked_index(int64_t(idx[li]), lay.axis_n, err);
  res[lr + v * lay.axis_stride] = vals[lv];
}
