// The training loop of one run (see trainer.h): steps, validation, checkpoint saves and the
// final model; the run directory's side of each goes through RunDirectory.
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <ostream>

#include "core/agreement.h"
#include "data/hf_tokenizer.h"
#include "io/model_file.h"
#include "jobs/retention.h"
#include "model/model_flops.h"
#include "model/param_layout.h"
#include "optim/grad_clip.h"
#include "data/tokenizer_id.h"
#include "train/dpo_objective.h"
#include "train/eval_prompts.h"
#include "train/init_from.h"
#include "train/lora_setup.h"
#include "train/reference_logprobs.h"
#include "train/paths.h"
#include "train/logbook_observer.h"
#include "train/spike_policy.h"
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

// Each rank reads the data on its own: a copy that differs on some node would train each dp
// rank on another data set, silently. Its sizes and tokenizer, alike on every rank (collective).
void check_same_data(MPI_Comm comm, const Config& cfg, const TokenDataset& train,
                     const TokenDataset* val) {
  auto id = [](const TokenDataset& d) { return d.tokenizer() ? int64_t(d.tokenizer()->hash) : 0; };
  const Spread s = spread(comm, {train.size(), id(train), val ? val->size() : 0, val ? id(*val) : 0});
  for (size_t k : {size_t(0), size_t(2)}) {
    if (s.same(k) && s.same(k + 1)) continue;
    const char* key = k == 0 ? "data.train" : "data.val";
    user_error(key, " = \"", k == 0 ? cfg.data.train : cfg.data.val,
               "\": the ranks of this job read different data (",
               s.same(k) ? "the same number of tokens but another tokenizer"
                         : "from " + std::to_string(s.lo[k]) + " to " + std::to_string(s.hi[k]) + " tokens",
               "); every rank must read the same files (a copy on a node-local disk that differs?)");
  }
}

}  // namespace

struct Trainer::Owned {
  Topology topo;
  RunDirectory dir;
  Owned(const Config& cfg, MPI_Comm comm, std::ostream& out)
      : topo(cfg, comm), dir(cfg.run.dir, topo.world_communicator().get(), out) {}
};

Trainer::Trainer(const Config& cfg, Backend& be, MPI_Comm comm, std::ostream& out)
    : Trainer(cfg, be, std::make_unique<Owned>(cfg, comm, out), out) {}

Trainer::Trainer(const Config& cfg, Backend& be, std::unique_ptr<Owned> owned, std::ostream& out)
    : Trainer(cfg, be, owned->topo, owned->dir, out) {
  owned_ = std::move(owned);
}

Trainer::Trainer(const Config& cfg, Backend& be, Topology& topo, RunDirectory& run_dir,
                 std::ostream& out)
    : topo_(topo),
      run_dir_(run_dir),
      cfg_(cfg),
      be_(be),
      comm_(topo_.world_communicator().get()),
      out_(out),
      journal_(cfg, layout_text(topo.layout()), topo.world_size()),
      // Agreed: data unreadable on some ranks only (a node-local copy) stops every rank here.
      train_data_(agreed(topo.world_communicator().get(), [&] {
        return TokenDataset(data_paths(cfg.data.train, "data.train"), cfg.model.vocab_size);
      })),
      rows_(cfg, train_data_),
      schedule_(LrSchedule::from(cfg.train)),
      flops_per_token_(model_flops_per_token(cfg.model, cfg.train.seq_len, cfg.lora.spec())) {
  rank_ = topo_.rank();
  if (!cfg.data.val.empty()) {
    val_data_.emplace(agreed(comm_, [&] {
      return TokenDataset(data_paths(cfg.data.val, "data.val"), cfg.model.vocab_size);
    }));
    val_rows_.emplace(cfg, *val_data_);
    const std::string warning =
        check_same_tokenizer(train_data_.tokenizer(), "data.train", val_data_->tokenizer(), "data.val");
    if (!warning.empty()) report(warning);
  }
  check_same_data(comm_, cfg, train_data_, val_data_ ? &*val_data_ : nullptr);
  layout_.batch_size = cfg.train.batch_size;
  layout_.micro_batches = cfg.parallel.micro_batches;
  layout_.dp_size = topo_.layout().dp;
  engine_ = std::make_unique<ParallelEngine>(cfg, topo_, be_);
  if (cfg.train.objective == Objective::dpo)
    dpo_ = std::make_unique<DpoObjective>(cfg_, *engine_, topo_, rows_, val_rows_ ? &*val_rows_ : nullptr);
  // data.tokenizer is read now (by the eval prompts, which keep it, or just to check it), so an
  // unreadable one (empty, damaged, a FIFO that would block) is refused before any step rather
  // than by sample after training. A missing one is no error without eval prompts: training
  // does not need it.
  std::error_code ec;
  if (!cfg.eval.prompts.empty()) {
    eval_prompts_ = std::make_unique<EvalPrompts>(cfg_);
  } else if (!cfg.data.tokenizer.empty() && std::filesystem::exists(cfg.data.tokenizer, ec)) {
    try {
      (void)load_tokenizer(cfg.data.tokenizer);
    } catch (const UserError& e) {
      user_error("data.tokenizer: ", e.what());
    }
  }
  const int64_t B = cfg.train.batch_size, T = cfg.train.seq_len;
  host_ids_.resize(size_t(layout_.micro_batches * B * T));
  host_targets_.resize(host_ids_.size());
  if (rows_.has_documents()) host_docs_.resize(host_ids_.size());
  // Last: a constructor that throws leaves no observer behind in run_dir_.
  run_dir_.add_observer(journal_);  // the logbook's journal (attached to the logbook in run())
}

Trainer::~Trainer() {
  journal_.detach();
  run_dir_.remove_observer(journal_);
}

std::optional<double> Trainer::validate(int64_t batches, const RunControl* control) {
  LLMPI_CHECK(val_rows_.has_value(), "validate() without validation data");
  const int64_t B = cfg_.train.batch_size, T = cfg_.train.seq_len, N = B * T;
  std::vector<int32_t> ids(static_cast<size_t>(N)), targets(static_cast<size_t>(N));
  std::vector<int32_t> docs(val_rows_->has_documents() ? static_cast<size_t>(N) : 0);
  double sum = 0.0;
  int64_t count = 0;
  // Every rank evaluates the same batches (layout-independent result; validation is small).
  for (int64_t k = 0; k < batches; ++k) {
    if (control && control->stop_requested()) return std::nullopt;  // collective
    val_rows_->fill_val(k, B, ids.data(), targets.data(), docs.data());
    const LossSum ls = engine_->eval(ids, targets, docs);
    sum += ls.sum;
    count += ls.count;
  }
  return count ? sum / double(count) : 0.0;
}

void Trainer::report(const std::string& line) const {
  if (rank_ == 0) out_ << line << "\n" << std::flush;
}

void Trainer::print_step(const StepRecord& r, int64_t done, double elapsed_s,
                         double tokens_per_s) const {
  const int64_t total = cfg_.train.steps;
  const double eta = done > 0 ? elapsed_s / double(done) * double(total - r.step) : 0.0;
  // Rank 0's split of this step: compute (and all else) | communication waited for / all of it.
  char split[96] = "";
  const StepTimes& t = r.times;
  if (t.comm_total_s > 0)
    std::snprintf(split, sizeof split, " | step %.1f ms: compute %.1f, comm exposed %.1f of %.1f",
                  1e3 * t.step_s, 1e3 * (t.step_s - t.comm_exposed_s), 1e3 * t.comm_exposed_s,
                  1e3 * t.comm_total_s);
  char dpo[160] = "";
  if (r.dpo)
    std::snprintf(dpo, sizeof dpo, " | rewards chosen %+.4f rejected %+.4f margin %+.4f | accuracy %.3f",
                  r.chosen_reward, r.rejected_reward, r.reward_margin, r.reward_accuracy);
  char line[512];
  std::snprintf(line, sizeof line,
                "step %6lld/%lld | loss %.4f%s | lr %.3e | grad norm %8.4f | %9.0f tok/s | "
                "elapsed %s | eta %s%s%s\n",
                (long long)r.step, (long long)total, r.loss, dpo, r.lr, r.grad_norm, tokens_per_s,
                hms(elapsed_s).c_str(), hms(eta).c_str(), split,
                r.skipped ? (" | SKIPPED (" + action_name(r.action) + ")").c_str()
                          : r.spike ? " | SPIKE (logged)" : "");
  out_ << line << std::flush;
}

void Trainer::init_from(const std::string& source) {
  report("initial weights from " + init_params_from(source, cfg_, *engine_, comm_));
}

TrainSummary Trainer::run(bool write_model) {
  RunOptions o;
  o.write_model = write_model;
  o.checkpoints = write_model;
  return run(o);
}

TrainSummary Trainer::run(const RunOptions& opt) {
  TrainSummary sum;
  const int64_t B = cfg_.train.batch_size, T = cfg_.train.seq_len;
  const int64_t tokens_per_step = B * T * layout_.global_samples() / B;
  run_dir_.begin(cfg_, start_step_, opt.checkpoints, resumed_from_);  // collective
  if (rank_ == 0) {
    out_ << "model: " << arch_name(cfg_.model.arch) << ", " << engine_->global_param_count()
         << " parameters | data: " << train_data_.size() << " train tokens ("
         << rows_.describe() << ")";
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
    if (cfg_.lora.enabled()) out_ << lora_summary(cfg_, *engine_) << "\n";
    out_ << "layout: " << topo_.layout().str() << ", ZeRO stage " << cfg_.parallel.zero_stage
         << ", " << layout_.micro_batches << " micro-batch(es) per step\n";
    if (be_.device() == Device::cuda) out_ << "cuda graphs: " << engine_->graphs_summary() << "\n";
  }
  const std::string mem = engine_->memory_table();  // collective
  if (rank_ == 0) out_ << mem << std::flush;
  if (!guard_) {  // the first run() of this trainer: the logbook and the spike policy
    const LogbookSchema schema{engine_->global_param_names(), cfg_.model.n_layer};
    guard_ = std::make_unique<StepGuard>(cfg_, schema, resumed_run_ ? resumed_run_->segment + 1 : 0,
                                         comm_, out_);
    if (resumed_run_) guard_->policy().restore(*resumed_run_, read_rollback_record(run_dir_.dir()));
    journal_.attach(guard_->recorder());
  }

  int64_t evaluated_at = -1;  // the step of the last val() (its validation and prompts)
  auto val = [&](int64_t step) {
    evaluated_at = step;
    if (val_rows_) {
      const std::optional<double> cut = validate(cfg_.train.eval_batches, opt.control);
      if (!cut) {  // the step loop's stop check acts on the request
        char line[96];
        std::snprintf(line, sizeof line, "val  step %6lld | cut short by a stop request (no loss recorded)",
                      (long long)step);
        report(line);
        return;
      }
      const double v = *cut;
      sum.val_losses.emplace_back(step, v);
      if (rank_ == 0) {
        char line[160];
        std::snprintf(line, sizeof line, "val  step %6lld | loss %.4f | perplexity %.2f\n",
                      (long long)step, v, std::exp(v));
        out_ << line << std::flush;
      }
      if (dpo_) {
        const std::optional<DpoSums> held_out = dpo_->validate(opt.control);  // every pair once
        if (!held_out) {  // as above: the step loop's stop check acts on the request
          char line[112];
          std::snprintf(line, sizeof line,
                        "val  step %6lld | dpo: cut short by a stop request (no metrics recorded)",
                        (long long)step);
          report(line);
          return;
        }
        const DpoSums& d = *held_out;
        sum.val_dpo.emplace_back(step, d);
        char line[256];
        std::snprintf(line, sizeof line,
                      "val  step %6lld | dpo loss %.4f | rewards chosen %+.4f rejected %+.4f "
                      "margin %+.4f | accuracy %.3f (%lld pairs)",
                      (long long)step, d.mean_loss(), d.mean_chosen_reward(),
                      d.mean_rejected_reward(), d.mean_margin(), d.accuracy(), (long long)d.pairs);
        report(line);
      }
    }
    if (eval_prompts_) {
      const std::optional<std::vector<std::string>> generations =
          eval_prompts_->generate(*engine_, be_, opt.control, opt.progress);  // collective
      if (!generations) {  // as above: the step loop's stop check acts on the request
        report("prompt step " + std::to_string(step) +
               " | cut short by a stop request (no generation recorded)");
        return;
      }
      const std::vector<std::string>& gen = *generations;
      sum.eval_generations.emplace_back(step, gen);
      for (size_t i = 0; i < gen.size(); ++i)  // rank 0 records, like every logbook event
        guard_->recorder().event(make_event(
            EventType::eval_prompt, step,
            {{"prompt", eval_prompts_->prompts()[i]}, {"generation", gen[i]}}));
      for (size_t i = 0; i < gen.size(); ++i)
        report("prompt step " + std::to_string(step) + " | " + eval_prompts_->prompts()[i] +
               " -> " + gen[i]);
    }
  };
  const bool evaluates = val_rows_ || eval_prompts_;
  // The watchdog's view (jobs/progress.h): start-up lasts to the end of this launch's first
  // step; then each step, validation and save is a phase of its own.
  auto phase = [&](Phase p, int64_t step) {
    if (opt.progress) opt.progress->begin(p, step);
  };
  auto finish = [&](int64_t last, bool completed) {  // run_end, then the logbook written out
    phase(Phase::idle, last);
    run_dir_.end(last, completed);
    guard_->recorder().maybe_flush(false, true);
  };
  if (dpo_) {
    if (rank_ == 0) std::filesystem::create_directories(cfg_.run.dir);
    auto progress = [this](const std::string& line) { report(line); };
    const bool ready =
        dpo_->prepare(reference_cache_path(cfg_.run.dir), start_step_, progress, opt.control);
    if (!ready) {  // a stop request cut the reference pass short: no step can run without it
      LLMPI_CHECK(opt.control, "the DPO reference pass was cut short without a run control");
      // Collective; the request that cut the pass short is still there (signals stay recorded).
      sum.stopped = opt.control->stop_before_steps(start_step_, "the DPO reference pass");
      LLMPI_CHECK(bool(sum.stopped), "the DPO reference pass was cut short, but no stop agreed");
      sum.last_step = start_step_;
      finish(start_step_, false);
      return sum;
    }
  }

  // One saver per run: its private communicator keeps checkpoint collectives apart from the
  // training ones. While a save is in flight nothing else may call HDF5 (wait() first).
  std::optional<AsyncCheckpointer> saver;
  if (opt.checkpoints) {
    int level = MPI_THREAD_SINGLE;
    check_mpi(MPI_Query_thread(&level), "MPI_Query_thread");
    saver.emplace(comm_, level, /*async=*/true,
                  [this](const std::string& line) { report(line); });
  }
  if (evaluates && start_step_ == 0) val(0);
  const auto t0 = Clock::now();
  auto window_start = t0;
  int64_t window_steps = 0;
  int64_t last_step =
      opt.stop_after >= 0 ? std::min(opt.stop_after, cfg_.train.steps) : cfg_.train.steps;
  const int64_t first_step = start_step_;  // steps before this call (a resumed checkpoint's)
  if (first_step >= cfg_.train.steps)
    report("step " + std::to_string(first_step) + " = train.steps: nothing left to train");
  for (int64_t step = start_step_ + 1; step <= last_step; ++step) {
    if (step > first_step + 1) phase(Phase::step, step);
    guard_->maybe_kill(trained_);
    const auto step_start = Clock::now();
    const StepRun o = train_step(step);
    const StepRecord& r = o.r;
    ++trained_;
    sum.steps.push_back(r);
    if (o.layers) sum.layers.push_back(*o.layers);
    if (r.action == StepAction::rollback) {  // the spike's row, then training goes on from c + 1
      const double step_s = std::chrono::duration<double>(Clock::now() - step_start).count();
      record_step(o, step_s, step_s, 0.0, kNotMeasured);
      phase(Phase::save, step);  // reloading a checkpoint takes as long as writing one
      step = roll_back(saver ? &*saver : nullptr, step);
      start_step_ = step;
      guard_->recorder().maybe_flush(false, true);
      continue;
    }
    ++window_steps;
    const bool last = step == cfg_.train.steps;
    if (step % cfg_.train.log_every == 0 || last || step == first_step + 1) {
      const auto now = Clock::now();
      const double window = std::chrono::duration<double>(now - window_start).count();
      const double tps = window > 0 ? double(window_steps * tokens_per_step) / window : 0.0;
      if (rank_ == 0)
        print_step(r, step - first_step, std::chrono::duration<double>(now - t0).count(), tps);
      window_start = now;
      window_steps = 0;
    }
    const double step_s = std::chrono::duration<double>(Clock::now() - step_start).count();
    if (evaluates && ((cfg_.train.eval_every > 0 && step % cfg_.train.eval_every == 0) || last)) {
      phase(Phase::eval, step);
      val(step);  // the final validation too, in this step's row
    }
    auto save = [&] {  // this step's checkpoint; the stall training saw
      phase(Phase::save, step);
      save_checkpoint(*saver, step);
      const double stall = saver->stats().last_stall_s;
      journal_.note_stall(step, stall);
      return stall;
    };
    const bool saved = saver && is_save_step(cfg_.checkpoint, step, cfg_.train.steps);
    const double stall = saved ? save() : 0.0;
    const bool validated = !sum.val_losses.empty() && sum.val_losses.back().first == step;
    const auto lb = Clock::now();
    record_step(o, step_s, std::chrono::duration<double>(lb - step_start).count(), stall,
                validated ? sum.val_losses.back().second : kNotMeasured);
    guard_->recorder().maybe_flush(saver && saver->busy());
    const auto step_end = Clock::now();
    logbook_s_ += std::chrono::duration<double>(step_end - lb).count();
    steps_s_ += std::chrono::duration<double>(step_end - step_start).count();
    ++timed_steps_;
    start_step_ = step;
    run_dir_.deliver_events();  // those of background saves that completed meanwhile
    if (opt.control && !last) {
      if (saver) {
        const AsyncSaveStats st = saver->stats();
        if (st.saves > 0) opt.control->save_measured(st.max_stall_s + st.last_write_s);
      }
      // One collective per step: every rank stops after the same step, or none does.
      sum.stopped = opt.control->after_step(step, step_s);
      if (sum.stopped) {
        if (saver && !saved) save();
        last_step = step;
        break;
      }
    }
  }
  if (saver) {
    phase(Phase::save, last_step);
    // Rethrows a failed background save (its commit ran on rank 0 alone: agreed); no HDF5
    // below while one runs.
    agreed(comm_, [&] { saver->wait(); });
    const AsyncSaveStats st = saver->stats();
    if (st.saves > 0) {
      char line[200];
      std::snprintf(line, sizeof line,
                    "checkpoints: %lld saved | stall per save: mean %.1f ms, max %.1f ms | "
                    "last write %.2f s",
                    (long long)st.saves, st.total_stall_s / double(st.saves) * 1e3,
                    st.max_stall_s * 1e3, st.last_write_s);
      report(line);
    }
  }
  if (timed_steps_ > 0 && guard_->recorder().writes_anywhere()) {
    char line[240];
    std::snprintf(line, sizeof line,
                  "logbook: %.3f ms per step (%.2f%% of the mean step time %.2f ms; per-layer "
                  "statistics every %lld steps included)",
                  logbook_s_ / double(timed_steps_) * 1e3, 100.0 * logbook_s_ / steps_s_,
                  steps_s_ / double(timed_steps_) * 1e3, (long long)cfg_.logbook.layer_stats_every);
    report(line);
  }
  if (const int64_t peak = be_.peak_bytes(); peak >= 0) {  // device backends, alike on all ranks
    double hi = double(peak), lo = double(peak);
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_DOUBLE, MPI_MAX, comm_), "MPI_Allreduce");
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_DOUBLE, MPI_MIN, comm_), "MPI_Allreduce");
    // Beside the start-up estimate it was checked against (parallel/memory_estimate.h).
    const MemoryEstimate& e = engine_->memory_estimate();
    char line[320];
    std::snprintf(line, sizeof line,
                  "peak device memory per rank: %.2f GiB max, %.2f GiB min (allocator high-water "
                  "mark); start-up estimate %.2f GiB (parameters %.2f, gradients %.2f, optimizer "
                  "%.2f, activations %.2f, workspace %.2f incl. %.2f reserve)",
                  hi / 1073741824.0, lo / 1073741824.0, e.total() / 1073741824.0,
                  e.params / 1073741824.0, e.grads / 1073741824.0, e.optimizer / 1073741824.0,
                  e.activations / 1073741824.0, e.workspace / 1073741824.0,
                  kDeviceReserveBytes / 1073741824.0);
    report(line);
  }
  if (const int64_t n = engine_->graph_replays(); n > 0)
    report("cuda graphs: " + std::to_string(n) + " forward and backward passes replayed from recordings");
  sum.last_step = last_step;
  if (last_step < cfg_.train.steps) {  // interrupted: no final validation or model
    finish(last_step, false);
    return sum;
  }
  if (evaluates && evaluated_at != cfg_.train.steps) {
    phase(Phase::eval, last_step);
    val(cfg_.train.steps);  // a run resumed at its last step
  }
  phase(Phase::save, last_step);

  if (!opt.write_model) {
    finish(last_step, true);
    return sum;
  }
  ModelFileMeta meta;
  meta.step = cfg_.train.steps;
  meta.tokens_seen = cfg_.train.steps * tokens_per_step;
  meta.config_toml = cfg_.source_text;
  meta.layout = topo_.layout();
  if (auto t = train_data_.tokenizer()) meta.tokenizer = t->str();
  stamp_lora_base(meta, cfg_, *engine_);
  sum.model_path = run_dir_.model_path();
  engine_->save(sum.model_path, meta);
  if (rank_ == 0) out_ << "saved " << sum.model_path << "\n" << std::flush;
  finish(last_step, true);
  return sum;
}

}  // namespace llmpi
