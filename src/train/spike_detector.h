#pragma once
// SpikeDetector: flags a training step whose loss or gradient norm jumps far above its recent
// history — rolling z-scores over the last `window` accepted steps:
//   z(x) = (x − mean) / max(std, kStdFloor · |mean|),   spike ⇔ z > threshold (upward only)
// for x = loss and x = gradient norm, once at least `warmup` steps are in the window. A
// non-finite loss or gradient norm is always a spike. Flagged steps do not enter the window
// (a spike must not raise the bar for the next one). Pure: no I/O, no MPI; the window is
// state a checkpoint saves (history()) and a resume restores, so decisions after a resume are
// those of the uninterrupted run.
#include <cstdint>
#include <deque>
#include <vector>

namespace llmpi {

struct SpikeOptions {
  int64_t window = 100;     // steps of history
  double threshold = 6.0;   // z-score above which a step is a spike
  int64_t warmup = 20;      // steps of history needed before z-scores are used
};

struct SpikeVerdict {
  bool spike = false;
  bool nonfinite = false;  // the loss or the gradient norm is NaN or ±inf
  double loss_z = 0.0;     // NaN while warming up (or when non-finite)
  double grad_z = 0.0;
};

class SpikeDetector {
 public:
  // Relative floor on the standard deviation: a flat history (std ≈ 0) does not turn
  // rounding noise into spikes.
  static constexpr double kStdFloor = 1e-3;

  explicit SpikeDetector(SpikeOptions opt);

  // The verdict on a step's values; does not change the window.
  SpikeVerdict check(double loss, double grad_norm) const;
  // Adds a step's values to the window (call for steps that were not spikes).
  void accept(double loss, double grad_norm);

  // The window (oldest first), for checkpoints: loss values then gradient norms, same length.
  std::vector<double> loss_history() const { return {loss_.begin(), loss_.end()}; }
  std::vector<double> grad_history() const { return {grad_.begin(), grad_.end()}; }
  // Replaces the window (a resume); longer histories keep their newest `window` values.
  void restore(const std::vector<double>& loss, const std::vector<double>& grad);
  int64_t size() const { return int64_t(loss_.size()); }

 private:
  double z(const std::deque<double>& h, double x) const;

  SpikeOptions opt_;
  std::deque<double> loss_, grad_;
};

}  // namespace llmpi
