#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>

#include "io/model_file.h"
#include "model/param_layout.h"
#include "optim/grad_clip.h"
#include "train/paths.h"
#include "train/unigram.h"

namespace llmpi {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> data_paths(const std::string& pattern, const std::string& key) {
  return expand_data_paths(pattern, key);
}

std::string hms(double seconds) {
  const int64_t s = int64_t(std::llround(std::max(0.0, seconds)));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600),
                  (long long)(s / 60 % 60), (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

}  // namespace

Trainer::Trainer(const Config& cfg, Backend& be, MPI_Comm comm, std::ostream& out)
    : Trainer(cfg, be, std::make_unique<Topology>(cfg, comm), nullptr, out) {}

Trainer::Trainer(const Config& cfg, Backend& be, Topology& topo, std::ostream& out)
    : Trainer(cfg, be, nullptr, &topo, out) {}

Trainer::Trainer(const Config& cfg, Backend& be, std::unique_ptr<Topology> owned, Topology* topo,
                 std::ostream& out)
    : own_topo_(std::move(owned)),
      topo_(topo ? *topo : *own_topo_),
      cfg_(cfg),
      be_(be),
      comm_(topo_.world_communicator().get()),
      out_(out),
      train_data_(data_paths(cfg.data.train, "data.train"), cfg.model.vocab_size),
      loader_(train_data_, cfg.train.seq_len, cfg.train.seed),
      schedule_(LrSchedule::from(cfg.train)) {
  rank_ = topo_.rank();
  if (!cfg.data.val.empty()) {
    val_data_.emplace(data_paths(cfg.data.val, "data.val"), cfg.model.vocab_size);
    val_loader_.emplace(*val_data_, cfg.train.seq_len);
  }
  layout_.batch_size = cfg.train.batch_size;
  layout_.micro_batches = cfg.parallel.micro_batches;
  layout_.dp_size = topo_.layout().dp;
  engine_ = std::make_unique<ParallelEngine>(cfg, topo_, be_);
  const int64_t B = cfg.train.batch_size, T = cfg.train.seq_len;
  host_ids_.resize(size_t(layout_.micro_batches * B * T));
  host_targets_.resize(host_ids_.size());
}

Trainer::~Trainer() = default;

StepRecord Trainer::train_step(int64_t step) {
  const int64_t N = cfg_.train.batch_size * cfg_.train.seq_len;
  for (int64_t m = 0; m < layout_.micro_batches; ++m)
    loader_.fill(step - 1, m, topo_.dp_rank(), layout_, host_ids_.data() + m * N,
                 host_targets_.data() + m * N);
  StepRecord r;
  r.step = step;
  r.lr = schedule_.at(step);
  const StepStats s = engine_->step(host_ids_, host_targets_, r.lr);
  r.loss = s.loss;
  r.grad_norm = s.grad_norm;
  r.skipped = !s.applied;  // the weights are kept; the step counter still advances
  return r;
}

double Trainer::validate(int64_t batches) {
  LLMPI_CHECK(val_loader_.has_value(), "validate() without validation data");
  const int64_t B = cfg_.train.batch_size, T = cfg_.train.seq_len, N = B * T;
  std::vector<int32_t> ids(static_cast<size_t>(N)), targets(static_cast<size_t>(N));
  double sum = 0.0;
  int64_t count = 0;
  // Every rank evaluates the same batches (layout-independent result; validation is small).
  for (int64_t k = 0; k < batches; ++k) {
    val_loader_->fill(k, B, ids.data(), targets.data());
    const LossSum ls = engine_->eval(ids, targets);
    sum += ls.sum;
    count += ls.count;
  }
  return count ? sum / double(count) : 0.0;
}

void Trainer::print_step(const StepRecord& r, double elapsed_s, double tokens_per_s) const {
  const int64_t total = cfg_.train.steps;
  const double eta = r.step > 0 ? elapsed_s / double(r.step) * double(total - r.step) : 0.0;
  char line[256];
  std::snprintf(line, sizeof line,
                "step %6lld/%lld | loss %.4f | lr %.3e | grad norm %8.4f | %9.0f tok/s | "
                "elapsed %s | eta %s%s\n",
                (long long)r.step, (long long)total, r.loss, r.lr, r.grad_norm, tokens_per_s,
                hms(elapsed_s).c_str(), hms(eta).c_str(), r.skipped ? " | SKIPPED (non-finite)" : "");
  out_ << line << std::flush;
}

TrainSummary Trainer::run(bool write_model) {
  TrainSummary sum;
  const int64_t B = cfg_.train.batch_size, T = cfg_.train.seq_len;
  const int64_t tokens_per_step = B * T * layout_.global_samples() / B;
  const std::filesystem::path run_dir = cfg_.run.dir;
  if (rank_ == 0) {
    std::filesystem::create_directories(run_dir);
    std::ofstream(run_dir / "config.toml") << cfg_.source_text;
    out_ << "model: " << arch_name(cfg_.model.arch) << ", " << engine_->global_param_count()
         << " parameters | data: " << train_data_.size() << " train tokens ("
         << loader_.n_samples() << " samples of " << T << ")";
    if (val_data_) out_ << ", " << val_data_->size() << " validation tokens";
    out_ << " | batch " << layout_.global_samples() << " x " << T << " = " << tokens_per_step
         << " tokens/step\n";
    if (val_data_) {
      sum.unigram_baseline = unigram_cross_entropy(train_data_, *val_data_, cfg_.model.vocab_size);
      char line[160];
      std::snprintf(line, sizeof line,
                    "unigram baseline (validation loss of predicting token frequencies): %.4f\n",
                    sum.unigram_baseline);
      out_ << line;
    }
    out_ << "layout: " << topo_.layout().str() << ", ZeRO stage " << cfg_.parallel.zero_stage
         << ", " << layout_.micro_batches << " micro-batch(es) per step\n";
  }
  const std::string mem = engine_->memory_table();  // collective
  if (rank_ == 0) out_ << mem << std::flush;

  auto val = [&](int64_t step) {
    const double v = validate(cfg_.train.eval_batches);
    sum.val_losses.emplace_back(step, v);
    if (rank_ == 0) {
      char line[160];
      std::snprintf(line, sizeof line, "val  step %6lld | loss %.4f | perplexity %.2f\n",
                    (long long)step, v, std::exp(v));
      out_ << line << std::flush;
    }
  };

  if (val_loader_) val(0);
  const auto t0 = Clock::now();
  auto window_start = t0;
  int64_t window_steps = 0;
  for (int64_t step = 1; step <= cfg_.train.steps; ++step) {
    const StepRecord r = train_step(step);
    sum.steps.push_back(r);
    ++window_steps;
    const bool last = step == cfg_.train.steps;
    if (step % cfg_.train.log_every == 0 || last || step == 1) {
      const auto now = Clock::now();
      const double window = std::chrono::duration<double>(now - window_start).count();
      const double tps = window > 0 ? double(window_steps * tokens_per_step) / window : 0.0;
      if (rank_ == 0) print_step(r, std::chrono::duration<double>(now - t0).count(), tps);
      window_start = now;
      window_steps = 0;
    }
    if (val_loader_ && cfg_.train.eval_every > 0 && step % cfg_.train.eval_every == 0 && !last)
      val(step);
  }
  if (val_loader_) val(cfg_.train.steps);

  if (!write_model) return sum;
  ModelFileMeta meta;
  meta.step = cfg_.train.steps;
  meta.tokens_seen = cfg_.train.steps * tokens_per_step;
  meta.config_toml = cfg_.source_text;
  meta.layout = {cfg_.parallel.tp, cfg_.parallel.pp, cfg_.parallel.dp, cfg_.parallel.zero_stage,
                 topo_.world_size()};
  sum.model_path = (run_dir / "model.h5").string();
  engine_->save(sum.model_path, meta);
  if (rank_ == 0) out_ << "saved " << sum.model_path << "\n" << std::flush;
  return sum;
}

}  // namespace llmpi
