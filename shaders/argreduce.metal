// argreduce.metal: the index (uint32) of the first largest / smallest element along one
// axis, for each output. Instances: arg_reduce<T, ArgMax> and arg_reduce<T, ArgMin>.
// One threadgroup of MX_ARG_THREADS threads handles one output; NaN counts as the extreme
// (the first NaN wins, as in NumPy), and ties go to the smaller index.
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

// must equal the backend's threadgroup size (mx/backend/gpu/backend.py THREADGROUP)
#define MX_ARG_THREADS 256

struct ArgLayout {
  int64_t kdim;                      // kept (output) dims, collapsed
  int64_t kshape[MX_MAX_DIMS];
  int64_t kstrides[MX_MAX_DIMS];     // element strides of the input along them
  int64_t n_out;
  int64_t n;                         // length of the reduced axis
  int64_t stride;                    // its element stride
};

struct ArgMax {
  template <typename A> static bool strictly(A a, A b) { return a > b; }
};
struct ArgMin {
  template <typename A> static bool strictly(A a, A b) { return a < b; }
};

// is (va, ia) a better pick than (vb, ib)? An index >= n marks an empty slot.
template <typename Op, typename A>
bool mx_arg_better(A va, uint ia, A vb, uint ib, uint n) {
  if (ia >= n) return false;
  if (ib >= n) return true;
  bool a_nan = va != va;
  bool b_nan = vb != vb;
  if (a_nan || b_nan) return (a_nan && b_nan) ? ia < ib : a_nan;
  if (va != vb) return Op::strictly(va, vb);
  return ia < ib;
}

template <typename T, typename Op>
[[kernel]] void arg_reduce(
    device const T* in [[buffer(0)]],
    device uint32_t* out [[buffer(1)]],
    constant const ArgLayout& lay [[buffer(2)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  typedef typename Acc<T>::type A;
  threadgroup A shared_v[MX_ARG_THREADS];
  threadgroup uint shared_i[MX_ARG_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t o = i / MX_ARG_THREADS;
  uint lid = uint(i % MX_ARG_THREADS);
  // whole threadgroups only, so the barriers below are reached by all or none of a group
  if (o >= size_t(lay.n_out)) return;
  int64_t base = 0;
  size_t rest = o;
  for (int d = int(lay.kdim) - 1; d >= 0; --d) {
    size_t k = size_t(lay.kshape[d]);
    base += int64_t(rest % k) * lay.kstrides[d];
    rest /= k;
  }
  uint n = uint(lay.n);
  A best = A(0);
  uint best_i = n;
  for (uint r = lid; r < n; r += MX_ARG_THREADS) {
    A v = A(in[base + int64_t(r) * lay.stride]);
    if (mx_arg_better<Op, A>(v, r, best, best_i, n)) {
      best = v;
      best_i = r;
    }
  }
  shared_v[lid] = best;
  shared_i[lid] = best_i;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint s = MX_ARG_THREADS / 2; s > 0; s >>= 1) {
    if (lid < s && mx_arg_better<Op, A>(shared_v[lid + s], shared_i[lid + s], shared_v[lid],
                                        shared_i[lid], n)) {
      shared_v[lid] = shared_v[lid + s];
      shared_i[lid] = shared_i[lid + s];
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  if (lid == 0) out[o] = uint32_t(shared_i[0]);
}
