#include "io/logbook_schema.h"

namespace llmpi {

namespace {

using S = StepMetrics;
const StepField kStepFields[] = {
    {"step", "", "optimizer step (1-based)", &S::step},
    {"segment", "", "run segment: 0 for the first launch, +1 for each resume", &S::segment},
    {"tokens_seen", "tokens", "training tokens consumed by steps 1..step", &S::tokens_seen},
    {"wall_unix", "s", "wall-clock time at the end of the step (seconds since 1970)", &S::wall_unix},
    {"loss", "nats/token", "mean training loss of the step", &S::loss},
    {"val_loss", "nats/token", "validation loss when computed at this step, else NaN", &S::val_loss},
    {"lr", "", "learning rate of the step", &S::lr},
    {"grad_norm", "", "global gradient L2 norm before clipping", &S::grad_norm},
    {"clipped", "", "1 when the gradient was clipped", &S::clipped},
    {"skipped", "", "1 when the update was not applied (spike action, non-finite values)", &S::skipped},
    {"spike", "", "1 when the spike detector flagged the step", &S::spike},
    {"loss_z", "", "z-score of the loss against the detector's window (NaN while warming up)", &S::loss_z},
    {"grad_z", "", "z-score of the gradient norm against the detector's window", &S::grad_z},
    {"tokens_per_s", "tokens/s", "training throughput of the step, all ranks", &S::tokens_per_s},
    {"mfu", "", "model FLOPs utilization (0..1; NaN where the device's peak FLOP/s is unknown: the host backend)", &S::mfu},
    {"peak_memory_bytes", "bytes", "peak device memory, maximum over ranks (NaN on the host)",
     &S::peak_memory_bytes},
    {"time_step_s", "s", "wall time of the whole step", &S::time_step_s},
    {"time_data_s", "s", "staging the step's batch", &S::time_data_s},
    {"time_forward_s", "s", "forward passes (compute)", &S::time_forward_s},
    {"time_backward_s", "s", "backward passes (compute)", &S::time_backward_s},
    {"time_optimizer_s", "s", "gradient clip and optimizer update", &S::time_optimizer_s},
    {"time_comm_s", "s", "exposed communication: collectives not overlapped with compute",
     &S::time_comm_s},
    {"time_checkpoint_s", "s", "checkpoint stall (the state snapshot training waits for)",
     &S::time_checkpoint_s},
    {"dpo_chosen_reward", "", "DPO: mean β(π_c − ρ_c) over the step's pairs (NaN for other objectives)",
     &S::dpo_chosen_reward},
    {"dpo_rejected_reward", "", "DPO: mean β(π_r − ρ_r) over the step's pairs", &S::dpo_rejected_reward},
    {"dpo_reward_margin", "", "DPO: mean chosen − rejected reward", &S::dpo_reward_margin},
    {"dpo_reward_accuracy", "", "DPO: fraction of pairs whose chosen reward is higher",
     &S::dpo_reward_accuracy},
};

const LayerStatField kLayerFields[] = {
    {"param_norm", "L2 norm of each parameter tensor", &LayerStats::param_norm, false},
    {"grad_norm", "L2 norm of each parameter's gradient, before clipping", &LayerStats::grad_norm,
     false},
    {"update_ratio", "‖ΔW‖ / ‖W‖ of the step's update of each parameter", &LayerStats::update_ratio,
     false},
    {"activation_rms", "RMS of each block's output activations", &LayerStats::activation_rms, true},
};

}  // namespace

std::span<const StepField> step_fields() { return kStepFields; }
std::span<const LayerStatField> layer_stat_fields() { return kLayerFields; }

}  // namespace llmpi
