// reduce.metal: out[o] = Op-reduction of the input elements that map to output o, over any
// set of axes. Instances: reduce_g<T, A, U, Op<A> > (input T, accumulated in A, written as U).
// One threadgroup of MX_REDUCE_THREADS threads reduces `n_red / parts` elements of one output;
// with parts > 1 it writes a partial (U = A) and a second dispatch (T = A, parts = 1)
// combines the partials of each output.
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

// must equal the backend's threadgroup size (mx/backend/gpu/backend.py THREADGROUP)
#define MX_REDUCE_THREADS 256

struct ReduceLayout {
  int64_t kdim;                      // kept (output) dims, collapsed
  int64_t kshape[MX_MAX_DIMS];
  int64_t kstrides[MX_MAX_DIMS];     // element strides of the input along kept dims
  int64_t rdim;                      // reduced dims, collapsed (at least 1)
  int64_t rshape[MX_MAX_DIMS];
  int64_t rstrides[MX_MAX_DIMS];
  int64_t n_out;                     // outputs
  int64_t n_red;                     // elements reduced into each output
  int64_t parts;                     // threadgroups sharing one output
  int64_t div;                       // mean: divide the result by this; 0: no division
  int64_t wide;                      // 1: one reduced dim of stride 1, and the input and
                                     // every kept stride aligned to MX_WORK elements
};

// the identities of Max and Min in each accumulator type
template <typename A> struct Limits {};
#define MX_LIMITS(A, LO, HI)                    \
  template <> struct Limits<A> {                \
    static A lowest() { return LO; }            \
    static A highest() { return HI; }           \
  };
MX_LIMITS(bool, false, true)
MX_LIMITS(uint8_t, uint8_t(0), uint8_t(255))
MX_LIMITS(uint16_t, uint16_t(0), uint16_t(65535))
MX_LIMITS(uint32_t, uint32_t(0), uint32_t(4294967295u))
MX_LIMITS(uint64_t, uint64_t(0), uint64_t(18446744073709551615ull))
MX_LIMITS(int8_t, int8_t(-128), int8_t(127))
MX_LIMITS(int16_t, int16_t(-32768), int16_t(32767))
MX_LIMITS(int32_t, int32_t(-2147483647 - 1), int32_t(2147483647))
MX_LIMITS(int64_t, int64_t(-9223372036854775807ll - 1), int64_t(9223372036854775807ll))
MX_LIMITS(float, -INFINITY, INFINITY)
#if MX_DOUBLE
MX_LIMITS(double, -double(INFINITY), double(INFINITY))
#endif
#undef MX_LIMITS

template <typename A> struct Sum {
  static A init() { return A(0); }
  static A combine(A a, A b) { return A(a + b); }
};
template <typename A> struct Prod {
  static A init() { return A(1); }
  static A combine(A a, A b) { return A(a * b); }
};
// NaN wins, as in NumPy's maximum/minimum (`a != a` is false for integers)
template <typename A> struct Max {
  static A init() { return Limits<A>::lowest(); }
  static A combine(A a, A b) { return (a > b || a != a) ? a : b; }
};
template <typename A> struct Min {
  static A init() { return Limits<A>::highest(); }
  static A combine(A a, A b) { return (a < b || a != a) ? a : b; }
};
template <typename A> struct And {
  static A init() { return true; }
  static A combine(A a, A b) { return a && b; }
};
template <typename A> struct Or {
  static A init() { return false; }
  static A combine(A a, A b) { return a || b; }
};

// mean: a float sum is divided in its own type (the CPU divides the sum by n converted to
// the sum's dtype); an integer sum (exact in int64) in the widest float the device has (the
// CPU sums integers in float64 and divides there)
#if MX_DOUBLE
typedef double mx_mean_float;
#else
typedef float mx_mean_float;
#endif
template <typename U, typename A> U mx_divide_by(A acc, int64_t div, Tag<1>) {
  return CastTo<U>::run(A(acc / A(div)));
}
template <typename U, typename A> U mx_divide_by(A acc, int64_t div, Tag<0>) {
  return CastTo<U>::run(mx_mean_float(acc) / mx_mean_float(div));
}
template <typename U, typename A> U mx_reduce_finish(A acc, int64_t div) {
  if (div == 0) return CastTo<U>::run(acc);
  return mx_divide_by<U, A>(acc, div, Tag<IsFloat<A>::value>());
}

template <typename T, typename A, typename U, typename Op>
[[kernel]] void reduce_g(
    device const T* in [[buffer(0)]],
    device U* out [[buffer(1)]],
    constant const ReduceLayout& lay [[buffer(2)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A shared[MX_REDUCE_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t group = i / MX_REDUCE_THREADS;
  uint lid = uint(i % MX_REDUCE_THREADS);
  size_t parts = size_t(lay.parts);
  // whole threadgroups only, so the barriers below are reached by all or none of a group
  if (group >= size_t(lay.n_out) * parts) return;
  size_t o = group / parts;
  size_t p = group % parts;
  int64_t base = 0;
  size_t rest = o;
  for (int d = int(lay.kdim) - 1; d >= 0; --d) {
    size_t n = size_t(lay.kshape[d]);
    base += int64_t(rest % n) * lay.kstrides[d];
    rest /= n;
  }
  size_t n_red = size_t(lay.n_red);
  size_t chunk = (n_red + parts - 1) / parts;
  if (lay.wide) chunk = (chunk + MX_WORK - 1) / MX_WORK * MX_WORK;   // chunks stay aligned
  size_t start = p * chunk < n_red ? p * chunk : n_red;
  size_t end = start + chunk < n_red ? start + chunk : n_red;
  A acc = Op::init();
  if (lay.wide) {
    // MX_WORK contiguous elements a load (128 bits for float), four loads in flight a thread
    device const T* seg = in + base + int64_t(start);
    size_t n_vec = (end - start) / MX_WORK;
    A acc1 = Op::init(), acc2 = Op::init(), acc3 = Op::init();
    size_t q = lid;
    for (; q + 3 * MX_REDUCE_THREADS < n_vec; q += 4 * MX_REDUCE_THREADS) {
      const MxVec<T> v0 = *((device const MxVec<T>*)(seg + q * MX_WORK));
      const MxVec<T> v1 = *((device const MxVec<T>*)(seg + (q + MX_REDUCE_THREADS) * MX_WORK));
      const MxVec<T> v2 = *((device const MxVec<T>*)(seg + (q + 2 * MX_REDUCE_THREADS) * MX_WORK));
      const MxVec<T> v3 = *((device const MxVec<T>*)(seg + (q + 3 * MX_REDUCE_THREADS) * MX_WORK));
      for (int w = 0; w < MX_WORK; ++w) {
        acc = Op::combine(acc, CastTo<A>::run(v0.v[w]));
        acc1 = Op::combine(acc1, CastTo<A>::run(v1.v[w]));
        acc2 = Op::combine(acc2, CastTo<A>::run(v2.v[w]));
        acc3 = Op::combine(acc3, CastTo<A>::run(v3.v[w]));
      }
    }
    for (; q < n_vec; q += MX_REDUCE_THREADS) {
      const MxVec<T> v0 = *((device const MxVec<T>*)(seg + q * MX_WORK));
      for (int w = 0; w < MX_WORK; ++w) acc = Op::combine(acc, CastTo<A>::run(v0.v[w]));
    }
    for (size_t r = start + n_vec * MX_WORK + lid; r < end; r += MX_REDUCE_THREADS) {
      acc = Op::combine(acc, CastTo<A>::run(in[base + int64_t(r)]));
    }
    acc = Op::combine(Op::combine(acc, acc1), Op::combine(acc2, acc3));
  } else if (lay.rdim == 1) {
    int64_t st = lay.rstrides[0];
    size_t r = start + lid;
    // four independent loads in flight a thread (and four accumulators): a long contiguous
    // reduction is bound by memory latency otherwise
    A acc1 = Op::init(), acc2 = Op::init(), acc3 = Op::init();
    for (; r + 3 * MX_REDUCE_THREADS < end; r += 4 * MX_REDUCE_THREADS) {
      acc = Op::combine(acc, CastTo<A>::run(in[base + int64_t(r) * st]));
      acc1 = Op::combine(acc1, CastTo<A>::run(in[base + int64_t(r + MX_REDUCE_THREADS) * st]));
      acc2 = Op::combine(acc2, CastTo<A>::run(in[base + int64_t(r + 2 * MX_REDUCE_THREADS) * st]));
      acc3 = Op::combine(acc3, CastTo<A>::run(in[base + int64_t(r + 3 * MX_REDUCE_THREADS) * st]));
    }
    for (; r < end; r += MX_REDUCE_THREADS) {
      acc = Op::combine(acc, CastTo<A>::run(in[base + int64_t(r) * st]));
    }
    acc = Op::combine(Op::combine(acc, acc1), Op::combine(acc2, acc3));
  } else {
    for (size_t r = start + lid; r < end; r += MX_REDUCE_THREADS) {
      int64_t loc = base;
      size_t q = r;
      for (int d = int(lay.rdim) - 1; d >= 0; --d) {
        size_t n = size_t(lay.rshape[d]);
        loc += int64_t(q % n) * lay.rstrides[d];
        q /= n;
      }
      acc = Op::combine(acc, CastTo<A>::run(in[loc]));
    }
  }
  shared[lid] = acc;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint s = MX_REDUCE_THREADS / 2; s > 0; s >>= 1) {
    if (lid < s) shared[lid] = Op::combine(shared[lid], shared[lid + s]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  if (lid == 0) out[group] = mx_reduce_finish<U, A>(shared[0], lay.div);
}
