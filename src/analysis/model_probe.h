#pragma once
// Probes that need each checkpoint as a working model (llmpi analyze): the validation loss of
// every checkpoint on a token shard (LLM360's loss-over-checkpoints curve), and memorization
// over time — for training samples picked from the data→checkpoint map (a few from each
// checkpoint's interval), the fraction of a K-token continuation each checkpoint reproduces
// greedily from the sample's first P tokens (train/evaluate.h). P = K = 32 when the run's
// sequences allow it, else half of min(seq_len + 1, max_seq_len) each. A fine-tuning run's
// map holds rows (train/step_rows.h): a row's probe sequence is its first document (DPO: the
// chosen answer), and P = K shrink to half the shortest probed document.
// Collective over comm: each rank loads the checkpoints of its contiguous block one at a time
// (memory: one model) on the given backend; rank 0 returns every result.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/checkpoint_series.h"
#include "backend/backend.h"

namespace llmpi {

struct ProbeOptions {
  std::string eval_data;      // token shard(s) for the loss curve; "" = no loss curve
  int64_t eval_batches = 16;  // batches of the run's train.batch_size sequences (0 = all)
  std::string train_data;     // the run's training shards; "" = the config's data.train
  bool memorization = true;
};

struct ProbeResults {
  std::vector<int64_t> steps;     // C
  std::vector<double> eval_loss;  // [C], NaN without eval data (or for a failed checkpoint)
  int64_t eval_tokens = 0;        // tokens per evaluation
  std::string eval_description;   // the shards evaluated
  int64_t prompt = 0, continuation = 0;
  std::vector<int64_t> samples;            // S probed sample indices
  std::vector<int64_t> sample_checkpoint;  // [S] index of the checkpoint whose interval holds it
  std::vector<int64_t> sample_step;        // [S] the step of that checkpoint
  std::vector<double> memorization;        // [C × S] row-major; NaN where not computed
  std::vector<std::string> notes;          // what was skipped and why
  double seconds = 0.0;
};

ProbeResults probe_checkpoints(const CheckpointSeries& series, const ProbeOptions& opt, Backend& be,
                               MPI_Comm comm, const Progress& progress);

}  // namespace llmpi
