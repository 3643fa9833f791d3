#pragma once
// A run's checkpoints as a series for offline analysis (llmpi analyze): every
// <run_dir>/checkpoints/step_*.h5, verified (integrity digest and structure, without reading
// the tensors twice) and summarized — step, tokens, the layout that saved it, its size, and
// its part of the data→checkpoint map (the steps and samples recorded since the previous
// checkpoint, and a few of those samples picked for the memorization probe). Checkpoints are
// global tensors, so a series saved under different layouts reads the same way.
// Collective over comm: the files are spread round-robin over the ranks for verification;
// every rank returns the same series. A file that fails is listed with the reason and left
// out; the rest of the series is still analyzed.
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/layout.h"

namespace llmpi {

struct SeriesCheckpoint {
  std::string path;
  int64_t step = 0, tokens_seen = 0, bytes = 0;
  Layout layout;  // the layout that saved it
  std::string config_toml;
  // Data→checkpoint map: the steps recorded in this file (trained since the previous save).
  int64_t data_first_step = 0, data_last_step = 0, data_steps = 0;
  int64_t skipped_steps = 0;  // of those, steps whose data a rollback skipped (not trained on)
  int64_t segment = 0;        // the logbook segment that saved it
  // The samples trained on (skipped steps' samples left out).
  int64_t samples = 0, unique_samples = 0, min_sample = -1, max_sample = -1;
  int64_t global_batch = 0;
  std::vector<int64_t> probe_samples;  // up to `probe_per_checkpoint` of those samples
};

struct SeriesProblem {
  std::string path, reason;
};

struct CheckpointSeries {
  std::vector<SeriesCheckpoint> checkpoints;  // valid ones, ascending by step
  std::vector<SeriesProblem> rejected;
};

using Progress = std::function<void(const std::string&)>;

// probe_per_checkpoint: samples picked evenly from each checkpoint's recorded samples.
CheckpointSeries discover_series(const std::string& run_dir, MPI_Comm comm,
                                 int64_t probe_per_checkpoint, const Progress& progress);

// The contiguous block [first, last) of n items that rank r of p handles.
void block_of(int64_t n, int rank, int size, int64_t& first, int64_t& last);

}  // namespace llmpi
