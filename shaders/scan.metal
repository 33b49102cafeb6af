// scan.metal: running sums, products, maxima, minima and log-sum-exps along one axis
// (cumsum, cumprod, cummax, cummin, logcumsumexp). T input, A the accumulator (float for
// half/bfloat, as the CPU kernel accumulates; a wrapping unsigned integer for integer and
// bool sums and products), U the output; Op is ScanSum, ScanProd, ScanMax, ScanMin or
// ScanLogAddExp. Instances: scan_rows<T, A, U, Op> (threadgroups scanning tiles of a row,
// rows of any length) and scan_serial<T, A, U, Op> (one thread a row: short rows, or many
// of them).
//
// A row is one line of the input along the scanned axis: ScanLayout gives the collapsed
// outer dims with the input's and the output's element strides, and the axis's stride on
// each side, so any layout runs without a copy. `reverse` scans from the end; an
// exclusive scan (inclusive == 0) starts at the CPU kernel's value (0, 1, the lowest or
// highest value of the type, -inf). max and min propagate NaN and, as NumPy's maximum and
// minimum, give the later operand on ties (so the signs of zeros agree with the CPU).
//
// Long rows, when there are few of them, are split into `blocks` blocks of `block`
// elements, one threadgroup each, in two dispatches of scan_rows: mode 1 writes each
// block's total to `partials` (A, rows x blocks), mode 2 starts each block from the total
// of the blocks before it (folded in order from `partials`) and writes the output. Mode 0
// is one threadgroup a whole row.
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

// must equal the backend's threadgroup size (mx/backend/gpu/backend.py THREADGROUP)
#define MX_SCAN_THREADS 256
// elements a thread scans per tile; a tile is read and written coalesced
#define MX_SCAN_WORK 4
#define MX_SCAN_TILE 1024

struct ScanLayout {
  int64_t ndim;                        // outer (not scanned) dims, collapsed
  int64_t shape[MX_MAX_DIMS];
  int64_t in_strides[MX_MAX_DIMS];     // element strides of the input along them
  int64_t out_strides[MX_MAX_DIMS];    // and of the output
  int64_t rows;                        // the number of rows (the outer dims' product)
  int64_t n;                           // the length of the scanned axis
  int64_t in_stride;                   // its element stride in the input
  int64_t out_stride;                  // and in the output
  int64_t reverse;
  int64_t inclusive;
  int64_t blocks;                      // threadgroups a row (1: the whole row)
  int64_t block;                       // elements a block (a multiple of MX_SCAN_TILE)
  int64_t mode;                        // 0: whole rows, 1: block totals, 2: blocks
};

// The lowest and highest value of each accumulator type (the identities of max and min).
template <typename A> struct ScanLimits {};
template <> struct ScanLimits<bool> {
  static bool lowest() { return false; }
  static bool highest() { return true; }
};
template <> struct ScanLimits<uint8_t> {
  static uint8_t lowest() { return uint8_t(0); }
  static uint8_t highest() { return uint8_t(255); }
};
template <> struct ScanLimits<uint16_t> {
  static uint16_t lowest() { return uint16_t(0); }
  static uint16_t highest() { return uint16_t(65535); }
};
template <> struct ScanLimits<uint32_t> {
  static uint32_t lowest() { return uint32_t(0); }
  static uint32_t highest() { return ~uint32_t(0); }
};
template <> struct ScanLimits<uint64_t> {
  static uint64_t lowest() { return uint64_t(0); }
  static uint64_t highest() { return ~uint64_t(0); }
};
template <> struct ScanLimits<int8_t> {
  static int8_t lowest() { return int8_t(-128); }
  static int8_t highest() { return int8_t(127); }
};
template <> struct ScanLimits<int16_t> {
  static int16_t lowest() { return int16_t(-32768); }
  static int16_t highest() { return int16_t(32767); }
};
template <> struct ScanLimits<int32_t> {
  static int32_t lowest() { return int32_t(-2147483647) - int32_t(1); }
  static int32_t highest() { return int32_t(2147483647); }
};
template <> struct ScanLimits<int64_t> {
  static int64_t lowest() { return int64_t(-9223372036854775807) - int64_t(1); }
  static int64_t highest() { return int64_t(9223372036854775807); }
};
template <> struct ScanLimits<float> {
  static float lowest() { return -INFINITY; }
  static float highest() { return INFINITY; }
};
#if MX_DOUBLE
template <> struct ScanLimits<double> {
  static double lowest() { return -double(INFINITY); }
  static double highest() { return double(INFINITY); }
};
#endif

// The neutral element of addition: -0.0 for floats (-0 + -0 = -0, so sums of -0.0 keep
// their sign as on the CPU), 0 for the (unsigned) integer accumulators.
template <typename A> struct ScanZero {
  static A get() { return A(0); }
};
template <> struct ScanZero<float> {
  static float get() { return -0.0f; }
};
#if MX_DOUBLE
template <> struct ScanZero<double> {
  static double get() { return -0.0; }
};
#endif

// Each Op has identity() (the neutral element: pads a tile, starts a prefix), first()
// (an exclusive scan's first element, as the CPU kernel writes it) and apply(earlier,
// later).
struct ScanSum {
  template <typename A> static A identity() { return ScanZero<A>::get(); }
  template <typename A> static A first() { return A(0); }
  template <typename A> static A apply(A a, A b) { return A(a + b); }
};

struct ScanProd {
  template <typename A> static A identity() { return A(1); }
  template <typename A> static A first() { return A(1); }
  template <typename A> static A apply(A a, A b) { return A(a * b); }
};

struct ScanMax {
  template <typename A> static A identity() { return ScanLimits<A>::lowest(); }
  template <typename A> static A first() { return ScanLimits<A>::lowest(); }
  template <typename A> static A apply(A a, A b) { return (a > b || a != a) ? a : b; }
};

struct ScanMin {
  template <typename A> static A identity() { return ScanLimits<A>::highest(); }
  template <typename A> static A first() { return ScanLimits<A>::highest(); }
  template <typename A> static A apply(A a, A b) { return (a < b || a != a) ? a : b; }
};

// NumPy's logaddexp: equal operands (also infinities) give a + log(2); a NaN gives NaN
struct ScanLogAddExp {
  template <typename A> static A identity() { return ScanLimits<A>::lowest(); }
  template <typename A> static A first() { return ScanLimits<A>::lowest(); }
  template <typename A> static A apply(A a, A b) {
    if (a == b) return a + Consts<A>::ln2();
    A d = a - b;
    if (d > A(0)) return a + mx_log1p(metal::exp(-d));
    if (d <= A(0)) return b + mx_log1p(metal::exp(d));
    return d;
  }
};

// The element offsets of row r's first element in the input and the output (before any
// reversal).
inline void mx_scan_bases(constant const ScanLayout& lay, size_t r, thread int64_t& ib,
                          thread int64_t& ob) {
  ib = 0;
  ob = 0;
  size_t rest = r;
  for (int d = int(lay.ndim) - 1; d >= 0; --d) {
    size_t k = size_t(lay.shape[d]);
    int64_t c = int64_t(rest % k);
    ib += c * lay.in_strides[d];
    ob += c * lay.out_strides[d];
    rest /= k;
  }
}

// The inclusive scan of the 256 values of `totals` in place (Hillis-Steele), in order.
template <typename A, typename Op>
void mx_scan_totals(MX_THREADGROUP_PTR A* totals, uint lid) {
  for (uint s = 1; s < MX_SCAN_THREADS; s <<= 1) {
    A v = totals[lid];
    if (lid >= s) v = Op::template apply<A>(totals[lid - s], v);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    totals[lid] = v;
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
}

// A threadgroup scans its block of a row a tile of MX_SCAN_TILE elements at a time: the
// tile is loaded into threadgroup memory (coalesced), each thread combines MX_SCAN_WORK
// consecutive elements of it, a scan of the 256 thread totals gives each thread its
// prefix, the threads rescan their elements from it and the tile is stored (coalesced);
// the tile's total carries into the next tile.
template <typename T, typename A, typename U, typename Op>
[[kernel]] void scan_rows(
    device const T* in [[buffer(0)]],
    device U* out [[buffer(1)]],
    device A* partials [[buffer(2)]],
    constant const ScanLayout& lay [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A tile[MX_SCAN_TILE];
  threadgroup A totals[MX_SCAN_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t g = i / MX_SCAN_THREADS;
  uint lid = uint(i % MX_SCAN_THREADS);
  size_t blocks = size_t(lay.blocks);
  // whole threadgroups only, so the barriers below are reached by all or none of a group
  if (g >= size_t(lay.rows) * blocks) return;
  size_t r = g / blocks;
  int64_t b = int64_t(g % blocks);
  int64_t ib;
  int64_t ob;
  mx_scan_bases(lay, r, ib, ob);
  int64_t n = lay.n;
  int64_t is = lay.in_stride;
  int64_t os = lay.out_stride;
  if (lay.reverse != 0) {      // scan the row from its end: walk it backwards
    ib += (n - 1) * is;
    ob += (n - 1) * os;
    is = -is;
    os = -os;
  }
  bool inclusive = lay.inclusive != 0;
  int64_t lo = b * lay.block;
  int64_t hi = (blocks == 1 || lo + lay.block > n) ? n : lo + lay.block;
  A carry = Op::template identity<A>();
  if (lay.mode == 2 && b > 0) {
    // the total of the blocks before this one: each thread folds a run of them, in order
    device const A* pr = partials + r * blocks;
    int64_t per = (b + MX_SCAN_THREADS - 1) / MX_SCAN_THREADS;
    A acc = Op::template identity<A>();
    for (int64_t k = int64_t(lid) * per; k < int64_t(lid + 1) * per && k < b; ++k) {
      acc = Op::template apply<A>(acc, pr[k]);
    }
    totals[lid] = acc;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    mx_scan_totals<A, Op>(totals, lid);
    carry = totals[MX_SCAN_THREADS - 1];
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  uint c0 = lid * MX_SCAN_WORK;
  for (int64_t start = lo; start < hi; start += MX_SCAN_TILE) {
    for (uint k = 0; k < MX_SCAN_WORK; ++k) {
      uint t = lid + k * MX_SCAN_THREADS;
      int64_t j = start + int64_t(t);
      tile[t] = j < hi ? CastTo<A>::run(in[ib + j * is]) : Op::template identity<A>();
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    A total = tile[c0];
    for (uint k = 1; k < MX_SCAN_WORK; ++k) total = Op::template apply<A>(total, tile[c0 + k]);
    totals[lid] = total;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    mx_scan_totals<A, Op>(totals, lid);
    if (lay.mode != 1) {
      A prefix = lid > 0 ? Op::template apply<A>(carry, totals[lid - 1]) : carry;
      for (uint k = 0; k < MX_SCAN_WORK; ++k) {
        A next = Op::template apply<A>(prefix, tile[c0 + k]);
        tile[c0 + k] = inclusive ? next : prefix;
        prefix = next;
      }
    }
    carry = Op::template apply<A>(carry, totals[MX_SCAN_THREADS - 1]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (lay.mode != 1) {
      for (uint k = 0; k < MX_SCAN_WORK; ++k) {
        uint t = lid + k * MX_SCAN_THREADS;
        int64_t j = start + int64_t(t);
        if (j < hi) {
          A v = (!inclusive && j == 0) ? Op::template first<A>() : tile[t];
          out[ob + j * os] = CastTo<U>::run(v);
        }
      }
      threadgroup_barrier(mem_flags::mem_threadgroup);
    }
  }
  if (lay.mode == 1 && lid == 0) partials[g] = carry;
}

// One thread a row, in the CPU kernel's order (so float results are the CPU's exactly).
template <typename T, typename A, typename U, typename Op>
[[kernel]] void scan_serial(
    device const T* in [[buffer(0)]],
    device U* out [[buffer(1)]],
    constant const ScanLayout& lay [[buffer(2)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t r = mx_linear_index(index, grid);
  if (r >= size_t(lay.rows)) return;
  int64_t ib;
  int64_t ob;
  mx_scan_bases(lay, r, ib, ob);
  int64_t n = lay.n;
  int64_t is = lay.in_stride;
  int64_t os = lay.out_stride;
  if (lay.reverse != 0) {
    ib += (n - 1) * is;
    ob += (n - 1) * os;
    is = -is;
    os = -os;
  }
  bool inclusive = lay.inclusive != 0;
  A acc = Op::template identity<A>();
  for (int64_t j = 0; j < n; ++j) {
    A next = Op::template apply<A>(acc, CastTo<A>::run(in[ib + j * is]));
    A v = inclusive ? next : (j == 0 ? Op::template first<A>() : acc);
    out[ob + j * os] = CastTo<U>::run(v);
    acc = next;
  }
}
