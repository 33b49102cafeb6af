// norm.metal: the row kernels of mx.fast (mx/backend/gpu/fast.py): rms_norm, layer_norm,
// cross_entropy and the softmax step of scaled_dot_product_attention give one threadgroup of
// MX_FAST_THREADS threads to each contiguous row of the last axis; rope gives one thread to
// each rotated pair. T is the element type, A the precision of the computation (float for
// half/bfloat/float, double for double), as the CPU kernels of mx/core/fast.py compute.
// Instances: rms_norm_rows<T, A>, layer_norm_rows<T, A>, rope_pairs<T, A>,
// cross_entropy_rows<T, A, I> (I the target index type), sdpa_softmax_rows<A, M> (M the
// mask's element type: bool, or the additive mask's type).
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

// must equal the backend's threadgroup size (mx/backend/gpu/backend.py THREADGROUP)
#define MX_FAST_THREADS 256

// rope's angles: double where the dialect has it (the CPU computes them in float64)
#if MX_DOUBLE
typedef double mx_angle_t;
#else
typedef float mx_angle_t;
#endif

// the lowest finite value (masked scores of attention, as the CPU kernel fills them)
template <typename A> struct FastLowest {};
template <> struct FastLowest<float> {
  static float value() { return -3.40282346638528859812e+38f; }
};
#if MX_DOUBLE
template <> struct FastLowest<double> {
  static double value() { return -1.7976931348623157e+308; }
};
#endif

// NaN wins, as in NumPy's maximum
template <typename A> A mx_fast_max2(A a, A b) { return (a > b || a != a) ? a : b; }

// the sum of v over the threadgroup, in every thread
template <typename A>
A mx_fast_block_sum(A v, uint lid, MX_THREADGROUP_PTR A* shared) {
  shared[lid] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint s = MX_FAST_THREADS / 2; s > 0; s >>= 1) {
    if (lid < s) shared[lid] = shared[lid] + shared[lid + s];
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  A out = shared[0];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return out;
}

// the maximum of v over the threadgroup (NaN wins), in every thread
template <typename A>
A mx_fast_block_max(A v, uint lid, MX_THREADGROUP_PTR A* shared) {
  shared[lid] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint s = MX_FAST_THREADS / 2; s > 0; s >>= 1) {
    if (lid < s) shared[lid] = mx_fast_max2(shared[lid], shared[lid + s]);
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  A out = shared[0];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return out;
}

struct NormLayout {
  int64_t rows;        // rows of the last axis (the input is contiguous)
  int64_t n;           // length of a row
  int64_t has_weight;  // w is read (else it is a placeholder)
  int64_t has_bias;    // b is read (layer_norm)
};

// out = x / sqrt(mean(x^2) + eps) * w, as the CPU: (x * r) * w with r = 1 / sqrt(ms + eps)
template <typename T, typename A>
[[kernel]] void rms_norm_rows(
    device const T* x [[buffer(0)]],
    device const T* w [[buffer(1)]],
    device T* out [[buffer(2)]],
    constant const NormLayout& lay [[buffer(3)]],
    constant const A& eps [[buffer(4)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A shared[MX_FAST_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t r = i / MX_FAST_THREADS;
  uint lid = uint(i % MX_FAST_THREADS);
  if (r >= size_t(lay.rows)) return;
  uint n = uint(lay.n);
  device const T* row = x + r * size_t(n);
  device T* orow = out + r * size_t(n);
  A acc = A(0);
  for (uint j = lid; j < n; j += MX_FAST_THREADS) {
    A v = A(row[j]);
    acc += v * v;
  }
  A ms = mx_fast_block_sum(acc, lid, shared);
  ms = ms / A(n);
  ms = ms + eps;
  A rs = A(1) / metal::sqrt(ms);
  for (uint j = lid; j < n; j += MX_FAST_THREADS) {
    A v = A(row[j]) * rs;
    if (lay.has_weight) v = v * A(w[j]);
    orow[j] = CastTo<T>::run(v);
  }
}

// out = (x - mean) / sqrt(var + eps) * w + b, the variance from the centred values
template <typename T, typename A>
[[kernel]] void layer_norm_rows(
    device const T* x [[buffer(0)]],
    device const T* w [[buffer(1)]],
    device const T* b [[buffer(2)]],
    device T* out [[buffer(3)]],
    constant const NormLayout& lay [[buffer(4)]],
    constant const A& eps [[buffer(5)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A shared[MX_FAST_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t r = i / MX_FAST_THREADS;
  uint lid = uint(i % MX_FAST_THREADS);
  if (r >= size_t(lay.rows)) return;
  uint n = uint(lay.n);
  device const T* row = x + r * size_t(n);
  device T* orow = out + r * size_t(n);
  A acc = A(0);
  for (uint j = lid; j < n; j += MX_FAST_THREADS) acc += A(row[j]);
  A mean = mx_fast_block_sum(acc, lid, shared) / A(n);
  acc = A(0);
  for (uint j = lid; j < n; j += MX_FAST_THREADS) {
    A d = A(row[j]) - mean;
    acc += d * d;
  }
  A var = mx_fast_block_sum(acc, lid, shared);
  var = var / A(n);
  var = var + eps;
  A rs = A(1) / metal::sqrt(var);
  for (uint j = lid; j < n; j += MX_FAST_THREADS) {
    A v = (A(row[j]) - mean) * rs;
    if (lay.has_weight) v = v * A(w[j]);
    if (lay.has_bias) v = v + A(b[j]);
    orow[j] = CastTo<T>::run(v);
  }
}

struct RopeLayout {
  int64_t n;            // threads: rows * per_row
  int64_t per_row;      // dims / 2 pairs, then D - dims features copied as they are
  int64_t t;            // length of the sequence axis (-2)
  int64_t d;            // length of the last axis
  int64_t half_dims;    // dims / 2
  int64_t rows_per_b;   // rows of one entry of axis 0 (per-entry offsets)
  int64_t traditional;  // pairs (2k, 2k + 1) instead of (k, k + dims / 2)
  int64_t off_mode;     // 0: the `offset` constant; 1: offs[0]; 2: offs[entry of axis 0]
  int64_t has_freqs;    // 1 / freqs[k] instead of base ** (-k / (dims / 2))
};

// pair k of row r at position t turns by theta = ((t + offset) * scale) * inv_freq_k, the
// angle computed in mx_angle_t, its cosine and sine rounded to A (as the CPU kernel)
template <typename T, typename A>
[[kernel]] void rope_pairs(
    device const T* x [[buffer(0)]],
    device const mx_angle_t* offs [[buffer(1)]],
    device const mx_angle_t* freqs [[buffer(2)]],
    device T* out [[buffer(3)]],
    constant const RopeLayout& lay [[buffer(4)]],
    constant const mx_angle_t& scale [[buffer(5)]],
    constant const mx_angle_t& log_base_per_half [[buffer(6)]],
    constant const mx_angle_t& offset [[buffer(7)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size_t(lay.n)) return;
  size_t r = i / size_t(lay.per_row);
  int64_t k = int64_t(i % size_t(lay.per_row));
  device const T* row = x + r * size_t(lay.d);
  device T* orow = out + r * size_t(lay.d);
  if (k >= lay.half_dims) {
    orow[k + lay.half_dims] = row[k + lay.half_dims];
    return;
  }
  mx_angle_t off = offset;
  if (lay.off_mode == 1) off = offs[0];
  if (lay.off_mode == 2) off = offs[r / size_t(lay.rows_per_b)];
  mx_angle_t inv = lay.has_freqs ? mx_angle_t(1) / freqs[k]
                                 : metal::exp(-mx_angle_t(k) * log_base_per_half);
  mx_angle_t pos = mx_angle_t(int64_t(r % size_t(lay.t))) + off;
  mx_angle_t theta = (pos * scale) * inv;
  A c = A(metal::cos(theta));
  A s = A(metal::sin(theta));
  int64_t i1 = lay.traditional ? 2 * k : k;
  int64_t i2 = lay.traditional ? 2 * k + 1 : k + lay.half_dims;
  A x1 = A(row[i1]);
  A x2 = A(row[i2]);
  A t2 = x2 * s;
  A o1 = x1 * c;
  o1 = o1 - t2;
  A t3 = x2 * c;
  A o2 = x1 * s;
  o2 = o2 + t3;
  orow[i1] = CastTo<T>::run(o1);
  orow[i2] = CastTo<T>::run(o2);
}

// loss[r] = log(sum(exp(x - max))) - (x[target] - max) in A, written as float; a target
// outside [-n, n) gives NaN (negative targets count from the end)
template <typename T, typename A, typename I>
[[kernel]] void cross_entropy_rows(
    device const T* logits [[buffer(0)]],
    device const I* targets [[buffer(1)]],
    device float* out [[buffer(2)]],
    constant const size_t& rows [[buffer(3)]],
    constant const size_t& n [[buffer(4)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A shared[MX_FAST_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t r = i / MX_FAST_THREADS;
  uint lid = uint(i % MX_FAST_THREADS);
  if (r >= rows) return;
  uint nn = uint(n);
  device const T* row = logits + r * n;
  A m = A(-INFINITY);
  for (uint j = lid; j < nn; j += MX_FAST_THREADS) m = mx_fast_max2(m, A(row[j]));
  m = mx_fast_block_max(m, lid, shared);
  A acc = A(0);
  for (uint j = lid; j < nn; j += MX_FAST_THREADS) acc += metal::exp(A(row[j]) - m);
  A total = mx_fast_block_sum(acc, lid, shared);
  if (lid != 0) return;
  int64_t t = int64_t(targets[r]);
  int64_t nc = int64_t(n);
  if (t < -nc || t >= nc) {
    out[r] = NAN;
    return;
  }
  if (t < 0) t += nc;
  A picked = A(row[t]) - m;
  A loss = metal::log(total) - picked;
  out[r] = CastTo<float>::run(loss);
}

struct SdpaLayout {
  int64_t rows;         // score rows in this block
  int64_t tk;           // keys (the row length)
  int64_t tq;           // queries
  int64_t g;            // query heads per kv head
  int64_t nh;           // kv heads in this block
  int64_t b0;           // the block's first batch entry
  int64_t h0;           // the block's first kv head
  int64_t mode;         // 0: no mask; 1: causal; 2: boolean mask; 3: additive mask
  int64_t has_sinks;
  int64_t mstrides[4];  // the mask's element strides over (B, N_q, T_q, T_kv), 0: broadcast
};

// The softmax of attention scores, in place: the block's scores (nb, nh, g * tq, tk) in A,
// already scaled, are masked (a masked score becomes the lowest finite value, as the CPU
// kernel fills it; an additive mask is added), shifted by the row's maximum (and the head's
// sink), exponentiated and divided by their sum (plus the sink's exponential).
template <typename A, typename M>
[[kernel]] void sdpa_softmax_rows(
    device A* scores [[buffer(0)]],
    device const M* mask [[buffer(1)]],
    device const A* sinks [[buffer(2)]],
    constant const SdpaLayout& lay [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  threadgroup A shared[MX_FAST_THREADS];
  size_t i = mx_linear_index(index, grid);
  size_t r = i / MX_FAST_THREADS;
  uint lid = uint(i % MX_FAST_THREADS);
  if (r >= size_t(lay.rows)) return;
  uint n = uint(lay.tk);
  device A* row = scores + r * size_t(n);
  int64_t gt = lay.g * lay.tq;
  int64_t rr = int64_t(r);
  int64_t b = lay.b0 + rr / (lay.nh * gt);
  int64_t rem = rr % (lay.nh * gt);
  int64_t head = (lay.h0 + rem / gt) * lay.g + (rem % gt) / lay.tq;
  int64_t q = rem % lay.tq;
  int64_t mbase = b * lay.mstrides[0] + head * lay.mstrides[1] + q * lay.mstrides[2];
  int64_t ms = lay.mstrides[3];
  int64_t last = q + lay.tk - lay.tq;     // causal: the last key this query sees
  A lowest = FastLowest<A>::value();
  A m = A(-INFINITY);
  for (uint j = lid; j < n; j += MX_FAST_THREADS) {
    A v = row[j];
    if (lay.mode == 1) {
      if (int64_t(j) > last) v = lowest;
    } else if (lay.mode == 2) {
      if (!CastTo<bool>::run(mask[mbase + int64_t(j) * ms])) v = lowest;
    } else if (lay.mode == 3) {
      v = v + CastTo<A>::run(mask[mbase + int64_t(j) * ms]);
    }
    row[j] = v;
    m = mx_fast_max2(m, v);
  }
  m = mx_fast_block_max(m, lid, shared);
  A sink = A(0);
  if (lay.has_sinks) {
    sink = sinks[head];
    m = mx_fast_max2(m, sink);
  }
  A acc = A(0);
  for (uint j = lid; j < n; j += MX_FAST_THREADS) {
    A e = metal::exp(row[j] - m);
    row[j] = e;
    acc += e;
  }
  A total = mx_fast_block_sum(acc, lid, shared);
  if (lay.has_sinks) total = total + metal::exp(sink - m);
  for (uint j = lid; j < n; j += MX_FAST_THREADS) row[j] = row[j] / total;
}
