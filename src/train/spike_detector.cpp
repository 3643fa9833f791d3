#include "train/spike_detector.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace llmpi {

SpikeDetector::SpikeDetector(SpikeOptions opt) : opt_(opt) {
  LLMPI_CHECK(opt_.window >= 1 && opt_.warmup >= 1 && opt_.warmup <= opt_.window,
              "spike detector: window ", opt_.window, ", warmup ", opt_.warmup);
}

double SpikeDetector::z(const std::deque<double>& h, double x) const {
  if (int64_t(h.size()) < opt_.warmup) return std::numeric_limits<double>::quiet_NaN();
  double mean = 0.0;
  for (double v : h) mean += v;
  mean /= double(h.size());
  double var = 0.0;
  for (double v : h) var += (v - mean) * (v - mean);
  const double sd = std::sqrt(var / double(h.size()));
  const double floor = kStdFloor * std::fabs(mean);
  const double scale = std::max(sd, floor);
  if (scale <= 0.0) return x > mean ? std::numeric_limits<double>::infinity() : 0.0;
  return (x - mean) / scale;
}

SpikeVerdict SpikeDetector::check(double loss, double grad_norm) const {
  SpikeVerdict v;
  if (!std::isfinite(loss) || !std::isfinite(grad_norm)) {
    v.spike = v.nonfinite = true;
    v.loss_z = v.grad_z = std::numeric_limits<double>::quiet_NaN();
    return v;
  }
  v.loss_z = z(loss_, loss);
  v.grad_z = z(grad_, grad_norm);
  v.spike = v.loss_z > opt_.threshold || v.grad_z > opt_.threshold;  // NaN compares false
  return v;
}

void SpikeDetector::accept(double loss, double grad_norm) {
  LLMPI_CHECK(std::isfinite(loss) && std::isfinite(grad_norm), "a non-finite value entered the spike window");
  loss_.push_back(loss);
  grad_.push_back(grad_norm);
  while (int64_t(loss_.size()) > opt_.window) {
    loss_.pop_front();
    grad_.pop_front();
  }
}

void SpikeDetector::restore(const std::vector<double>& loss, const std::vector<double>& grad) {
  LLMPI_CHECK(loss.size() == grad.size(), "spike history: ", loss.size(), " losses, ", grad.size(),
              " gradient norms");
  loss_.clear();
  grad_.clear();
  for (size_t i = 0; i < loss.size(); ++i) accept(loss[i], grad[i]);
}

}  // namespace llmpi
