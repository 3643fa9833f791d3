// StepGraphs (see step_graphs.h): when a micro-batch's pass is recorded, replayed or run.
#include "parallel/step_graphs.h"

#include "core/error.h"

namespace llmpi {

std::string step_graphs_blocker(const Config& cfg, const Layout& lay, const Backend& be) {
  if (be.device() != Device::cuda) return "the host backend runs no CUDA graphs";
  if (lay.world_size() > 1)
    return std::to_string(lay.world_size()) +
           " ranks: a step's collectives are not recorded (one rank only)";
  if (cfg.parallel.zero_stage >= 2)
    return "zero_stage " + std::to_string(cfg.parallel.zero_stage) +
           ": its units gather and free parameters during the step (zero_stage 0 or 1 only)";
  return "";
}

void StepGraphs::reset() {
  fwd_ = Slot{};
  bwd_ = Slot{};
}

void StepGraphs::run(Slot& s, bool replayable, double key, const std::function<void()>& work) {
  if (!replayable || unsupported_) return work();
  if (s.recording) {
    if (s.key != key) return work();  // another loss scale than the recorded one
    s.recording->replay();
    ++replays_;
    return;
  }
  if (!s.warmed) {
    work();
    s.warmed = true;
    return;
  }
  try {
    s.recording = be_.record(work);
  } catch (const InternalError& e) {
    throw InternalError(std::string("recording a training step's pass as a CUDA graph failed (") +
                        e.what() + "); [train] cuda_graphs = \"off\" runs it op by op");
  }
  if (!s.recording) {
    unsupported_ = true;
    return work();
  }
  s.key = key;
  s.recording->replay();
  ++replays_;
}

}  // namespace llmpi
