#pragma once
// StepGraphs: a pp = 1 stage's micro-batch forward and backward recorded once through
// Backend::record (a CUDA graph each) and replayed from then on, so that the host no longer
// launches every op of the step: what pays where launches pace the GPU (small models,
// docs/performance.md "CUDA graphs"). Replays run the same kernels on the same stream as the
// eager ops: results are bitwise those of eager steps (deterministic mode: the same bits).
//
// A recording freezes every address and scalar of its ops. The stage reads token ids and
// targets from fixed buffers (MicroBatch), so a replay sees each new micro-batch; the
// backward's uniform loss scale (1 / counted targets) is keyed: a micro-batch whose scale
// differs from the recorded one runs eagerly. A micro-batch also runs eagerly, op by op, when
//   - the caller says it is not replayable (graphs off for the run, documents set, per-token
//     loss scales, a block observer measuring: the logbook's statistics steps),
//   - its work has not yet run once eagerly (plans, workspaces and caches are built then),
//   - the backend cannot record (the host; the timing decorator of --profile).
// With one rank only, ZeRO 0/1 (step_graphs_blocker): a step's collectives are not recorded.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "config/config.h"
#include "core/layout.h"

namespace llmpi {

// Why steps of this layout on `be` cannot be replayed (empty: they can; train.cuda_graphs is
// not consulted). The one place this rule lives.
std::string step_graphs_blocker(const Config& cfg, const Layout& lay, const Backend& be);

class StepGraphs {
 public:
  explicit StepGraphs(Backend& be) : be_(be) {}
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // Runs a micro-batch's forward `work` (see above for when it is replayed).
  void forward(bool replayable, const std::function<void()>& work) {
    run(fwd_, replayable, 0.0, work);
  }
  // Runs its backward `work`, whose ops read the uniform loss scale `scale`.
  void backward(bool replayable, double scale, const std::function<void()>& work) {
    run(bwd_, replayable, scale, work);
  }
  // Drops the recordings (the model's ops changed: adapters switched on or off); the next
  // replayable micro-batches record again.
  void reset();
  // Forward and backward passes run from a recording so far (tests, the end-of-run line).
  int64_t replays() const { return replays_; }

 private:
  struct Slot {
    std::unique_ptr<RecordedWork> recording;
    double key = 0.0;     // the recorded backward's loss scale
    bool warmed = false;  // the work ran once eagerly
  };
  void run(Slot& s, bool replayable, double key, const std::function<void()>& work);

  Backend& be_;
  Slot fwd_, bwd_;
  bool unsupported_ = false;  // the backend returned no recording
  int64_t replays_ = 0;
};

}  // namespace llmpi
