// conv.metal: the patch matrix ("im2col") of a convolution (conv_general), which conv.py then
// multiplies by the weights with one (batched over the groups) gemm.
// Instances (T element type): im2col<T>.
#include <metal_stdlib>
#include "utils.metal"
using namespace metal;

#define MX_CONV_DIMS 3

struct ConvLayout {
  int64_t ndim;                     // spatial axes (1 to 3)
  int64_t row0;                     // the flat (batch, *out) index of this chunk's first row
  int64_t rows;                     // output positions per batch element (prod out_size)
  int64_t cols;                     // patch columns: groups * taps * cg
  int64_t cg;                       // input channels per group
  int64_t taps;                     // kernel taps (prod ksize)
  int64_t flip;                     // 1: the taps of every spatial axis are read reversed
  int64_t x_batch;                  // element strides of x's batch and channel axes
  int64_t x_channel;
  int64_t in_size[MX_CONV_DIMS];    // x's spatial sizes (before the input dilation)
  int64_t x_strides[MX_CONV_DIMS];  // element strides of x's spatial axes
  int64_t out_size[MX_CONV_DIMS];
  int64_t ksize[MX_CONV_DIMS];
  int64_t stride[MX_CONV_DIMS];
  int64_t pad_lo[MX_CONV_DIMS];     // low padding of the dilated input (negative: cropped)
  int64_t kdil[MX_CONV_DIMS];       // kernel dilation
  int64_t idil[MX_CONV_DIMS];       // input dilation
};

// patches[r, (g, t, c)] for the chunk's rows r (row0 + r = (b, o_0, ..., o_{d-1})), group g,
// kernel tap t (row-major over ksize) and channel c of the group: the element of x under
// that tap, or 0 where the tap falls on padding or between dilated input elements. Along
// axis i the tap k (reversed when flipping) sits at p = o * stride + k * kdil - pad_lo in
// the dilated input, which holds x element p / idil when p >= 0 is a multiple of idil and
// p / idil < in_size (the output size keeps p below the cropped high end). Sizes of one
// chunk's columns and of the rows of one batch element fit in 32 bits (the host checks).
template <typename T>
[[kernel]] void im2col(
    device const T* x [[buffer(0)]],
    device T* patches [[buffer(1)]],
    constant const size_t& size [[buffer(2)]],
    constant const ConvLayout& lay [[buffer(3)]],
    uint2 index [[thread_position_in_grid]],
    uint2 grid [[threads_per_grid]]) {
  size_t i = mx_linear_index(index, grid);
  if (i >= size) return;
  size_t cols = size_t(lay.cols);
  size_t row = i / cols;
  uint col = uint(i - row * cols);
  row += size_t(lay.row0);
  size_t rows = size_t(lay.rows);
  size_t b = row / rows;
  uint r = uint(row - b * rows);
  uint cg = uint(lay.cg);
  uint taps = uint(lay.taps);
  uint gt = col / cg;
  uint c = col - gt * cg;
  uint g = gt / taps;
  uint t = gt - g * taps;
  int64_t off = int64_t(b) * lay.x_batch + int64_t(g * cg + c) * lay.x_channel;
  bool inside = true;
  for (int d = int(lay.ndim) - 1; d >= 0; --d) {
    uint on = uint(lay.out_size[d]);
    uint kn = uint(lay.ksize[d]);
    uint oq = r / on;
    int64_t o = int64_t(r - oq * on);
    r = oq;
    uint kq = t / kn;
    int64_t k = int64_t(t - kq * kn);
    t = kq;
    if (lay.flip != 0) k = int64_t(kn) - 1 - k;
    int64_t p = o * lay.stride[d] + k * lay.kdil[d] - lay.pad_lo[d];
    int64_t q = p;
    if (lay.idil[d] != 1) {
      q = p / lay.idil[d];
      if (q * lay.idil[d] != p) inside = false;
    }
    if (p < 0 || q >= lay.in_size[d]) inside = false;
    off += q * lay.x_strides[d];
  }
  if (inside) {
    patches[i] = x[off];
  } else {
    patches[i] = T(0);
  }
}
