#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>

#include "io/model_file.h"
#include "jobs/checkpoint_dir.h"
#include "jobs/retention.h"
#include "model/param_layout.h"
#include "optim/grad_clip.h"
#include "train/paths.h"
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

Trainer::StepRun Trainer::train_step(int64_t step) {
  StepRun o;
  StepRecord& r = o.r;
  r.step = step;
  r.lr = schedule_.at(step);
  SpikePolicy& policy = guard_->policy();
  if (policy.data_skipped(step)) {  // a rollback dropped this step's data: no forward at all
    r.loss = r.grad_norm = kNotMeasured;
    r.skipped = true;
    r.action = StepAction::skip_data;
    o.s.finite = false;
    return o;
  }
  const auto t0 = Clock::now();
  const int64_t N = cfg_.train.batch_size * cfg_.train.seq_len;
  for (int64_t m = 0; m < layout_.micro_batches; ++m)
    loader_.fill(step - 1, m, topo_.dp_rank(), layout_, host_ids_.data() + m * N,
                 host_targets_.data() + m * N);
  o.data_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const bool stats = guard_->layer_stats_due(step);
  if (stats) engine_->arm_layer_stats();
  o.s = engine_->compute(host_ids_, host_targets_, guard_->poison_gradient(step));
  const int64_t peak = be_.peak_bytes();
  const AgreedVerdict a = guard_->agree(step, o.s.loss, o.s.grad_norm, peak >= 0 ? double(peak) : kNotMeasured);
  o.peak_bytes = a.peak_bytes;
  const StepDecision d = policy.decide(step, a.verdict, checkpoint_before(step));
  if (d.action == StepAction::apply || d.action == StepAction::log_spike) engine_->apply(o.s, r.lr);
  if (stats) {
    LayerStats ls = engine_->layer_stats(o.s.applied);  // collective
    ls.step = step;
    ls.segment = guard_->segment();
    guard_->recorder().layers(ls);
    o.layers = std::move(ls);
  }
  policy.completed(step, d, o.s.loss, o.s.grad_norm);
  guard_->journal(step, a, d, o.s.grad_norm);
  r.loss = o.s.loss;
  r.grad_norm = o.s.grad_norm;
  r.skipped = !o.s.applied;  // the weights are kept; the step counter still advances
  r.action = d.action;
  o.r.spike = a.verdict.spike;
  o.r.loss_z = a.verdict.loss_z;
  o.r.grad_z = a.verdict.grad_z;
  return o;
}

int64_t Trainer::checkpoint_before(int64_t step) const {
  auto it = saved_steps_.lower_bound(step);
  return it == saved_steps_.begin() ? -1 : *std::prev(it);
}

int64_t Trainer::roll_back(AsyncCheckpointer* saver, int64_t step) {
  const int64_t c = checkpoint_before(step);
  LLMPI_CHECK(c >= 0, "rollback at step ", step, " without a checkpoint before it");
  if (saver) saver->wait();  // the checkpoint may still be written; no HDF5 while it is
  const std::vector<int64_t> window = guard_->policy().skip_window(step, c);
  const std::string path = checkpoint_path(cfg_.run.dir, c);
  report("rolled back from step " + std::to_string(step) + " to " + path + "; the data of steps " +
         std::to_string(window.front()) + ".." + std::to_string(window.back()) + " is skipped");
  std::vector<int64_t> samples;  // the global sample indices whose data is skipped
  for (int64_t s : window) {
    const std::vector<int64_t> idx = loader_.step_samples(s - 1, layout_);  // 0-based step
    samples.insert(samples.end(), idx.begin(), idx.end());
  }
  guard_->recorder().event(make_event(EventType::rollback, step,
                                      {{"to_step", c}, {"checkpoint", path}, {"skip_first", window.front()},
                                       {"skip_last", window.back()}, {"samples", int64_t(samples.size())},
                                       {"sample_indices", samples}}));
  // Checkpoints after c hold the skipped data's updates: a resume must start from c.
  for (auto it = saved_steps_.upper_bound(c); it != saved_steps_.end();) {
    if (rank_ == 0) std::filesystem::remove(checkpoint_path(cfg_.run.dir, *it));
    it = saved_steps_.erase(it);
  }
  if (rank_ == 0) write_latest(cfg_.run.dir, c);
  const CheckpointMeta m = engine_->load_state(path);  // collective
  guard_->policy().restore_window(m.run);
  guard_->recorder().next_segment();
  if (rank_ == 0) write_rollback_record(cfg_.run.dir, guard_->policy().save(guard_->segment()));
  const std::vector<int64_t> here = {cfg_.parallel.tp, cfg_.parallel.pp, cfg_.parallel.dp,
                                     cfg_.parallel.zero_stage, topo_.world_size()};
  guard_->recorder().event(make_event(EventType::resume, c,
                                      {{"checkpoint", path}, {"from_step", c}, {"reason", "rollback"},
                                       {"layout", layout_text(here)}, {"saved_layout", layout_text(m.layout)}}));
  last_saved_step_ = c;
  return c;
}

void Trainer::record_step(const StepRun& o, double step_s, double stall_s, double val_loss) {
  if (!guard_->recorder().writes()) return;
  const StepRecord& r = o.r;
  StepMetrics m;
  m.step = r.step;
  m.segment = guard_->segment();
  m.tokens_seen = r.step * layout_.global_samples() * cfg_.train.seq_len;
  m.wall_unix = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  m.loss = r.loss;
  m.val_loss = val_loss;
  m.lr = r.lr;
  m.grad_norm = r.grad_norm;
  m.clipped = o.s.clipped && o.s.applied;
  m.skipped = r.skipped;
  m.spike = r.spike;
  m.loss_z = r.loss_z;
  m.grad_z = r.grad_z;
  m.tokens_per_s = step_s > 0 ? double(layout_.global_samples() * cfg_.train.seq_len) / step_s : 0.0;
  m.peak_memory_bytes = o.peak_bytes;
  m.time_step_s = step_s;
  m.time_data_s = o.data_s;
  m.time_forward_s = o.s.times.forward_s;
  m.time_backward_s = o.s.times.backward_s;
  m.time_optimizer_s = o.s.times.optimizer_s;
  m.time_comm_s = o.s.times.comm_s;
  m.time_checkpoint_s = stall_s;
  guard_->recorder().step(m);
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

void Trainer::report(const std::string& line) const {
  if (rank_ == 0) out_ << line << "\n" << std::flush;
}

void Trainer::print_step(const StepRecord& r, int64_t done, double elapsed_s,
                         double tokens_per_s) const {
  const int64_t total = cfg_.train.steps;
  const double eta = done > 0 ? elapsed_s / double(done) * double(total - r.step) : 0.0;
  char line[256];
  std::snprintf(line, sizeof line,
                "step %6lld/%lld | loss %.4f | lr %.3e | grad norm %8.4f | %9.0f tok/s | "
                "elapsed %s | eta %s%s\n",
                (long long)r.step, (long long)total, r.loss, r.lr, r.grad_norm, tokens_per_s,
                hms(elapsed_s).c_str(), hms(eta).c_str(),
                r.skipped ? (" | SKIPPED (" + action_name(r.action) + ")").c_str()
                          : r.spike ? " | SPIKE (logged)" : "");
  out_ << line << std::flush;
}

ResumePoint Trainer::resume(const std::string& path) {
  // The metadata first (cheap, identical on every rank): a checkpoint that cannot continue
  // this run's data order is refused before anything is loaded.
  const CheckpointMeta head = read_checkpoint_meta(path);
  const int64_t G = layout_.global_samples();
  if (head.data.seed != cfg_.train.seed)
    user_error(path, ": saved with train.seed = ", head.data.seed, " but the config has ",
               cfg_.train.seed, "; resuming needs the same seed (the data order depends on it)");
  if (head.data.global_batch != G)
    user_error(path, ": saved with a global batch of ", head.data.global_batch,
               " samples per step but the config gives ", G,
               " (train.batch_size x parallel.micro_batches x parallel.dp); keep the product "
               "equal to continue the same data order");
  if (head.step < 0 || head.step > cfg_.train.steps)
    user_error(path, ": step ", head.step, " is outside 0..train.steps = ", cfg_.train.steps);
  if (head.data.samples_consumed != head.step * G)
    user_error(path, ": data position ", head.data.samples_consumed, " samples is not step ",
               head.step, " x global batch ", G);
  const CheckpointMeta m = engine_->load_state(path);
  start_step_ = m.step;
  last_saved_step_ = m.step;
  resumed_run_ = m.run;  // the spike policy's state (restored when the logbook starts)
  saved_steps_.clear();
  for (const CheckpointFile& f : list_checkpoints(cfg_.run.dir))
    if (f.step <= m.step) saved_steps_.insert(f.step);
  ResumePoint p;
  p.path = path;
  p.step = m.step;
  p.tokens_seen = m.tokens_seen;
  std::string layout;
  if (m.layout.size() == 5)
    layout = " (saved under tp" + std::to_string(m.layout[0]) + " pp" + std::to_string(m.layout[1]) +
             " dp" + std::to_string(m.layout[2]) + " ZeRO " + std::to_string(m.layout[3]) + ", " +
             std::to_string(m.layout[4]) + " ranks)";
  report("resuming from " + path + " at step " + std::to_string(m.step) + " of " +
         std::to_string(cfg_.train.steps) + ", " + std::to_string(m.tokens_seen) +
         " tokens seen, optimizer step " + std::to_string(m.optimizer.step_count) + layout);
  return p;
}

std::optional<ResumePoint> Trainer::resume_latest() {
  if (rank_ == 0)
    for (const std::string& t : clean_temporaries(cfg_.run.dir))
      report("removed " + t + " (an interrupted save)");
  check_mpi(MPI_Barrier(comm_), "MPI_Barrier");
  const Discovery d =
      find_latest_valid(cfg_.run.dir, comm_, /*verify_tensors=*/true,
                        [this](const std::string& line) { report(line); });
  if (!d.found) return std::nullopt;
  ResumePoint p = resume(d.found->path);
  p.rejected = d.rejected;
  return p;
}

void Trainer::save_checkpoint(AsyncCheckpointer& saver, int64_t step) {
  const int64_t G = layout_.global_samples();
  CheckpointMeta meta;
  meta.step = step;
  meta.tokens_seen = step * G * cfg_.train.seq_len;
  meta.config_toml = cfg_.source_text;
  meta.layout = {cfg_.parallel.tp, cfg_.parallel.pp, cfg_.parallel.dp, cfg_.parallel.zero_stage,
                 topo_.world_size()};
  meta.optimizer = engine_->optimizer_meta();
  meta.run = guard_->policy().save(guard_->segment());
  saved_steps_.insert(step);
  DataMeta& d = meta.data;
  d.seed = cfg_.train.seed;
  d.samples_consumed = step * G;
  d.global_batch = G;
  for (int64_t s = last_saved_step_ + 1; s <= step; ++s) {
    d.steps.push_back(s);
    const std::vector<int64_t> idx = loader_.step_samples(s - 1, layout_);  // 0-based step
    d.step_samples.insert(d.step_samples.end(), idx.begin(), idx.end());
  }
  const std::string path = checkpoint_path(cfg_.run.dir, step);
  const std::string dir = cfg_.run.dir;
  const CheckpointSection policy = cfg_.checkpoint;
  const bool commit = rank_ == 0;
  saver.save(path, engine_->checkpoint_slabs(), meta, [dir, step, policy, commit] {
    if (commit) commit_checkpoint(dir, step, policy);  // latest pointer, then retention
  });
  last_saved_step_ = step;
  const AsyncSaveStats st = saver.stats();
  char line[256];
  std::snprintf(line, sizeof line, "checkpoint step %lld -> %s | stall %.1f ms (%s)",
                (long long)step, path.c_str(), st.last_stall_s * 1e3,
                saver.is_async() ? "snapshot; written in the background" : "synchronous write");
  report(line);
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
    if (opt.checkpoints) std::filesystem::create_directories(checkpoints_dir(run_dir.string()));
  }
  check_mpi(MPI_Barrier(comm_), "MPI_Barrier");  // the directories exist for every rank
  const std::string mem = engine_->memory_table();  // collective
  if (rank_ == 0) out_ << mem << std::flush;
  if (!guard_) {  // the first run() of this trainer: the logbook and the spike policy
    const LogbookSchema schema{engine_->global_param_names(), cfg_.model.n_layer};
    guard_ = std::make_unique<StepGuard>(cfg_, schema, resumed_run_ ? resumed_run_->segment + 1 : 0,
                                         comm_, out_);
    if (resumed_run_) guard_->policy().restore(*resumed_run_, read_rollback_record(cfg_.run.dir));
  }

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

  // One saver per run: its private communicator keeps checkpoint collectives apart from the
  // training ones. While a save is in flight nothing else may call HDF5 (wait() first).
  std::optional<AsyncCheckpointer> saver;
  if (opt.checkpoints) {
    int level = MPI_THREAD_SINGLE;
    check_mpi(MPI_Query_thread(&level), "MPI_Query_thread");
    saver.emplace(comm_, level, /*async=*/true,
                  [this](const std::string& line) { report(line); });
  }
  if (val_loader_ && start_step_ == 0) val(0);
  const auto t0 = Clock::now();
  auto window_start = t0;
  int64_t window_steps = 0;
  const int64_t last_step =
      opt.stop_after >= 0 ? std::min(opt.stop_after, cfg_.train.steps) : cfg_.train.steps;
  const int64_t first_step = start_step_;  // steps before this call (a resumed checkpoint's)
  if (first_step >= cfg_.train.steps)
    report("step " + std::to_string(first_step) + " = train.steps: nothing left to train");
  for (int64_t step = start_step_ + 1; step <= last_step; ++step) {
    guard_->maybe_kill(trained_);
    const auto step_start = Clock::now();
    const StepRun o = train_step(step);
    const StepRecord& r = o.r;
    ++trained_;
    sum.steps.push_back(r);
    if (o.layers) sum.layers.push_back(*o.layers);
    if (r.action == StepAction::rollback) {  // the spike's row, then training goes on from c + 1
      record_step(o, std::chrono::duration<double>(Clock::now() - step_start).count(), 0.0, kNotMeasured);
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
    if (val_loader_ && cfg_.train.eval_every > 0 && step % cfg_.train.eval_every == 0 && !last)
      val(step);
    if (last && val_loader_) val(step);  // the final validation, in this step's row
    double stall = 0.0;
    if (saver && is_save_step(cfg_.checkpoint, step, cfg_.train.steps)) {
      save_checkpoint(*saver, step);
      stall = saver->stats().last_stall_s;
    }
    const bool validated = !sum.val_losses.empty() && sum.val_losses.back().first == step;
    record_step(o, std::chrono::duration<double>(Clock::now() - step_start).count(), stall,
                validated ? sum.val_losses.back().second : kNotMeasured);
    guard_->recorder().maybe_flush(saver && saver->busy());
    start_step_ = step;
  }
  if (saver) {
    saver->wait();  // rethrows a failed background save; no HDF5 below while one runs
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
  if (const int64_t peak = be_.peak_bytes(); peak >= 0) {  // device backends, alike on all ranks
    double hi = double(peak), lo = double(peak);
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_DOUBLE, MPI_MAX, comm_), "MPI_Allreduce");
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_DOUBLE, MPI_MIN, comm_), "MPI_Allreduce");
    char line[160];
    std::snprintf(line, sizeof line, "peak device memory per rank: %.2f GiB max, %.2f GiB min",
                  hi / 1073741824.0, lo / 1073741824.0);
    report(line);
  }
  if (last_step < cfg_.train.steps) return sum;  // interrupted: no final validation or model
  if (val_loader_ && (sum.val_losses.empty() || sum.val_losses.back().first != cfg_.train.steps))
    val(cfg_.train.steps);  // a run resumed at its last step
  guard_->recorder().maybe_flush(false, true);

  if (!opt.write_model) return sum;
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
