#pragma once
// Global tensors in an HDF5 group: each tensor is one dataset, named after it, in its full
// logical shape (f32), whatever the parallel layout that wrote it. Every rank writes and
// reads only its own hyperslab (collective MPI-IO); no rank ever holds the whole model.
//
// Shards: a slab is a box of the global tensor or a flat element range of it (ZeRO).
// Checksum (layout-independent): for a tensor with elements x_g at global row-major index
// g, checksum = Σ_g mix(g, bits(x_g)) mod 2^64. A sum commutes, so ranks add the terms of
// their own slabs and one all-reduce gives the same value for every layout. Stored as the
// dataset attribute "checksum" (uint64).
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/hdf5.h"

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

// Serial or collective: recomputes the checksum of every tensor under `group` from the
// stored values (each rank of comm reads a 1/P flat share, in bounded chunks; one
// all-reduce per tensor) and compares it with its "checksum" attribute. Returns the names
// of the tensors that fail (empty = all good). Structure is validated as in read_tensors.
std::vector<std::string> verify_tensor_checksums(hid_t group, MPI_Comm comm,
                                                 const std::string& file);

// Term of one element in the layout-independent checksum.
uint64_t checksum_term(uint64_t global_index, float value);
// Σ of the terms of a slab's elements (mod 2^64).
uint64_t slab_checksum(const TensorSlab& s);

// Collective over comm: creates one dataset per slab under `group` (every rank passes the
// same names and global shapes, in the same order), writes each owner's hyperslab and the
// checksum attribute. `file` is used in messages.
void write_tensors(hid_t group, MPI_Comm comm, const std::vector<TensorSlab>& slabs,
                   const std::string& file);

// Collective over comm: fills each slab from its dataset's hyperslab. Checks that every
// dataset exists, is f32-compatible and has the expected global shape (UserError otherwise,
// naming the tensor). When verify is true, recomputes each tensor's checksum from the
// owners' slabs (one all-reduce) and rejects a mismatch.
void read_tensors(hid_t group, MPI_Comm comm, std::vector<TensorSlab>& slabs,
                  const std::string& file, bool verify);

struct TensorEntry {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;
  uint64_t stored_checksum = 0;
  bool has_checksum = false;
};
// Serial: the datasets under a group, with shapes and stored checksums.
std::vector<TensorEntry> list_tensors(hid_t group, const std::string& file);
// Serial: reads one dataset (in bounded chunks) and recomputes its checksum.
uint64_t compute_checksum(hid_t group, const std::string& name, const std::string& file);

// Opens dataset `name` under `group` after validating it is a dataset of f32 (IEEE,
// 4 bytes) whose rank is at most 8 and whose byte size fits in the file; returns its dims.
// UserError naming the file and tensor otherwise. Every reader goes through this.
h5::Id open_f32_dataset(hid_t group, const std::string& name, const std::string& file,
                        std::vector<int64_t>& dims);

}  // namespace llmpi
