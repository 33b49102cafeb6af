// unary.metal: out[i] = Op(in[i]) converted to U, over contiguous or strided input.
// Instances: unary_v<T, U, Op> and unary_g<T, U, Op> (astype is Identity with U != T).
#include <metal_stdlib>
#include "utils.metal"
#include "ops.metal"
using namespace metal;

// contiguous input: MX_WORK elements a thread
template <typename T, typename U, typename Op>
[[kernel]] void unary_v(
    device const T* in [[buffer(0)]],
    device U* out [[buffer(1)]],
    constant const size_t& size [[buffer(2)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  size_t step = size_t(grid.x) * size_t(grid.y);
  if (i + (MX_WORK - 1) * step < size) {
    // all loads before any store: the compiler cannot tell that `out` does not alias `in`,
    // so a load after a store would wait for it (one load in flight a thread)
    T v[MX_WORK];
    for (int k = 0; k < MX_WORK; ++k) v[k] = in[i + k * step];
    for (int k = 0; k < MX_WORK; ++k) out[i + k * step] = CastTo<U>::run(Op()(v[k]));
    return;
  }
  for (int k = 0; k < MX_WORK; ++k, i += step) {
    if (i >= size) return;
    out[i] = CastTo<U>::run(Op()(in[i]));
  }
}

// strided input (element strides, any sign; 0 broadcasts), contiguous output
template <typename T, typename U, typename Op>
[[kernel]] void unary_g(
    device const T* in [[buffer(0)]],
    device U* out [[buffer(1)]],
    constant const size_t& size [[buffer(2)]],
    constant const Strided1& layout [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  int64_t loc = 0;
  size_t rest = i;
  for (int d = int(layout.ndim) - 1; d >= 0; --d) {
    size_t n = size_t(layout.shape[d]);
    loc += int64_t(rest % n) * layout.strides[d];
    rest /= n;
  }
  out[i] = CastTo<U>::run(Op()(in[loc]));
}
