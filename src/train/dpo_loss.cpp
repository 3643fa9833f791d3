// DPO loss variants, rewards and gradients (dpo_loss.h).
#include "train/dpo_loss.h"

#include <cmath>

#include "core/error.h"

namespace llmpi {

const char* dpo_loss_name(DpoLossType t) {
  return t == DpoLossType::ipo ? "ipo" : "sigmoid";
}

bool parse_dpo_loss(const std::string& s, DpoLossType& out) {
  if (s == "sigmoid") out = DpoLossType::sigmoid;
  else if (s == "ipo") out = DpoLossType::ipo;
  else return false;
  return true;
}

double log_sigmoid(double x) {
  // log σ(x) = −softplus(−x) = min(x, 0) − log1p(e^{−|x|}).
  return std::min(x, 0.0) - std::log1p(std::exp(-std::fabs(x)));
}

namespace {

double sigmoid(double x) {
  return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
}

}  // namespace

DpoPairResult dpo_pair(const DpoOptions& o, const DpoPair& p) {
  LLMPI_CHECK(o.beta > 0 && std::isfinite(o.beta), "DPO beta ", o.beta);
  LLMPI_CHECK(o.label_smoothing >= 0 && o.label_smoothing < 0.5, "DPO label smoothing ",
              o.label_smoothing);
  LLMPI_CHECK(o.type == DpoLossType::sigmoid || o.label_smoothing == 0,
              "label smoothing applies to the sigmoid loss only");
  const double dc = p.policy_chosen - p.ref_chosen, dr = p.policy_rejected - p.ref_rejected;
  const double h = dc - dr, bh = o.beta * h, eps = o.label_smoothing;
  DpoPairResult r;
  r.chosen_reward = o.beta * dc;
  r.rejected_reward = o.beta * dr;
  double dh = 0;
  if (o.type == DpoLossType::sigmoid) {
    r.loss = -(1 - eps) * log_sigmoid(bh) - eps * log_sigmoid(-bh);
    dh = o.beta * (eps * sigmoid(bh) - (1 - eps) * sigmoid(-bh));
  } else {
    const double d = h - 1.0 / (2.0 * o.beta);
    r.loss = d * d;
    dh = 2.0 * d;
  }
  r.dpolicy_chosen = dh;
  r.dpolicy_rejected = -dh;
  return r;
}

void DpoSums::add(const DpoPairResult& r) {
  loss += r.loss;
  chosen_reward += r.chosen_reward;
  rejected_reward += r.rejected_reward;
  margin += r.chosen_reward - r.rejected_reward;
  correct += r.chosen_reward > r.rejected_reward;
  ++pairs;
}

void DpoSums::add(const DpoSums& s) {
  loss += s.loss;
  chosen_reward += s.chosen_reward;
  rejected_reward += s.rejected_reward;
  margin += s.margin;
  correct += s.correct;
  pairs += s.pairs;
}

}  // namespace llmpi
