// random.metal: mx.random's bits (the random_bits primitive), Threefry-2x32 with 20 rounds
// as mx/core/random.py computes it on the CPU. Instances: random_bits<T>, T the output
// word (uint8_t, uint16_t or uint32_t for widths 1, 2 and 4).
//
// For each key b (keys: `batch` contiguous uint32 pairs) the output holds n items of T, the
// first n * sizeof(T) bytes (little-endian) of `words` uint32 words, words =
// ceil(n * sizeof(T) / 4). With half = ceil(words / 2), thread (b, j), j < half, enciphers
// the counter pair (j, j + half) -- (j, 0) for the last pair when `words` is odd -- and
// its two output words are words j and j + half (the second only when it exists).
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

inline uint32_t mx_rotl32(uint32_t x, uint32_t r) { return (x << r) | (x >> (32u - r)); }

// four rounds with the rotations r0..r3, then the key injection s (1-based)
inline void mx_threefry_step(thread uint32_t& x0, thread uint32_t& x1, uint32_t r0, uint32_t r1,
                             uint32_t r2, uint32_t r3, uint32_t ka, uint32_t kb, uint32_t s) {
  x0 += x1; x1 = mx_rotl32(x1, r0); x1 ^= x0;
  x0 += x1; x1 = mx_rotl32(x1, r1); x1 ^= x0;
  x0 += x1; x1 = mx_rotl32(x1, r2); x1 ^= x0;
  x0 += x1; x1 = mx_rotl32(x1, r3); x1 ^= x0;
  x0 += ka;
  x1 += kb;
  x1 += s;
}

// Threefry-2x32 (20 rounds) of the counter (x0, x1) under the key (k0, k1), in place
inline void mx_threefry2x32(uint32_t k0, uint32_t k1, thread uint32_t& x0, thread uint32_t& x1) {
  uint32_t k2 = k0 ^ k1 ^ 0x1BD11BDAu;
  x0 += k0;
  x1 += k1;
  mx_threefry_step(x0, x1, 13u, 15u, 26u, 6u, k1, k2, 1u);
  mx_threefry_step(x0, x1, 17u, 29u, 16u, 24u, k2, k0, 2u);
  mx_threefry_step(x0, x1, 13u, 15u, 26u, 6u, k0, k1, 3u);
  mx_threefry_step(x0, x1, 17u, 29u, 16u, 24u, k1, k2, 4u);
  mx_threefry_step(x0, x1, 13u, 15u, 26u, 6u, k2, k0, 5u);
}

// word w of key b's stream into its items of the output (those below n)
template <typename T>
inline void mx_put_word(device T* out, size_t n, size_t w, uint32_t word) {
  const uint per = uint(4 / sizeof(T));
  for (uint k = 0; k < per; ++k) {
    size_t idx = w * per + k;
    if (idx < n) out[idx] = T(word >> (8u * uint(sizeof(T)) * k));
  }
}

template <typename T>
[[kernel]] void random_bits(
    device const uint32_t* keys [[buffer(0)]],
    device T* out [[buffer(1)]],
    constant const size_t& batch [[buffer(2)]],
    constant const size_t& n [[buffer(3)]],
    constant const size_t& words [[buffer(4)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t half_ = (words + 1) / 2;
  size_t i = mx_linear_index(index, grid);
  if (half_ == 0 || i >= batch * half_) return;
  size_t b = i / half_;
  size_t j = i % half_;
  uint32_t k0 = keys[2 * b];
  uint32_t k1 = keys[2 * b + 1];
  uint32_t x0 = uint32_t(j);
  uint32_t x1 = ((words & 1) != 0 && j + 1 == half_) ? 0u : uint32_t(j + half_);
  mx_threefry2x32(k0, k1, x0, x1);
  device T* row = out + b * n;
  mx_put_word<T>(row, n, j, x0);
  if (j + half_ < words) mx_put_word<T>(row, n, j + half_, x1);
}
