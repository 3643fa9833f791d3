#pragma once
// Tensor slabs: a rank's part of a global tensor — a box of it, or a flat element range of
// a box (a ZeRO shard, which may cut rows anywhere) — and the arithmetic on them that needs
// no file: the boxes a slab covers, and the layout-independent checksum.
// Checksum: for a tensor with elements x_g at global row-major index g,
//     checksum = Σ_g mix(g, bits(x_g)) mod 2^64,  mix(g, b) = splitmix64(splitmix64(g) ⊕ b·φ)
// A sum commutes, so ranks add the terms of their own slabs and one all-reduce gives the
// same value for every layout. io/tensor_file.h moves slabs to and from HDF5.
#include <cstdint>
#include <string>
#include <vector>

namespace llmpi {

// A rank's part of one global tensor, stored contiguously row-major in `data` (f32, host).
// Either the box [offset, offset + local_shape) of global_shape (tensor-parallel shard,
// pipeline stage; empty offset/local_shape = the whole tensor), or — when flat_offset >= 0 —
// the flat element range [flat_offset, flat_offset + flat_count) of that box in row-major
// order (a ZeRO shard of a flat buffer, which may cut rows anywhere; with tp, a flat range
// of the rank's tp-local box).
struct TensorSlab {
  std::string name;
  std::vector<int64_t> global_shape;
  std::vector<int64_t> offset;       // per dim; empty = all zeros
  std::vector<int64_t> local_shape;  // per dim; empty = global_shape
  float* data = nullptr;
  bool owner = true;  // writes/contributes its checksum; replicas (e.g. other dp ranks) don't
  int64_t flat_offset = -1;  // >= 0: a flat range of the box (row-major) instead of all of it
  int64_t flat_count = 0;

  bool is_flat() const { return flat_offset >= 0; }
  int64_t local_numel() const;
  int64_t global_numel() const;
};

// A box of an N-d tensor: [start, start + count) per dim.
struct Box {
  std::vector<int64_t> start, count;
};
// The boxes of the global tensor a slab covers, in its storage order.
std::vector<Box> slab_boxes(const TensorSlab& s);
// The flat range [begin, begin + count) of a row-major tensor of `shape` as the fewest
// disjoint boxes, in row-major order: a partial innermost run, then partial blocks of each
// outer dim up to the largest aligned block, then the same down again — at most
// 2·(ndim − 1) + 1 boxes (≤ 3 for a matrix: partial first row, full rows, partial last row).
std::vector<Box> flat_range_boxes(const std::vector<int64_t>& shape, int64_t begin,
                                  int64_t count);

// Term of one element in the layout-independent checksum.
uint64_t checksum_term(uint64_t global_index, float value);
// Σ of the terms of a slab's elements (mod 2^64).
uint64_t slab_checksum(const TensorSlab& s);

}  // namespace llmpi
