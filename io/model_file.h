#pragma once
// Model files: one HDF5 file holding a model's parameters as global tensors plus the
// metadata needed to use it (spec in docs/checkpoint-format.md).
//
//   /                      attrs: format = "llmpi", format_version, kind = "model",
//                                 llmpi_version, git_revision, step, tokens_seen,
//                                 config (full TOML text), created_unix (io/file_meta.h)
//   /layout                attrs: the parallel layout at save, by name (io/file_meta.h)
//   /params/<name>         f32, the parameter's full global shape; attr checksum (uint64)
//
// The checkpoint format (kind = "checkpoint") is a superset: the same root attributes,
// /layout and /params, plus optimizer state and data position. So every checkpoint is a
// model file. Writes are collective (MPI-IO), each rank its own slabs; the file is written
// under "<path>.tmp", verified, and renamed, so a crash never leaves a half file at `path`.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/file_meta.h"
#include "io/tensor_file.h"
#include "model/param_store.h"

namespace llmpi {

class Backend;

// A parameter's tp-local slab as a slab of its global tensor: the box
// [local_start, local_start + local_shape) of global_shape, its elements at `data`
// (row-major). owner = false for a replica (ParamInfo::replica is not consulted here).
TensorSlab param_slab(const ParamInfo& p, float* data, bool owner);
// The flat elements [b, e) (row-major) of that box, stored at `data` (a ZeRO shard's piece).
TensorSlab param_range_slab(const ParamInfo& p, int64_t b, int64_t e, float* data, bool owner);

// Collective over comm. Writes every parameter of `store` (this rank's slabs; owner says
// whether this rank writes them or only a replica of them lives here).
void save_model_file(const std::string& path, MPI_Comm comm, Backend& be,
                     const ParamStore& store, const ModelFileMeta& meta, bool owner = true);

// Serial reads of the metadata (UserError naming the file on anything malformed).
ModelFileMeta read_model_meta(const std::string& path);

// Collective over comm: fills the local slabs of every parameter in `store` from the file,
// verifying shapes and (verify=true) checksums.
void load_model_params(const std::string& path, MPI_Comm comm, Backend& be, ParamStore& store,
                       bool verify = true);

}  // namespace llmpi
