// softmax.metal: softmax and logsumexp over the last axis of contiguous rows. One
// threadgroup of MX_ROW_THREADS threads handles one row; T input, A the precision of the
// computation (float for half/bfloat, as on the CPU), U the output.
// Instances: softmax_rows<T, A, U>, logsumexp_rows<T, A, U>.
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

// must equal the backend's threadgroup size (mx/backend/gpu/backend.py THREADGROUP)
#define MX_ROW_THREADS 256

// NaN wins, as in NumPy's maximum
template <typename A> A mx_nan_max(A a, A b) { return (a > b || a != a) ? a : b; }

// the row's maximum, in every thread of the group
template <typename T, typename A>
A mx_row_max(device const T* row, uint n, uint lid, MX_THREADGROUP_PTR A* shared) {
  A m = A(-INFINITY);
  for (uint j = lid; j < n; j += MX_ROW_THREADS) m = mx_nan_max(m, A(row[j]));
  shared[lid] = m;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint s = MX_ROW_THREADS / 2; s > 0; s >>= 1) {
    if (lid < s) shared[lid] = mx_nan_max(shared[lid], shared[lid + s]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  A out = shared[0];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return out;
}

// sum over the row of exp(x - shift), in every thread of the group
template <typename T, typename A>
A mx_row_sum_exp(device const T* row, uint n, A shift, uint lid, MX_THREADGROUP_PTR A* shared) {
  A acc = A(0);
  for (uint j = lid; j < n; j += MX_ROW_THREADS) acc += metal::exp(A(row[j]) - shift);
  shared[lid] = acc;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint s = MX_ROW_THREADS / 2; s > 0; s >>= 1) {
    if (lid < s) shared[lid] = shared[lid] + shared[lid + s];
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  A out = shared[0];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return out;
}

template <typename T, typename A, typename U>
[[kernel]] void softmax_rows(
    device const T* in [[buffer(0)]],
    device U* out [[buffer(1)]],
    constant const size_t& rows [[buffer(2)]],
    constant const size_t& n [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A shared[MX_ROW_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t r = i / MX_ROW_THREADS;
  uint lid = uint(i % MX_ROW_THREADS);
  if (r >= rows) return;
  device const T* row = in + r * n;
  device U* orow = out + r * n;
  // the CPU kernel takes the maximum in T and shifts in A
  A m = A(T(mx_row_max<T, A>(row, uint(n), lid, shared)));
  A total = mx_row_sum_exp<T, A>(row, uint(n), m, lid, shared);
  for (uint j = lid; j < uint(n); j += MX_ROW_THREADS) {
    orow[j] = CastTo<U>::run(A(metal::exp(A(row[j]) - m) / total));
  }
}

template <typename T, typename A, typename U>
[[kernel]] void logsumexp_rows(
    device const T* in [[buffer(0)]],
    device U* out [[buffer(1)]],
    constant const size_t& rows [[buffer(2)]],
    constant const size_t& n [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A shared[MX_ROW_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t r = i / MX_ROW_THREADS;
  uint lid = uint(i % MX_ROW_THREADS);
  if (r >= rows) return;
  device const T* row = in + r * n;
  A m = mx_row_max<T, A>(row, uint(n), lid, shared);
  // an infinite or NaN maximum shifts by 0 (all -inf gives -inf, an inf gives inf)
  A shift = metal::isfinite(m) ? m : A(0);
  A total = mx_row_sum_exp<T, A>(row, uint(n), shift, lid, shared);
  if (lid == 0) out[r] = CastTo<U>::run(A(metal::log(total) + shift));
}
