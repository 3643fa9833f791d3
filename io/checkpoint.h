#pragma once
// Checkpoints: one HDF5 file per saved step holding everything a run needs to continue, as
// global tensors that load under any parallel layout (spec: docs/checkpoint-format.md).
//
//   [512-byte integrity header]       io/checkpoint_integrity.h
//   /                attrs           as a model file (io/file_meta.h), kind = "checkpoint"
//   /layout          attrs           the parallel layout at save, by name (io/file_meta.h)
//   /params/<name>   f32 global      master weights;       attr checksum (layout-independent)
//   /optimizer       attrs           step_count, beta1, beta2, eps, weight_decay
//   /optimizer/m/<name>, /optimizer/v/<name>   f32, the parameter's global shape
//   /data            attrs           seed, samples_consumed, global_batch
//   /data/steps [n]  int64           the optimizer steps since the previous checkpoint
//   /data/step_samples [n, G] int64  the global sample indices each of those steps consumed
//   /run_state       attrs           segment, consecutive_actions, furthest_step (RunState)
//   /run_state/skipped_steps [k] int64, /run_state/spike_history [h, 2] float64 (loss, grad norm)
//
// Saves are collective, each rank writing only its own slabs (box or flat ZeRO range); the
// file is written as "<path>.tmp", closed, stamped, verified, then renamed to `path`.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/file_meta.h"
#include "io/tensor_file.h"

namespace llmpi {

// This rank's slabs. Every rank lists the same tensors (names, global shapes) in the same
// order in each vector; `owner = false` marks a replica that another rank writes. m and v
// may be empty (a model without optimizer state); their names are the parameter names.
struct CheckpointSlabs {
  std::vector<TensorSlab> params, m, v;
};

struct OptimizerMeta {
  int64_t step_count = 0;  // AdamW updates applied (its 1-based t of the last update)
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0;
};

// The data-to-checkpoint mapping (LLM360): samples are a pure function of (seed, step), so the
// position plus the recorded indices let a resumed or audited run see exactly the same data.
struct DataMeta {
  uint64_t seed = 0;              // run seed: all randomness is keyed by (seed, step), no state
  int64_t samples_consumed = 0;   // global samples consumed by steps 1..step
  int64_t global_batch = 0;       // G: samples per optimizer step
  std::vector<int64_t> steps;     // [n] steps since the previous checkpoint
  std::vector<int64_t> step_samples;  // [n * G] row-major: global sample indices of each step
};

// The training loop's own state beyond model and data position: spike handling and the run's
// segments (llmpi writes it since the logbook; older files read as the defaults). Identical
// on every rank.
struct RunState {
  int64_t segment = 0;                   // the logbook segment that saved the checkpoint
  std::vector<int64_t> skipped_steps;    // steps whose data rollbacks skipped, ascending
  std::vector<double> spike_loss_history, spike_grad_history;  // the spike detector's window
  int64_t consecutive_actions = 0;       // spike skips/rollbacks since the last progress
  int64_t furthest_step = 0;             // the furthest step trained so far (any segment)
};

// Identical on every rank (collective attribute writes). The root metadata (step,
// tokens_seen, config, layout; versions and time filled on read) is a model file's.
struct CheckpointMeta : ModelFileMeta {
  CheckpointMeta() { kind = "checkpoint"; }
  OptimizerMeta optimizer;
  DataMeta data;
  RunState run;
};

struct SaveOptions {
  // Re-read the finished file and recompute every tensor checksum before the rename (one
  // extra read of the file spread over the ranks). The integrity digest and the structure
  // are always checked.
  bool verify_tensors = true;
};

// Collective over comm (MPI_COMM_NULL: this process alone). Writes path + ".tmp", stamps and
// verifies it, renames it to `path`. Throws UserError (disk full, unwritable directory, a
// failed verification) with the temporary removed; a crash leaves at most the ".tmp".
void save_checkpoint(const std::string& path, MPI_Comm comm, const CheckpointSlabs& slabs,
                     const CheckpointMeta& meta, const SaveOptions& opt = {});

// Collective: checks the integrity header and digest, the root metadata, then fills every
// slab of `slabs` (any layout: boxes or flat ranges of the global tensors) and verifies each
// tensor's checksum. Returns the metadata. UserError naming the file and cause otherwise.
CheckpointMeta load_checkpoint(const std::string& path, MPI_Comm comm, CheckpointSlabs& slabs);

// Serial: the metadata (root, optimizer and data attributes, the data mapping). Checks the
// integrity header, not the digest (cheap: for listing). UserError on anything malformed.
CheckpointMeta read_checkpoint_meta(const std::string& path);

// Collective: full validation without loading into a model — integrity digest, structure
// (groups, every m/v tensor matching a parameter's shape, data mapping shapes), f32 dtypes,
// and (tensors = true) every tensor's checksum. Returns "" when valid, else the reason
// (the same on every rank). Never throws for a bad file.
std::string verify_checkpoint(const std::string& path, MPI_Comm comm, bool tensors = true);

}  // namespace llmpi
