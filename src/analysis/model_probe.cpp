#include "analysis/model_probe.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <set>

#include "analysis/rank_gather.h"
#include "config/config.h"
#include "core/error.h"
#include "data/batch_loader.h"
#include "data/token_dataset.h"
#include "io/model_file.h"
#include "io/stored_model.h"
#include "model/param_layout.h"
#include "model/param_store.h"
#include "model/transformer.h"
#include "parallel/communicator.h"
#include "train/evaluate.h"
#include "train/step_rows.h"
#include "train/paths.h"

namespace llmpi {

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// The probe sequences of the sampled training rows, each as many tokens as the run's data
// gives it (at most `n_tokens`):
//   lm        the sample's T + 1 tokens (ids, then the last target);
//   sft, dpo  the row's first document (for DPO the pair's chosen answer) — a fine-tuning row
//             is whole documents packed and padded, so its ids past the first document are
//             another record or padding.
// The indices are the data→checkpoint map's: samples for lm, rows (StepRows) otherwise; one
// outside `data` is a UserError (another dataset than the run's).
std::vector<std::vector<int32_t>> probe_sequences(const Config& cfg, const TokenDataset& data,
                                                  const std::vector<int64_t>& samples, int64_t n_tokens) {
  const int64_t T = cfg.train.seq_len;
  const bool lm = cfg.train.objective == Objective::lm;
  std::optional<StepRows> rows;
  if (!lm) rows.emplace(cfg, data);
  const int64_t n = lm ? count_samples(data, T) : rows->n_rows();
  for (int64_t s : samples)
    if (s < 0 || s >= n)
      user_error(lm ? "sample " : "row ", s, " of the data→checkpoint map is outside the ", n,
                 lm ? " samples of " : " rows of ", data.describe(), " (another dataset than the run's?)");
  std::vector<std::vector<int32_t>> out;
  std::vector<int32_t> in(static_cast<size_t>(T)), tg(static_cast<size_t>(T)), starts(static_cast<size_t>(T));
  if (lm) {
    for (int64_t s : samples) {
      read_sample(data, T, s, in.data(), tg.data());
      std::vector<int32_t> seq(in.begin(), in.end());
      seq.push_back(tg.back());
      seq.resize(size_t(std::min<int64_t>(n_tokens, T + 1)));
      out.push_back(std::move(seq));
    }
    return out;
  }
  std::vector<RowDocument> docs;
  for (int64_t s : samples) {
    docs.clear();
    rows->sft()->fill_row(s, in.data(), tg.data(), starts.data(), &docs);
    LLMPI_CHECK(!docs.empty(), "fine-tuning row ", s, " holds no document");
    const RowDocument& d = docs.front();
    const int64_t n = std::min(d.length, n_tokens);
    out.emplace_back(in.begin() + d.begin, in.begin() + d.begin + n);
  }
  return out;
}

}  // namespace

ProbeResults probe_checkpoints(const CheckpointSeries& series, const ProbeOptions& opt, Backend& be,
                               MPI_Comm comm, const Progress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const int rank = comm_rank(comm), size = comm_size(comm);
  ProbeResults r;
  const int64_t C = int64_t(series.checkpoints.size());
  if (C == 0) return r;
  for (const SeriesCheckpoint& c : series.checkpoints) r.steps.push_back(c.step);
  const SeriesCheckpoint& last = series.checkpoints.back();
  const Config cfg = parse_config(last.config_toml, last.path + " (stored config)");
  const int64_t T = cfg.train.seq_len, B = cfg.train.batch_size;
  const int64_t half = std::min(T + 1, cfg.model.max_seq_len) / 2;
  r.prompt = r.continuation = std::min<int64_t>(32, half);

  // Samples from the data→checkpoint map, each under the first checkpoint that recorded it.
  std::set<int64_t> seen;
  for (int64_t i = 0; i < C; ++i)
    for (int64_t s : series.checkpoints[size_t(i)].probe_samples)
      if (seen.insert(s).second) {
        r.samples.push_back(s);
        r.sample_checkpoint.push_back(i);
        r.sample_step.push_back(series.checkpoints[size_t(i)].step);
      }
  std::vector<std::string> notes;
  std::vector<std::vector<int32_t>> sequences;
  bool memo = opt.memorization && !r.samples.empty() && r.prompt >= 1;
  if (opt.memorization && r.samples.empty())
    notes.push_back("memorization: the checkpoints record no training samples (no data→checkpoint map)");
  // The probes' model is sized from the stored config, trusted only once it describes the
  // file's tensors (io/stored_model.h): one edited to 2,000,000 layers was allocated as such.
  bool model_trusted = true;
  if (memo || !opt.eval_data.empty()) {
    try {
      check_stored_model(last.path);
    } catch (const UserError& e) {
      notes.push_back(std::string("model probes (memorization, loss over checkpoints) skipped: ") + e.what());
      memo = false;
      model_trusted = false;
    }
  }
  if (memo) {
    const std::string pattern = opt.train_data.empty() ? cfg.data.train : opt.train_data;
    try {
      TokenDataset train(expand_data_paths(pattern, opt.train_data.empty() ? "data.train (of the run's config)" : "--train-data"),
                         cfg.model.vocab_size);
      sequences = probe_sequences(cfg, train, r.samples, r.prompt + r.continuation);
      // Fine-tuning documents may be shorter than P + K: P = K = half the shortest one probed.
      int64_t shortest = r.prompt + r.continuation;
      for (const auto& q : sequences) shortest = std::min<int64_t>(shortest, int64_t(q.size()));
      if (shortest / 2 < r.prompt) {
        r.prompt = r.continuation = shortest / 2;
        notes.push_back("memorization: prompt and continuation of " + std::to_string(r.prompt) +
                        " tokens each, half the shortest probed document");
      }
      if (r.prompt < 1) user_error("a probed document has fewer than 2 tokens");
      for (auto& q : sequences) q.resize(size_t(r.prompt + r.continuation));
    } catch (const UserError& e) {
      memo = false;
      notes.push_back(std::string("memorization skipped: ") + e.what() + " (give the run's training shards with --train-data)");
    }
  }
  std::optional<TokenDataset> eval_data;
  std::optional<StepRows> eval_rows;
  int64_t eval_batches = 0;
  if (!opt.eval_data.empty() && model_trusted) {
    try {
      eval_data.emplace(expand_data_paths(opt.eval_data, "--eval"), cfg.model.vocab_size);
      eval_rows.emplace(StepRows::for_eval(cfg, *eval_data));
      const int64_t all = (eval_rows->n_rows() + B - 1) / B;
      eval_batches = opt.eval_batches > 0 ? std::min(opt.eval_batches, all) : all;
      r.eval_description = eval_data->describe();
    } catch (const UserError& e) {
      notes.push_back(std::string("loss over checkpoints skipped: ") + e.what());
      eval_rows.reset();
    }
  }

  int64_t a = 0, b = 0;
  block_of(C, rank, size, a, b);
  const size_t S = r.samples.size();
  std::vector<double> loss(size_t(b - a), kNaN), scores(size_t(b - a) * S, kNaN);
  int64_t eval_tokens = 0;
  if ((memo || eval_rows) && b > a) {
    const StageRange range = StageRange::full(cfg.model);
    ParamStore store(be, transformer_params(cfg.model, range), DType::f32);
    Transformer model(cfg.model, range, store);
    for (int64_t i = a; i < b; ++i) {
      const SeriesCheckpoint& c = series.checkpoints[size_t(i)];
      if (progress && rank == 0)
        progress("model probes: checkpoint " + std::to_string(i - a + 1) + "/" + std::to_string(b - a) +
                 " of this rank (step " + std::to_string(c.step) + ")");
      try {
        load_model_params(c.path, MPI_COMM_NULL, be, store, /*verify=*/true);
      } catch (const UserError& e) {
        notes.push_back(std::string("model probes skipped for ") + c.path + ": " + e.what());
        continue;
      }
      store.refresh_compute(be);
      if (eval_rows) {
        const LossSum ls = evaluate_loss(model, be, *eval_rows, T, B, eval_batches);
        loss[size_t(i - a)] = ls.count ? ls.sum / double(ls.count) : kNaN;
        eval_tokens = ls.count;
      }
      if (memo) {
        const std::vector<double> m = greedy_match(model, be, sequences, r.prompt, r.continuation, B);
        std::copy(m.begin(), m.end(), scores.begin() + (i - a) * int64_t(S));
      }
    }
  }
  gather_rows(loss, comm);
  gather_rows(scores, comm);
  int64_t tokens = eval_tokens;
  check_mpi(MPI_Allreduce(&eval_tokens, &tokens, 1, MPI_INT64_T, MPI_MAX, comm), "MPI_Allreduce");
  const std::vector<std::string> all_notes = gather_strings(notes, comm);
  if (rank == 0) {
    r.eval_loss = loss;
    r.memorization = scores;
    r.eval_tokens = tokens;
    std::set<std::string> unique;
    for (const std::string& n : all_notes)
      if (unique.insert(n).second) r.notes.push_back(n);
    if (!eval_rows) r.eval_loss.assign(size_t(C), kNaN);
    if (!memo) r.memorization.assign(size_t(C) * S, kNaN);
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  check_mpi(MPI_Reduce(&secs, &r.seconds, 1, MPI_DOUBLE, MPI_MAX, 0, comm), "MPI_Reduce");
  return r;
}

}  // namespace llmpi
