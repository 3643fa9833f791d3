#pragma once
// llmpi analyze: the offline study of a finished (or running) run directory. Reads what is
// there — logbook.h5 (per-step metrics, per-layer statistics, journal) and the checkpoint
// series — computes the weight dynamics, the loss over checkpoints (with an eval shard) and
// memorization over time, and writes the report (analysis/report.h) to out_dir.
// Collective over comm: checkpoints are spread over the ranks (analysis/weight_dynamics.h,
// model_probe.h); rank 0 reads the logbook, prints progress and writes the report.
// Partial input gives a partial report with notes; a directory with nothing to report (no
// readable logbook and no valid checkpoint) is an error (UserError on every rank). So is, before
// any work, an input the options name that is unusable (run_dir not a directory, eval_data or
// train_data not token shards, out_dir not a directory): a typo is not found after hours.
#include <mpi.h>

#include <cstdint>
#include <iosfwd>
#include <string>

#include "backend/backend.h"

namespace llmpi {

struct AnalyzeOptions {
  std::string run_dir;
  std::string out_dir;           // "" = <run_dir>/analysis
  std::string eval_data;         // token shard(s): the loss of every checkpoint ("" = none)
  int64_t eval_batches = 16;     // batches of train.batch_size sequences (0 = the whole shard)
  std::string train_data;        // the run's training shards for memorization ("" = its config's)
  int64_t probe_samples = 8;     // training samples probed per checkpoint interval (0 = none)
  bool force = false;            // replace files in out_dir that an earlier analyze did not write
};

struct AnalyzeSummary {
  std::string report_path;
  int64_t checkpoints = 0, rejected = 0, step_rows = 0, events = 0;
  double checkpoint_bytes = 0.0, seconds = 0.0;
  double weights_gbps = 0.0;  // tensor bytes read by the weight pass / its wall time
  double total_gbps = 0.0;    // checkpoint bytes / the whole analysis' wall time
};

AnalyzeSummary analyze_run(const AnalyzeOptions& opt, Backend& be, MPI_Comm comm, std::ostream& out);

}  // namespace llmpi
