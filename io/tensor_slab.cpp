// Slab arithmetic and the layout-independent checksum (see tensor_slab.h).
#include "io/tensor_slab.h"

#include <cstring>

#include "core/error.h"
#include "core/rng.h"

namespace llmpi {

int64_t TensorSlab::local_numel() const {
  if (is_flat()) return flat_count;
  const auto& s = local_shape.empty() ? global_shape : local_shape;
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

int64_t TensorSlab::global_numel() const {
  int64_t n = 1;
  for (int64_t d : global_shape) n *= d;
  return n;
}

std::vector<Box> slab_boxes(const TensorSlab& s) {
  const size_t nd = s.global_shape.size();
  const std::vector<int64_t> off = s.offset.empty() ? std::vector<int64_t>(nd, 0) : s.offset;
  const std::vector<int64_t>& box = s.local_shape.empty() ? s.global_shape : s.local_shape;
  if (!s.is_flat()) return {Box{off, box}};
  std::vector<Box> out = flat_range_boxes(box, s.flat_offset, s.flat_count);
  for (Box& b : out)
    for (size_t d = 0; d < nd; ++d) b.start[d] += off[d];
  return out;
}

uint64_t checksum_term(uint64_t global_index, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return splitmix64(splitmix64(global_index) ^ (uint64_t(bits) * 0x9E3779B97F4A7C15ull));
}

uint64_t slab_checksum(const TensorSlab& s) {
  if (s.is_flat() && s.local_shape.empty()) {  // a flat range of the whole tensor
    uint64_t sum = 0;
    for (int64_t i = 0; i < s.flat_count; ++i)
      sum += checksum_term(uint64_t(s.flat_offset + i), s.data[i]);
    return sum;
  }
  if (s.is_flat()) {  // a flat range of a box: the sum over its boxes
    uint64_t sum = 0;
    const float* p = s.data;
    for (const Box& b : slab_boxes(s)) {
      TensorSlab part{s.name, s.global_shape, b.start, b.count, const_cast<float*>(p)};
      sum += slab_checksum(part);
      p += part.local_numel();
    }
    return sum;
  }
  const size_t nd = s.global_shape.size();
  const auto& ls = s.local_shape.empty() ? s.global_shape : s.local_shape;
  std::vector<int64_t> off = s.offset.empty() ? std::vector<int64_t>(nd, 0) : s.offset;
  // Global strides.
  std::vector<int64_t> gstride(nd, 1);
  for (int i = int(nd) - 2; i >= 0; --i) gstride[i] = gstride[i + 1] * s.global_shape[i + 1];
  const int64_t n = s.local_numel();
  const int64_t inner = nd ? ls[nd - 1] : 1;
  if (n == 0 || inner == 0) return 0;
  uint64_t sum = 0;
  std::vector<int64_t> idx(nd, 0);  // local coordinates of the current row start
  for (int64_t start = 0; start < n; start += inner) {
    int64_t g = 0;
    for (size_t d = 0; d < nd; ++d) g += (idx[d] + off[d]) * gstride[d];
    for (int64_t j = 0; j < inner; ++j) sum += checksum_term(uint64_t(g + j), s.data[start + j]);
    for (int d = int(nd) - 2; d >= 0; --d) {  // advance the outer coordinates
      if (++idx[d] < ls[d]) break;
      idx[d] = 0;
    }
  }
  return sum;
}

namespace {

// Appends the boxes of the flat range [a, b) of the sub-tensor of dims k.. at outer
// coordinates `prefix` (dims < k).
void range_boxes(const std::vector<int64_t>& shape, const std::vector<int64_t>& stride, size_t k,
                 std::vector<int64_t>& prefix, int64_t a, int64_t b, std::vector<Box>& out) {
  if (a >= b) return;
  const size_t nd = shape.size();
  auto emit = [&](int64_t lo, int64_t n) {
    Box box;
    box.start = prefix;
    box.count.assign(prefix.size(), 1);
    box.start.push_back(lo);
    box.count.push_back(n);
    for (size_t d = k + 1; d < nd; ++d) {
      box.start.push_back(0);
      box.count.push_back(shape[d]);
    }
    out.push_back(std::move(box));
  };
  if (k == nd - 1) return emit(a, b - a);
  const int64_t s = stride[k];  // elements per index of dim k
  const int64_t i0 = a / s, i1 = (b - 1) / s;
  auto descend = [&](int64_t i, int64_t lo, int64_t hi) {
    prefix.push_back(i);
    range_boxes(shape, stride, k + 1, prefix, lo, hi, out);
    prefix.pop_back();
  };
  if (i0 == i1 && (a % s != 0 || b % s != 0)) return descend(i0, a - i0 * s, b - i0 * s);
  int64_t lo = i0, hi = i1 + 1;
  if (a % s != 0) {
    descend(i0, a % s, s);
    lo = i0 + 1;
  }
  if (b % s != 0) hi = i1;
  if (hi > lo) emit(lo, hi - lo);
  if (b % s != 0) descend(i1, 0, b % s);
}

}  // namespace

std::vector<Box> flat_range_boxes(const std::vector<int64_t>& shape, int64_t begin,
                                  int64_t count) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  LLMPI_CHECK(begin >= 0 && count >= 0 && begin + count <= numel, "flat range [", begin, ", ",
              begin + count, ") outside a tensor of ", numel, " elements");
  std::vector<Box> out;
  if (count == 0) return out;
  if (shape.empty()) return {Box{}};  // a scalar: the one element
  std::vector<int64_t> stride(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i) stride[i] = stride[i + 1] * shape[i + 1];
  std::vector<int64_t> prefix;
  range_boxes(shape, stride, 0, prefix, begin, begin + count, out);
  return out;
}

}  // namespace llmpi
