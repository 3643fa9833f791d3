#pragma once
// What the logbook records, as tables: the per-step metrics (one row per trained step; one
// field = one 1-D dataset /steps/<name>) and the per-layer statistics (one row every
// logbook.layer_stats_every steps; one 2-D dataset per statistic, one column per parameter
// tensor or per block). The writer, the reader, the CSV/JSONL export, the report and the
// documentation test all walk kStepFields, so a new metric is one struct member + one row.
// Conventions: seconds for times, NaN for "not measured at this step" (validation loss
// between evaluations, MFU on the host), -1 for an unknown integer.
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace llmpi {

inline constexpr double kNotMeasured = std::numeric_limits<double>::quiet_NaN();

struct StepMetrics {
  int64_t step = 0;         // optimizer step (1-based)
  int64_t segment = 0;      // run segment (0 = first launch, +1 per resume)
  int64_t tokens_seen = 0;  // training tokens consumed by steps 1..step
  double wall_unix = 0.0;   // wall-clock time at the end of the step
  double loss = kNotMeasured;      // mean training loss (nats/token)
  double val_loss = kNotMeasured;  // validation loss, when computed at this step
  double lr = 0.0;
  double grad_norm = kNotMeasured;  // global L2 norm before clipping
  int64_t clipped = 0;              // 1: the gradient was clipped
  int64_t skipped = 0;              // 1: the update was not applied (spike, non-finite, rollback)
  int64_t spike = 0;                // 1: the spike detector flagged this step
  double loss_z = kNotMeasured;     // z-score of the loss against the detector's window
  double grad_z = kNotMeasured;     // z-score of the gradient norm
  double tokens_per_s = 0.0;
  double mfu = kNotMeasured;           // model FLOPs utilization (GPU only)
  double peak_memory_bytes = kNotMeasured;  // peak device memory, max over ranks
  double time_step_s = 0.0;       // wall time of the whole step
  double time_data_s = 0.0;       // staging the batch
  double time_forward_s = 0.0;
  double time_backward_s = 0.0;
  double time_optimizer_s = 0.0;  // clip + AdamW (+ ZeRO parameter gathers)
  double time_comm_s = 0.0;       // exposed communication: collectives not hidden by compute
  double time_checkpoint_s = 0.0; // checkpoint stall (snapshot of the state)
  // objective = "dpo" (NaN otherwise): the step's means over its pairs (train/dpo_loss.h)
  double dpo_chosen_reward = kNotMeasured;
  double dpo_rejected_reward = kNotMeasured;
  double dpo_reward_margin = kNotMeasured;
  double dpo_reward_accuracy = kNotMeasured;
};

struct StepField {
  std::string_view name, units, description;
  std::variant<int64_t StepMetrics::*, double StepMetrics::*> member;
};

// Every field of StepMetrics, in file and export order.
std::span<const StepField> step_fields();

// The per-layer statistics: for each parameter tensor (names in the model's order) its norm,
// its gradient norm (before clipping) and the norm of its last update over its norm; for each
// block the RMS of its output activations (the first micro-batch of the step).
struct LayerStats {
  int64_t step = 0, segment = 0;
  std::vector<double> param_norm;      // [P]
  std::vector<double> grad_norm;       // [P]
  std::vector<double> update_ratio;    // [P] ‖ΔW‖ / ‖W‖ of this step's update
  std::vector<double> activation_rms;  // [L] one per block
};

struct LayerStatField {
  std::string_view name, description;
  std::vector<double> LayerStats::*member;
  bool per_block;  // columns are blocks (L) rather than parameter tensors (P)
};
std::span<const LayerStatField> layer_stat_fields();

// The shape of the per-layer tables: fixed for a run (the model's parameters and blocks).
struct LogbookSchema {
  std::vector<std::string> params;  // P parameter names
  int64_t blocks = 0;               // L
  bool operator==(const LogbookSchema&) const = default;
};

}  // namespace llmpi
