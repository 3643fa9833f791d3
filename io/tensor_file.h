#pragma once
// Global tensors in an HDF5 group: each tensor is one dataset, named after it, in its full
// logical shape (f32), whatever the parallel layout that wrote it. Every rank writes and
// reads only its own hyperslab (collective MPI-IO); no rank ever holds the whole model.
//
// Shards: a slab (io/tensor_slab.h) is a box of the global tensor or a flat element range
// of it (ZeRO). Each dataset carries its layout-independent checksum (io/tensor_slab.h) as
// the attribute "checksum" (uint64).
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/hdf5.h"
#include "io/tensor_slab.h"

namespace llmpi {

// Serial or collective: recomputes the checksum of every tensor under `group` from the
// stored values (each rank of comm reads a 1/P flat share, in bounded chunks; one
// all-reduce per tensor) and compares it with its "checksum" attribute. Returns one phrase
// per tensor that fails, "<name> fails its checksum", and with finite = true also
// "<name> holds N non-finite value(s) (NaN or infinity)" — what read_tensors refuses to load
// (empty = all good). Structure is validated as in read_tensors.
std::vector<std::string> verify_tensor_checksums(hid_t group, MPI_Comm comm,
                                                 const std::string& file, bool finite = false);

// Collective over comm: creates one dataset per slab under `group` (every rank passes the
// same names and global shapes, in the same order), writes each owner's hyperslab and the
// checksum attribute. `file` is used in messages.
void write_tensors(hid_t group, MPI_Comm comm, const std::vector<TensorSlab>& slabs,
                   const std::string& file);

// Collective over comm: fills each slab from its dataset's hyperslab. Checks that every
// dataset exists, is f32-compatible and has the expected global shape (UserError otherwise,
// naming the tensor). When verify is true, recomputes each tensor's checksum from the
// owners' slabs (one all-reduce) and rejects a mismatch, and rejects a tensor holding a NaN
// or an infinity (a checksum only says the values are the ones written).
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
// Serial: reads one dataset (in bounded chunks) and recomputes its checksum; counts its NaN
// and infinite values into *nonfinite when given.
uint64_t compute_checksum(hid_t group, const std::string& name, const std::string& file,
                          uint64_t* nonfinite = nullptr);

// Opens dataset `name` under `group` after validating it is a dataset of f32 (IEEE,
// 4 bytes) whose rank is at most 8 and whose byte size fits in the file; returns its dims.
// UserError naming the file and tensor otherwise. Every reader goes through this.
h5::Id open_f32_dataset(hid_t group, const std::string& name, const std::string& file,
                        std::vector<int64_t>& dims);

}  // namespace llmpi
