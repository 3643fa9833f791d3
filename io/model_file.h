#pragma once
// Model files: one HDF5 file holding a model's parameters as global tensors plus the
// metadata needed to use it (format version 1; spec in docs/checkpoint-format.md).
//
//   /                      attrs: format = "llmpi", format_version = 1, kind = "model",
//                                 llmpi_version, git_revision, step, tokens_seen,
//                                 config (full TOML text), created_unix, layout_*,
//                                 tokenizer (identity of the data's tokenizer, optional:
//                                 data/tokenizer_id.h; absent in files of older llmpi)
//   /params/<name>         f32, the parameter's full global shape; attr checksum (uint64)
//
// The checkpoint format (kind = "checkpoint") is a superset: the same root attributes and
// /params group, plus optimizer state and data position. So every checkpoint is a model file.
// Writes are collective (MPI-IO), each rank its own slabs; the file is written under
// "<path>.tmp", verified, and renamed, so a crash never leaves a half file at `path`.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/param_store.h"

namespace llmpi {

class Backend;

inline constexpr int64_t kFormatVersion = 1;

struct ModelFileMeta {
  int64_t step = 0;
  int64_t tokens_seen = 0;
  std::string config_toml;      // the run's full config after overrides
  std::vector<int64_t> layout;  // tp, pp, dp, zero_stage, world_size at save
  std::string kind = "model";   // "model" | "checkpoint"
  std::string tokenizer;        // TokenizerId::str() of the training data; "" = not recorded
};

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
