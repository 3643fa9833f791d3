#pragma once
// DpoObjective: [train] objective = "dpo" (Rafailov et al., 2023) on the ParallelEngine.
// The pair rule (checked in one place, pair_logprobs): a preference pair's two documents —
// chosen, then rejected — lie in ONE row (SftLoader keeps a pair as one unit), so a pair never
// spans rows, micro-batches, data-parallel ranks or pipeline micro-batches, and its loss needs
// only its own row's forward pass. Tensor and pipeline ranks of one replica see the same row.
// One step (per dp rank; M micro-batches of B rows):
//   1. forward only per micro-batch (engine.eval with per-token losses): the policy sums
//      π_c, π_r = −Σ cross-entropy over each answer's counted targets (its completion tokens);
//   2. ρ_c, ρ_r from the reference cache (train/reference_logprobs.h), dpo_pair → L, ∂L/∂π;
//   3. the engine's step with per-token scales (by the trainer): token t of answer a gets −(∂L/∂π_a) / P (P = pairs
//      of the global step, so the step's loss is the mean over its pairs; π = −Σ CE);
//   4. the step's DpoSums summed over the dp group (every rank logs the global means).
// Cost: one extra forward pass per micro-batch beside the training forward/backward.
// Stop requests: the reference pass and the validation ask the run control before each round
// of batches (each_pair_batch in dpo_objective.cpp) and are cut short on a stop, every rank after
// the same round: rounds are counted alike on every rank, so stop_requested() (collective) is
// called the same number of times everywhere.
// Reference sums: computed once (prepare) with the model as it is before the first step,
// each dp rank taking every dp-th batch of rows, and cached; a resumed run reuses the cache
// and refuses a missing or stale one (the initial weights are gone by then). With LoRA the
// reference is the frozen base (the engine with its adapters disabled), keyed on the base's
// source and checksum: a missing or stale cache is recomputed at any step, a resume included.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/sft_loader.h"
#include "parallel/engine.h"
#include "parallel/topology.h"
#include "train/dpo_loss.h"
#include "train/reference_logprobs.h"
#include "train/step_rows.h"

namespace llmpi {

class RunControl;

// A pair's log-probability sums in a batch: unit = the pair's index in its data split.
struct PairLogprobs {
  int64_t unit = 0;
  double chosen = 0, rejected = 0;
  int64_t first_doc = 0;  // index of its chosen document in the batch's RowDocument list
};

// The pairs of a batch of rows of T tokens from per-token losses and targets ([rows·T]) and
// the rows' documents (in row order, each pair's chosen document right before its rejected
// one in the same row). InternalError when the pair rule is broken.
std::vector<PairLogprobs> pair_logprobs(std::span<const double> token_losses,
                                        std::span<const int32_t> targets,
                                        std::span<const RowDocument> docs, int64_t T);

// out[t] = d(loss)/d(cross-entropy of token t) for the counted targets of each pair's two
// answers: −dpolicy_chosen · inv_pairs and −dpolicy_rejected · inv_pairs; 0 elsewhere.
void pair_token_scales(std::span<const PairLogprobs> pairs, std::span<const DpoPairResult> results,
                       std::span<const RowDocument> docs, std::span<const int32_t> targets,
                       int64_t T, double inv_pairs, std::span<double> out);

DpoOptions dpo_options(const DpoSection& s);

// One staged DPO step: the rows to train on with their per-token loss scales (views of the
// objective's buffers, valid until the next stage()), and the step's sums over the global step.
struct DpoBatch {
  std::span<const int32_t> ids, targets, docs;  // [M · B·T]
  std::span<const double> scales;               // [M · B·T]
  DpoSums sums;
};

class DpoObjective {
 public:
  // rows / val_rows: the trainer's (objective dpo); val_rows may be null. Not owned.
  DpoObjective(const Config& cfg, ParallelEngine& engine, Topology& topo, const StepRows& rows,
               const StepRows* val_rows);

  // Collective: the reference sums of every split, from the cache at `cache_path` when it is
  // valid, else (start_step = 0: the initial weights; any step with LoRA: the base) computed
  // now and written; a run without adapters past step 0 (resumed) with a missing or stale
  // cache is a UserError saying why. report: rank 0's progress lines. With `control` (may be
  // null), a stop request cuts the computation short: false, nothing cached or written, and no
  // step can run; true when the sums are ready.
  [[nodiscard]] bool prepare(const std::string& cache_path, int64_t start_step,
                             const std::function<void(const std::string&)>& report,
                             const RunControl* control = nullptr);

  // Collective: steps 1, 2 and 4 above for 0-based data step `step`; the caller runs step 3
  // (engine.compute(ids, targets, docs, scales), then apply or not: the spike policy decides)
  // and reports sums.mean_loss() as the step's loss.
  DpoBatch stage(int64_t step, const BatchLayout& layout);
  // Collective: the DPO metrics over every held-out pair, each once; nullopt when a stop
  // request (`control`, may be null) cut the pass short.
  std::optional<DpoSums> validate(const RunControl* control = nullptr);

  // The keys of the splits (reference model, data identity).
  std::vector<ReferenceSplit> wanted_splits() const;

 private:
  // Per-token losses of one micro-batch of B rows (forward only).
  std::vector<double> token_losses(std::span<const int32_t> ids, std::span<const int32_t> targets,
                                   std::span<const int32_t> docs);
  // The reference sums of every pair of `rows`, computed with the current model; nullopt
  // when a stop request cut the pass short.
  std::optional<std::vector<double>> compute_reference(
      const StepRows& rows, const std::string& split,
      const std::function<void(const std::string&)>& report, const RunControl* control);
  DpoSums allreduce_dp(const DpoSums& s) const;

  const Config& cfg_;
  ParallelEngine& engine_;
  Topology& topo_;
  const StepRows& rows_;
  const StepRows* val_rows_;
  DpoOptions opt_;
  std::vector<double> ref_train_, ref_val_;  // [pairs · 2]
  std::vector<int32_t> ids_, targets_, docs_;   // [M · B·T]
  std::vector<double> scales_;                  // [M · B·T]
};

}  // namespace llmpi
