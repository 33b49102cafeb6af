// binary.metal: out[i] = Op(a[i], b[i]) converted to U, with broadcasting.
// Instances: binary_vv (both contiguous, same size), binary_sv / binary_vs (one operand a
// single element), binary_g (strided, broadcasting) -- each <T, U, Op>.
#include <metal_stdlib>
#include "utils.metal"
#include "ops.metal"
using namespace metal;

template <typename T, typename U, typename Op>
[[kernel]] void binary_vv(
    device const T* a [[buffer(0)]],
    device const T* b [[buffer(1)]],
    device U* out [[buffer(2)]],
    constant const size_t& size [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  size_t step = size_t(grid.x) * size_t(grid.y);
  if (i + (MX_WORK - 1) * step < size) {
    // all loads before any store (see unary_v)
    T va[MX_WORK];
    for (int k = 0; k < MX_WORK; ++k) va[k] = a[i + k * step];
    T vb[MX_WORK];
    for (int k = 0; k < MX_WORK; ++k) vb[k] = b[i + k * step];
    for (int k = 0; k < MX_WORK; ++k) out[i + k * step] = CastTo<U>::run(Op()(va[k], vb[k]));
    return;
  }
  for (int k = 0; k < MX_WORK; ++k, i += step) {
    if (i >= size) return;
    out[i] = CastTo<U>::run(Op()(a[i], b[i]));
  }
}

template <typename T, typename U, typename Op>
[[kernel]] void binary_sv(
    device const T* a [[buffer(0)]],
    device const T* b [[buffer(1)]],
    device U* out [[buffer(2)]],
    constant const size_t& size [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  size_t step = size_t(grid.x) * size_t(grid.y);
  if (i + (MX_WORK - 1) * step < size) {
    // all loads before any store (see unary_v)
    const T va0 = a[0];
    T vb[MX_WORK];
    for (int k = 0; k < MX_WORK; ++k) vb[k] = b[i + k * step];
    for (int k = 0; k < MX_WORK; ++k) out[i + k * step] = CastTo<U>::run(Op()(va0, vb[k]));
    return;
  }
  for (int k = 0; k < MX_WORK; ++k, i += step) {
    if (i >= size) return;
    out[i] = CastTo<U>::run(Op()(a[0], b[i]));
  }
}

template <typename T, typename U, typename Op>
[[kernel]] void binary_vs(
    device const T* a [[buffer(0)]],
    device const T* b [[buffer(1)]],
    device U* out [[buffer(2)]],
    constant const size_t& size [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  size_t step = size_t(grid.x) * size_t(grid.y);
  if (i + (MX_WORK - 1) * step < size) {
    // all loads before any store (see unary_v)
    T va[MX_WORK];
    for (int k = 0; k < MX_WORK; ++k) va[k] = a[i + k * step];
    const T vb0 = b[0];
    for (int k = 0; k < MX_WORK; ++k) out[i + k * step] = CastTo<U>::run(Op()(va[k], vb0));
    return;
  }
  for (int k = 0; k < MX_WORK; ++k, i += step) {
    if (i >= size) return;
    out[i] = CastTo<U>::run(Op()(a[i], b[0]));
  }
}

template <typename T, typename U, typename Op>
[[kernel]] void binary_g(
    device const T* a [[buffer(0)]],
    device const T* b [[buffer(1)]],
    device U* out [[buffer(2)]],
    constant const size_t& size [[buffer(3)]],
    constant const Strided2& layout [[buffer(4)]],
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
  out[i] = CastTo<U>::run(Op()(a[la], b[lb]));
}
