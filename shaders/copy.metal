// copy.metal: copies between strided layouts, fills and ranges (MSL subset; docs/gpu.md).
// Instances: copy_gg<T> (strided input -> strided output; a 0 input stride broadcasts, so
// a one-element input fills), arange_int<U> and arange_float<U>.
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

// out[loc_b(i)] = in[loc_a(i)] for every linear index i of layout.shape (element strides
// a_strides for the input, b_strides for the output)
template <typename T>
[[kernel]] void copy_gg(
    device const T* in [[buffer(0)]],
    device T* out [[buffer(1)]],
    constant const size_t& size [[buffer(2)]],
    constant const Strided2& layout [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  int64_t la = 0;
  int64_t lb = 0;
  size_t rest = i;
  for (int d = int(layout.ndim) - 1; d >= 0; --d) {
    size_t n = size_t(layout.shape[d]);
    int64_t k = int64_t(rest % n);
    la += k * layout.a_strides[d];
    lb += k * layout.b_strides[d];
    rest /= n;
  }
  out[lb] = in[la];
}

// integer ranges: start + i * step in int64, wrapped to U (the CPU kernel's arithmetic)
template <typename U>
[[kernel]] void arange_int(
    device U* out [[buffer(0)]],
    constant const size_t& size [[buffer(1)]],
    constant const int64_t& start [[buffer(2)]],
    constant const int64_t& step [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  out[i] = U(start + int64_t(i) * step);
}

// float ranges: start + i * step in the widest float the device has (double on CUDA, as
// the CPU kernel computes), rounded once to U
#if MX_DOUBLE
typedef double mx_wide_float;
#else
typedef float mx_wide_float;
#endif

template <typename U>
[[kernel]] void arange_float(
    device U* out [[buffer(0)]],
    constant const size_t& size [[buffer(1)]],
    constant const mx_wide_float& start [[buffer(2)]],
    constant const mx_wide_float& step [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  out[i] = CastTo<U>::run(start + mx_wide_float(i) * step);
}
