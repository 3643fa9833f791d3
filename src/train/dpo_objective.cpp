// The DPO objective on the engine (dpo_objective.h): pair sums, per-token scales, the
// reference pass and cache, steps and held-out metrics.
#include "train/dpo_objective.h"

#include <mpi.h>

#include <algorithm>
#include <cstdio>

#include "config/config_schema.h"
#include "core/error.h"
#include "jobs/run_control.h"
#include "parallel/communicator.h"
#include "train/lora_setup.h"

namespace llmpi {

std::vector<PairLogprobs> pair_logprobs(std::span<const double> token_losses,
                                        std::span<const int32_t> targets,
                                        std::span<const RowDocument> docs, int64_t T) {
  LLMPI_CHECK(token_losses.size() == targets.size(), token_losses.size(), " losses for ",
              targets.size(), " targets");
  auto answer_sum = [&](const RowDocument& d) {
    LLMPI_CHECK(d.begin >= 0 && d.begin + d.length <= T && (d.row + 1) * T <= int64_t(targets.size()),
                "document [", d.begin, ", +", d.length, ") of row ", d.row, " outside the batch");
    double s = 0;
    for (int64_t t = d.row * T + d.begin; t < d.row * T + d.begin + d.length; ++t)
      if (targets[size_t(t)] >= 0) s -= token_losses[size_t(t)];
    return s;
  };
  std::vector<PairLogprobs> out;
  for (size_t i = 0; i < docs.size(); i += 2) {
    // The pair rule: chosen then rejected, adjacent, of one unit, in one row.
    const bool whole = i + 1 < docs.size() && docs[i].chosen && !docs[i + 1].chosen &&
                       docs[i].unit == docs[i + 1].unit && docs[i].row == docs[i + 1].row;
    LLMPI_CHECK(whole, "preference pair ", docs[i].unit, " is not whole in row ", docs[i].row,
                " (a pair's chosen and rejected documents must share one row)");
    out.push_back({docs[i].unit, answer_sum(docs[i]), answer_sum(docs[i + 1]), int64_t(i)});
  }
  return out;
}

void pair_token_scales(std::span<const PairLogprobs> pairs, std::span<const DpoPairResult> results,
                       std::span<const RowDocument> docs, std::span<const int32_t> targets,
                       int64_t T, double inv_pairs, std::span<double> out) {
  LLMPI_CHECK(pairs.size() == results.size() && out.size() == targets.size(), "scales of ",
              pairs.size(), " pairs");
  std::fill(out.begin(), out.end(), 0.0);
  auto set = [&](const RowDocument& d, double s) {
    for (int64_t t = d.row * T + d.begin; t < d.row * T + d.begin + d.length; ++t)
      if (targets[size_t(t)] >= 0) out[size_t(t)] = s;
  };
  for (size_t k = 0; k < pairs.size(); ++k) {
    // π = −Σ CE, so ∂L/∂CE_t = −∂L/∂π of the token's answer; the step's loss is a mean.
    set(docs[size_t(pairs[k].first_doc)], -results[k].dpolicy_chosen * inv_pairs);
    set(docs[size_t(pairs[k].first_doc) + 1], -results[k].dpolicy_rejected * inv_pairs);
  }
}

DpoOptions dpo_options(const DpoSection& s) {
  DpoOptions o;
  o.beta = s.beta;
  o.type = s.loss == DpoLoss::ipo ? DpoLossType::ipo : DpoLossType::sigmoid;
  o.label_smoothing = s.label_smoothing;
  return o;
}

DpoObjective::DpoObjective(const Config& cfg, ParallelEngine& engine, Topology& topo,
                           const StepRows& rows, const StepRows* val_rows)
    : cfg_(cfg), engine_(engine), topo_(topo), rows_(rows), val_rows_(val_rows),
      opt_(dpo_options(cfg.dpo)) {
  LLMPI_CHECK(rows.pairs() && rows.sft() && (!val_rows || (val_rows->pairs() && val_rows->sft())),
              "DpoObjective over rows that are not preference pairs");
  const size_t n = size_t(cfg.parallel.micro_batches * cfg.train.batch_size * cfg.train.seq_len);
  ids_.resize(n);
  targets_.resize(n);
  docs_.resize(n);
  scales_.resize(n);
}

namespace {

// With LoRA: the frozen base by source and checksum; an NF4 base by its tp too (each rank
// quantises its own slab, so the dequantised weights depend on parallel.tp).
std::string lora_reference(const Config& cfg, const ParallelEngine& engine) {
  char sum[24];
  std::snprintf(sum, sizeof sum, "0x%016llx", (unsigned long long)engine.frozen_base()->checksum());
  return "LoRA base " + lora_base_source(cfg) + " (checksum " + sum +
         (cfg.lora.nf4_base() ? ", NF4 per slab of tp " + std::to_string(cfg.parallel.tp) : "") +
         "), adapters disabled";
}

// Runs the model without its adapters while alive (nothing without LoRA).
class AdaptersDisabled {
 public:
  explicit AdaptersDisabled(ParallelEngine& e) : e_(e.frozen_base() ? &e : nullptr) {
    if (e_) e_->set_adapters_enabled(false);
  }
  ~AdaptersDisabled() {
    if (e_) e_->set_adapters_enabled(true);
  }
  AdaptersDisabled(const AdaptersDisabled&) = delete;
  AdaptersDisabled& operator=(const AdaptersDisabled&) = delete;

 private:
  ParallelEngine* e_;
};

}  // namespace

std::vector<ReferenceSplit> DpoObjective::wanted_splits() const {
  ReferenceKey base;
  base.reference = engine_.frozen_base() ? lora_reference(cfg_, engine_)
                   : cfg_.train.init_from.empty()
                       ? "seeded init (seed " + std::to_string(cfg_.train.seed) + ")"
                       : "init_from = " + cfg_.train.init_from;
  std::string model;
  for (const config::ConfigKey& k : config::config_keys())
    if (k.section == "model") model += std::string(k.name) + " = " + config::value_text(cfg_, k) + "\n";
  base.model = model;
  std::vector<ReferenceSplit> out;
  auto add = [&](const std::string& name, const StepRows& r) {
    ReferenceSplit s{name, base, {}};
    s.key.data_hash = r.sft()->dataset().content_hash();
    s.key.tokens = r.sft()->dataset().size();
    s.key.pairs = r.sft()->n_units();
    out.push_back(std::move(s));
  };
  add("train", rows_);
  if (val_rows_) add("val", *val_rows_);
  return out;
}

std::vector<double> DpoObjective::token_losses(std::span<const int32_t> ids,
                                               std::span<const int32_t> targets,
                                               std::span<const int32_t> docs) {
  std::vector<double> tl;
  engine_.eval(ids, targets, docs, &tl);
  return tl;
}

DpoSums DpoObjective::allreduce_dp(const DpoSums& s) const {
  double v[6] = {s.loss, s.chosen_reward, s.rejected_reward, s.margin, double(s.correct),
                 double(s.pairs)};
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, v, 6, MPI_DOUBLE, MPI_SUM,
                          topo_.communicator(Axis::dp).get()),
            "MPI_Allreduce");
  DpoSums r;
  r.loss = v[0];
  r.chosen_reward = v[1];
  r.rejected_reward = v[2];
  r.margin = v[3];
  r.correct = int64_t(v[4]);  // exact below 2^53
  r.pairs = int64_t(v[5]);
  return r;
}

namespace {

// Every row of `rows` once, in batches of B rows split over the dp group: batch k on dp rank
// k mod dp; a rank without a batch in the last round evaluates batch 0 and ignores it (the
// forward passes are collective within ZeRO-3 and over tp/pp). f(pairs) gets the pairs of
// this rank's real batches. With `control`, every rank asks it before each round whether a
// stop is requested: false, the remaining rounds skipped (on every rank alike); true when all
// rounds ran.
template <class Eval, class F>
bool each_pair_batch(const SftLoader& s, int64_t B, int dp, int dp_rank, Eval&& eval, F&& f,
                     const std::function<void(int64_t, int64_t)>& progress,
                     const RunControl* control) {
  const int64_t T = s.seq_len(), n = s.n_rows(), batches = (n + B - 1) / B;
  // The same on every rank of the world (n, B and dp are), so stop_requested() below, a
  // collective over the world, is called the same number of times on every rank.
  const int64_t rounds = (batches + dp - 1) / dp;
  std::vector<int32_t> ids(size_t(B * T)), targets(ids.size()), docs(ids.size());
  std::vector<RowDocument> row_docs;
  for (int64_t r = 0; r < rounds; ++r) {
    if (control && control->stop_requested()) return false;  // collective, once per round
    const int64_t k = r * dp + dp_rank;
    const bool real = k < batches;
    row_docs.clear();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = (real ? k : 0) * B + b;
      const bool counted = real && row < n;
      s.fill_row(row < n ? row : 0, ids.data() + b * T, targets.data() + b * T,
                 docs.data() + b * T, counted ? &row_docs : nullptr, b);
    }
    const std::vector<double> tl = eval(ids, targets, docs);
    if (real) f(pair_logprobs(tl, targets, row_docs, T));
    if (progress) progress(r + 1, rounds);
  }
  return true;
}

}  // namespace

std::optional<std::vector<double>> DpoObjective::compute_reference(
    const StepRows& rows, const std::string& split,
    const std::function<void(const std::string&)>& report, const RunControl* control) {
  const SftLoader& s = *rows.sft();
  std::vector<double> out(size_t(2 * s.n_units()), 0.0);
  const AdaptersDisabled reference(engine_);  // LoRA: the reference model is the frozen base
  int64_t every = 0;
  const bool complete = each_pair_batch(
      s, cfg_.train.batch_size, topo_.layout().dp, topo_.dp_rank(),
      [&](auto& i, auto& t, auto& d) { return token_losses(i, t, d); },
      [&](const std::vector<PairLogprobs>& pairs) {
        for (const PairLogprobs& p : pairs) {
          out[size_t(2 * p.unit)] = p.chosen;
          out[size_t(2 * p.unit + 1)] = p.rejected;
        }
      },
      [&](int64_t r, int64_t rounds) {
        if (every == 0) every = std::max<int64_t>(1, rounds / 10);
        if (r % every == 0 || r == rounds)
          report("reference log-probs (" + split + "): " + std::to_string(r) + "/" +
                 std::to_string(rounds) + " batches per data-parallel rank");
      },
      control);
  if (!complete) {  // every rank alike (the stop is agreed)
    report("reference log-probs (" + split + "): cut short by a stop request (nothing cached)");
    return std::nullopt;
  }
  // Each pair was computed by exactly one dp rank (zeros elsewhere).
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, out.data(), int(out.size()), MPI_DOUBLE, MPI_SUM,
                          topo_.communicator(Axis::dp).get()),
            "MPI_Allreduce");
  return out;
}

bool DpoObjective::prepare(const std::string& cache_path, int64_t start_step,
                           const std::function<void(const std::string&)>& report,
                           const RunControl* control) {
  std::vector<ReferenceSplit> want = wanted_splits();
  // Every rank reads the small file itself, so all take the same branch.
  std::string why;
  std::optional<std::vector<ReferenceSplit>> cached = read_reference_cache(cache_path, want, why);
  int ok = cached ? 1 : 0, all = 0;
  check_mpi(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, topo_.world_communicator().get()),
            "MPI_Allreduce");
  if (all) {
    ref_train_ = (*cached)[0].logprobs;
    if (val_rows_) ref_val_ = (*cached)[1].logprobs;
    report("reference log-probs: reusing " + cache_path + " (" + std::to_string(want[0].key.pairs) +
           " train pairs" + (val_rows_ ? ", " + std::to_string(want[1].key.pairs) + " val pairs" : "") +
           ")");
    return true;
  }
  // Without adapters the reference model (the initial weights) is gone once a step has run;
  // with LoRA it is the frozen base, in memory at any step.
  if (start_step > 0 && !engine_.frozen_base())
    user_error(cache_path, ": the DPO reference log-probs cannot be used (", why,
               ") and this run continues from step ", start_step,
               ", so the reference model (the initial weights) is no longer in memory; restore "
               "the cache of this run, or start the run afresh (--no-resume) to recompute it");
  if (why != "no cache file") report("reference log-probs: recomputing: the cache is stale (" + why + ")");
  if (engine_.frozen_base()) report("reference log-probs: the LoRA base with its adapters disabled");
  std::optional<std::vector<double>> train = compute_reference(rows_, "train", report, control);
  if (!train) return false;
  std::optional<std::vector<double>> val;
  if (val_rows_) {
    val = compute_reference(*val_rows_, "val", report, control);
    if (!val) return false;
  }
  ref_train_ = std::move(*train);
  want[0].logprobs = ref_train_;
  if (val) {
    ref_val_ = std::move(*val);
    want[1].logprobs = ref_val_;
  }
  if (topo_.rank() == 0) write_reference_cache(cache_path, want);
  check_mpi(MPI_Barrier(topo_.world_communicator().get()), "MPI_Barrier");
  report("reference log-probs: written to " + cache_path);
  return true;
}

DpoBatch DpoObjective::stage(int64_t step, const BatchLayout& layout) {
  const int64_t T = cfg_.train.seq_len, N = layout.batch_size * T, M = layout.micro_batches;
  std::vector<std::vector<RowDocument>> docs(static_cast<size_t>(M));
  std::vector<std::vector<PairLogprobs>> pairs(static_cast<size_t>(M));
  int64_t local = 0;
  for (int64_t m = 0; m < M; ++m) {
    rows_.fill(step, m, topo_.dp_rank(), layout, ids_.data() + m * N, targets_.data() + m * N,
               docs_.data() + m * N, &docs[size_t(m)]);
    const auto ids = std::span<const int32_t>(ids_).subspan(size_t(m * N), size_t(N));
    const auto tg = std::span<const int32_t>(targets_).subspan(size_t(m * N), size_t(N));
    const auto dc = std::span<const int32_t>(docs_).subspan(size_t(m * N), size_t(N));
    pairs[size_t(m)] = pair_logprobs(token_losses(ids, tg, dc), tg, docs[size_t(m)], T);
    local += int64_t(pairs[size_t(m)].size());
  }
  DpoSums count;
  count.pairs = local;
  const int64_t P = allreduce_dp(count).pairs;
  LLMPI_CHECK(P > 0, "a DPO step without pairs");
  DpoSums mine;
  for (int64_t m = 0; m < M; ++m) {
    std::vector<DpoPairResult> res;
    for (const PairLogprobs& p : pairs[size_t(m)]) {
      const DpoPair in{p.chosen, p.rejected, ref_train_[size_t(2 * p.unit)],
                       ref_train_[size_t(2 * p.unit + 1)]};
      res.push_back(dpo_pair(opt_, in));
      mine.add(res.back());
    }
    pair_token_scales(pairs[size_t(m)], res, docs[size_t(m)],
                      std::span<const int32_t>(targets_).subspan(size_t(m * N), size_t(N)), T,
                      1.0 / double(P), std::span<double>(scales_).subspan(size_t(m * N), size_t(N)));
  }
  return DpoBatch{ids_, targets_, docs_, scales_, allreduce_dp(mine)};
}

std::optional<DpoSums> DpoObjective::validate(const RunControl* control) {
  LLMPI_CHECK(val_rows_, "DPO validation without validation data");
  DpoSums mine;
  const bool complete = each_pair_batch(
      *val_rows_->sft(), cfg_.train.batch_size, topo_.layout().dp, topo_.dp_rank(),
      [&](auto& i, auto& t, auto& d) { return token_losses(i, t, d); },
      [&](const std::vector<PairLogprobs>& pairs) {
        for (const PairLogprobs& p : pairs)
          mine.add(dpo_pair(opt_, {p.chosen, p.rejected, ref_val_[size_t(2 * p.unit)],
                                   ref_val_[size_t(2 * p.unit + 1)]}));
      },
      nullptr, control);
  if (!complete) return std::nullopt;  // every rank alike (the stop is agreed)
  return allreduce_dp(mine);
}

}  // namespace llmpi
