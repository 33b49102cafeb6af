// select.metal: out[i] = cond[i] ? a[i] : b[i] (mx.where), with broadcasting.
// Instances: select_v<T> (all three contiguous and of the output's size), select_g<T>.
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

template <typename T>
[[kernel]] void select_v(
    device const bool* cond [[buffer(0)]],
    device const T* a [[buffer(1)]],
    device const T* b [[buffer(2)]],
    device T* out [[buffer(3)]],
    constant const size_t& size [[buffer(4)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  size_t step = size_t(grid.x) * size_t(grid.y);
  if (i + (MX_WORK - 1) * step < size) {
    // all loads before any store (see unary.metal's unary_v)
    bool vc[MX_WORK];
    T va[MX_WORK];
    T vb[MX_WORK];
    for (int k = 0; k < MX_WORK; ++k) {
      vc[k] = cond[i + k * step];
      va[k] = a[i + k * step];
      vb[k] = b[i + k * step];
    }
    for (int k = 0; k < MX_WORK; ++k) out[i + k * step] = vc[k] ? va[k] : vb[k];
    return;
  }
  for (int k = 0; k < MX_WORK; ++k, i += step) {
    if (i >= size) return;
    out[i] = cond[i] ? a[i] : b[i];
  }
}

// Strided3: a_strides for cond, b_strides for a, c_strides for b
template <typename T>
[[kernel]] void select_g(
    device const bool* cond [[buffer(0)]],
    device const T* a [[buffer(1)]],
    device const T* b [[buffer(2)]],
    device T* out [[buffer(3)]],
    constant const size_t& size [[buffer(4)]],
    constant const Strided3& layout [[buffer(5)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  int64_t lc = 0;
  int64_t la = 0;
  int64_t lb = 0;
  size_t rest = i;
  for (int d = int(layout.ndim) - 1; d >= 0; --d) {
    size_t n = size_t(layout.shape[d]);
    int64_t k = int64_t(rest % n);
    lc += k * layout.a_strides[d];
    la += k * layout.b_strides[d];
    lb += k * layout.c_strides[d];
    rest /= n;
  }
  out[i] = cond[lc] ? a[la] : b[lb];
}
