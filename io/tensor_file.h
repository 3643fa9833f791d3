#pragma once
// Global tensors in an HDF5 group: each tensor is one dataset, named after it, in its full
// logical shape (f32), whatever the parallel layout that wrote it. Every rank writes and
// reads only its own hyperslab (collective MPI-IO); no rank ever holds the whole model.
//
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

// A rank's part of one global tensor: the box [offset, offset + local_shape) of
// global_shape, stored contiguously row-major in `data` (f32 on the host).
struct TensorSlab {
  std::string name;
  std::vector<int64_t> global_shape;
  std::vector<int64_t> offset;       // per dim; empty = all zeros
  std::vector<int64_t> local_shape;  // per dim; empty = global_shape
  float* data = nullptr;
  bool owner = true;  // writes/contributes its checksum; replicas (e.g. other dp ranks) don't

  int64_t local_numel() const;
};

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
// Serial: reads one whole dataset and recomputes its checksum.
uint64_t compute_checksum(hid_t group, const std::string& name, const std::string& file);

}  // namespace llmpi
