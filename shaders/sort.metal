// sort.metal: stable sorts along one axis (sort, argsort; partition and argpartition as
// full sorts). Instances: sort_block<T> and sort_merge<T>.
//
// Elements are ordered as (key, position in the row) pairs: NaN after every number, equal
// keys (also -0.0 and 0.0, and NaNs among themselves) by position, which makes the order
// total and the sort stable, as NumPy's stable sort on the CPU. Keys are compared in
// Acc<T> (float for half and bfloat: exact).
//
// sort_block sorts each tile of up to MX_SORT_TILE consecutive elements of a row with a
// bitonic network in threadgroup memory, one threadgroup a tile. A row of one tile is then
// done; longer rows go through sort_merge passes, each merging pairs of sorted runs of
// `width` elements into runs of 2 * width: an element's place in the merged run is its
// place in its own run plus the number of elements of the other run ordered before it
// (a binary search). SortLayout gives the rows of the source and destination (collapsed
// outer dims with element strides, and the axis's stride); `mode` says what is written:
// bit 0 the keys (values), bit 1 the positions (uint32 indices).
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

// must equal the backend's threadgroup size (mx/backend/gpu/backend.py THREADGROUP)
#define MX_SORT_THREADS 256
// the longest row sort_block sorts (mx/backend/gpu/sort.py TILE)
#define MX_SORT_TILE 2048

struct SortLayout {
  int64_t ndim;                        // outer (not sorted) dims, collapsed
  int64_t shape[MX_MAX_DIMS];
  int64_t in_strides[MX_MAX_DIMS];     // element strides of the source along them
  int64_t out_strides[MX_MAX_DIMS];    // and of the destination
  int64_t rows;                        // the number of rows (the outer dims' product)
  int64_t n;                           // the length of the sorted axis
  int64_t in_stride;                   // its element stride in the source
  int64_t out_stride;                  // and in the destination
};

// does (ka, ia) come strictly before (kb, ib)? Positions >= n are padding, after every
// element.
template <typename K>
bool mx_sort_before(K ka, uint ia, K kb, uint ib, uint n) {
  if (ia >= n || ib >= n) return ia < ib;
  bool a_nan = ka != ka;
  bool b_nan = kb != kb;
  if (a_nan || b_nan) return (a_nan && b_nan) ? ia < ib : b_nan;
  if (ka < kb) return true;
  if (kb < ka) return false;
  return ia < ib;
}

inline void mx_sort_bases(constant const SortLayout& lay, size_t r, thread int64_t& ib,
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

template <typename T>
[[kernel]] void sort_block(
    device const T* in [[buffer(0)]],
    device T* keys_out [[buffer(1)]],
    device uint32_t* idx_out [[buffer(2)]],
    constant const SortLayout& lay [[buffer(3)]],
    constant const int64_t& mode [[buffer(4)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  typedef typename Acc<T>::type K;
  threadgroup K skeys[MX_SORT_TILE];
  threadgroup uint sidx[MX_SORT_TILE];
  size_t i = mx_linear_index(index, grid);
  size_t g = i / MX_SORT_THREADS;
  uint lid = uint(i % MX_SORT_THREADS);
  int64_t n = lay.n;
  size_t tiles = size_t((n + MX_SORT_TILE - 1) / MX_SORT_TILE);
  // whole threadgroups only, so the barriers below are reached by all or none of a group
  if (g >= size_t(lay.rows) * tiles) return;
  size_t r = g / tiles;
  int64_t start = int64_t(g % tiles) * MX_SORT_TILE;
  uint m = uint(n - start < int64_t(MX_SORT_TILE) ? n - start : int64_t(MX_SORT_TILE));
  uint p = 1;
  while (p < m) p <<= 1;
  int64_t ib;
  int64_t ob;
  mx_sort_bases(lay, r, ib, ob);
  uint un = uint(n);
  for (uint t = lid; t < p; t += MX_SORT_THREADS) {
    if (t < m) {
      skeys[t] = CastTo<K>::run(in[ib + (start + int64_t(t)) * lay.in_stride]);
      sidx[t] = uint(start) + t;
    } else {
      skeys[t] = K(0);
      sidx[t] = un + t;                // padding: after every element
    }
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint k = 2; k <= p; k <<= 1) {
    for (uint j = k >> 1; j > 0; j >>= 1) {
      for (uint t = lid; t < p / 2; t += MX_SORT_THREADS) {
        uint a = ((t & ~(j - 1)) << 1) | (t & (j - 1));     // the pair (a, a + j)
        uint b = a + j;
        K ka = skeys[a];
        K kb = skeys[b];
        uint ia = sidx[a];
        uint ibx = sidx[b];
        bool up = (a & k) == 0;
        bool swap = up ? mx_sort_before<K>(kb, ibx, ka, ia, un)
                       : mx_sort_before<K>(ka, ia, kb, ibx, un);
        if (swap) {
          skeys[a] = kb;
          skeys[b] = ka;
          sidx[a] = ibx;
          sidx[b] = ia;
        }
      }
      threadgroup_barrier(mem_flags::mem_threadgroup);
    }
  }
  for (uint t = lid; t < m; t += MX_SORT_THREADS) {
    int64_t o = ob + (start + int64_t(t)) * lay.out_stride;
    if ((mode & 1) != 0) keys_out[o] = CastTo<T>::run(skeys[t]);
    if ((mode & 2) != 0) idx_out[o] = uint32_t(sidx[t]);
  }
}

// One thread an element: merge runs [lo, lo + width) and [lo + width, lo + 2 * width) of
// each row of the contiguous source (rows of n) into the destination.
template <typename T>
[[kernel]] void sort_merge(
    device const T* keys_in [[buffer(0)]],
    device const uint32_t* idx_in [[buffer(1)]],
    device T* keys_out [[buffer(2)]],
    device uint32_t* idx_out [[buffer(3)]],
    constant const SortLayout& lay [[buffer(4)]],
    constant const int64_t& width [[buffer(5)]],
    constant const int64_t& mode [[buffer(6)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  typedef typename Acc<T>::type K;
  size_t i = mx_linear_index(index, grid);
  int64_t n = lay.n;
  if (i >= size_t(lay.rows) * size_t(n)) return;
  size_t r = i / size_t(n);
  int64_t j = int64_t(i % size_t(n));
  device const T* krow = keys_in + r * size_t(n);
  device const uint32_t* irow = idx_in + r * size_t(n);
  int64_t run = j / width;
  int64_t a_lo = (run / 2) * 2 * width;
  int64_t b_lo = a_lo + width < n ? a_lo + width : n;
  int64_t b_hi = b_lo + width < n ? b_lo + width : n;
  bool in_a = (run & 1) == 0;
  int64_t lo = in_a ? b_lo : a_lo;
  int64_t hi = in_a ? b_hi : b_lo;
  int64_t own = j - (in_a ? a_lo : b_lo);
  K key = CastTo<K>::run(krow[j]);
  uint id = irow[j];
  uint un = uint(n);
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (mx_sort_before<K>(CastTo<K>::run(krow[mid]), irow[mid], key, id, un)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  int64_t dest = a_lo + own + (lo - (in_a ? b_lo : a_lo));
  int64_t ib;
  int64_t ob;
  mx_sort_bases(lay, r, ib, ob);
  int64_t o = ob + dest * lay.out_stride;
  if ((mode & 1) != 0) keys_out[o] = krow[j];
  if ((mode & 2) != 0) idx_out[o] = id;
}
