#pragma once
// DPO loss (Rafailov et al., 2023) and its variants, from log-probability sums: for a pair
// (prompt x, chosen y_c, rejected y_r), π_c = Σ log π_θ(y_c,t | x, y_c,<t) over the chosen
// completion's tokens only (prompt tokens excluded), π_r likewise, and ρ_c, ρ_r the same sums
// under the frozen reference model. With the log-ratio margin
//   h = (π_c − ρ_c) − (π_r − ρ_r)
// the per-pair losses are
//   sigmoid (default):        L = −(1 − ε) log σ(β h) − ε log σ(−β h)
//                             (ε = label_smoothing > 0: conservative DPO, labels flipped with
//                             probability ε; ε = 0: the original DPO loss)
//   ipo (Azar et al., 2023):  L = (h − 1/(2β))²   (on the same sums)
// Rewards: r_c = β (π_c − ρ_c), r_r = β (π_r − ρ_r); margin r_c − r_r = β h; a pair is
// "correct" when r_c > r_r. Gradients w.r.t. the policy sums: ∂L/∂π_c = L'(h), ∂L/∂π_r =
// −L'(h) with L'(h) = β[ε σ(β h) − (1 − ε) σ(−β h)] (sigmoid) or 2(h − 1/(2β)) (ipo). The
// engine turns them into per-token cross-entropy scales (π is −Σ token cross-entropy).
// A step's loss is the mean over the pairs of the global step; DpoSums add across ranks.
#include <cstdint>
#include <span>
#include <string>

namespace llmpi {

enum class DpoLossType : uint8_t { sigmoid, ipo };
const char* dpo_loss_name(DpoLossType t);
// "sigmoid" | "ipo"; false for anything else.
bool parse_dpo_loss(const std::string& s, DpoLossType& out);

struct DpoOptions {
  double beta = 0.1;             // > 0
  DpoLossType type = DpoLossType::sigmoid;
  double label_smoothing = 0.0;  // ε in [0, 0.5); sigmoid only
};

// Log-probability sums over the completion tokens of one pair.
struct DpoPair {
  double policy_chosen = 0, policy_rejected = 0;
  double ref_chosen = 0, ref_rejected = 0;
};

struct DpoPairResult {
  double loss = 0;
  double chosen_reward = 0, rejected_reward = 0;
  double dpolicy_chosen = 0, dpolicy_rejected = 0;  // ∂loss/∂π_c, ∂loss/∂π_r
};

// InternalError for options outside their ranges (config checks report them to the user).
DpoPairResult dpo_pair(const DpoOptions& o, const DpoPair& p);

// Sums over pairs (of a micro-batch, a rank, a step) for the logged means.
struct DpoSums {
  double loss = 0, chosen_reward = 0, rejected_reward = 0, margin = 0;
  int64_t correct = 0, pairs = 0;

  void add(const DpoPairResult& r);
  void add(const DpoSums& s);
  double mean_loss() const { return pairs ? loss / double(pairs) : 0.0; }
  double mean_chosen_reward() const { return pairs ? chosen_reward / double(pairs) : 0.0; }
  double mean_rejected_reward() const { return pairs ? rejected_reward / double(pairs) : 0.0; }
  double mean_margin() const { return pairs ? margin / double(pairs) : 0.0; }
  double accuracy() const { return pairs ? double(correct) / double(pairs) : 0.0; }
};

// log σ(x), stable for any finite x.
double log_sigmoid(double x);

}  // namespace llmpi
