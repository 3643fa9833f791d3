#pragma once
// Trainer: the training loop of one run, on any parallel layout. It runs steps; the run
// directory's life (config snapshot, choice of the checkpoint to resume, `latest`, retention,
// the run's events) is the RunDirectory's (jobs/run_dir.h), what may change on resume is
// jobs/resume.h's.
//   per step s (1-based): this dp rank's micro-batches are staged from the loader, then the
//     ParallelEngine (parallel/engine.h) runs forward/backward with scale 1/(targets in the
//     global step), reduces gradients per its ZeRO stage, clips by the global norm and
//     applies AdamW(lr(s)) → log line (rank 0) every log_every steps
//   validation every eval_every steps and at the end; the model file at the end.
//   checkpoints at the steps of the [checkpoint] schedule (jobs/retention.h), written in the
//     background (AsyncCheckpointer) while training continues: params, AdamW moments and step
//     count, step, tokens seen, data position, the samples of every step since the previous
//     checkpoint, seed; then RunDirectory::commit_checkpoint (`latest`, retention). The stall
//     per save is printed.
//   resume (before run): a checkpoint saved under any layout restores everything; training
//     continues at its step + 1 with the same data order (samples are a function of the
//     step), bitwise identical to an uninterrupted run on the same layout.
// Construction is collective over the Topology's communicator and prints every rank's memory
// table on rank 0 when the run starts. The caller passes the Topology (built from the config;
// LayoutError on every rank for an invalid layout) and the RunDirectory; a second constructor
// builds both over a communicator (tests, tools).
// The global batch is batch_size × micro_batches × dp sequences; its samples are a pure
// function of (seed, dataset, step) (train/step_rows.h: pre-training samples, or with
// [train] objective = "sft" rows of whole, possibly packed documents with masked targets), so
// runs are reproducible bit for bit: the same config gives the same losses.
// objective = "dpo": each step goes through DpoObjective (train/dpo_objective.h: reference
// log-probs cached before the first step, per-token scales of the DPO gradient); validation
// adds the DPO metrics over every held-out pair. [eval] prompts (train/eval_prompts.h) are
// generated at every validation.
#include <mpi.h>

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "backend/backend.h"
#include "io/checkpoint.h"
#include "io/checkpoint_async.h"
#include "config/config.h"
#include "data/batch_loader.h"
#include "data/token_dataset.h"
#include "model/param_store.h"
#include "optim/lr_schedule.h"
#include "parallel/engine.h"
#include "jobs/progress.h"
#include "jobs/resume.h"
#include "jobs/run_control.h"
#include "jobs/run_dir.h"
#include "parallel/topology.h"
#include "train/logbook_observer.h"
#include "train/step_guard.h"
#include "train/dpo_loss.h"
#include "train/step_rows.h"

namespace llmpi {

class DpoObjective;
class EvalPrompts;

struct StepRecord {
  int64_t step = 0;
  double loss = 0.0;       // mean training loss of the step (nats/token)
  double lr = 0.0;
  double grad_norm = 0.0;  // before clipping
  bool skipped = false;    // the update was not applied (non-finite, spike, skipped data)
  StepAction action = StepAction::apply;  // what the spike policy decided (train/spike_policy.h)
  bool spike = false;                     // the detector flagged it (on some rank)
  double loss_z = 0.0, grad_z = 0.0;      // its z-scores (largest over ranks)
  StepTimes times;  // the engine's time split of the step on this rank (parallel/step_clock.h)
  // objective = "dpo": the step's means over its pairs (loss above is the DPO loss).
  bool dpo = false;
  double chosen_reward = 0.0, rejected_reward = 0.0, reward_margin = 0.0, reward_accuracy = 0.0;
};

struct TrainSummary {
  std::vector<StepRecord> steps;
  int64_t last_step = 0;     // the last step trained
  StopRequest stopped;       // why it stopped before train.steps (none: it did not)
  std::vector<std::pair<int64_t, double>> val_losses;  // (step, mean loss)
  std::vector<LayerStats> layers;  // per-layer statistics ([logbook] layer_stats_every), every rank
  std::vector<std::pair<int64_t, DpoSums>> val_dpo;    // objective = "dpo": held-out pairs
  // [eval] prompts: (step, one greedy generation per prompt)
  std::vector<std::pair<int64_t, std::vector<std::string>>> eval_generations;
  double unigram_baseline = 0.0;                       // 0 without validation data
  std::string model_path;
};

struct RunOptions {
  bool write_model = true;   // the final model file
  bool checkpoints = true;   // saves per [checkpoint] (at least at the last step)
  int64_t stop_after = -1;   // >= 0: stop after this step (an interruption; for tests)
  // Not owned. control: after each step, every rank agrees whether to stop (a signal, the
  // deadline), and on a stop a checkpoint of that step is saved before run() returns. Long
  // phases ask it between their batches (validation, DPO's validation, the eval prompts: cut
  // short, then the step loop stops as usual; DPO's reference pass before the first step: run()
  // returns at once, stopped, nothing saved).
  // progress: the phase and step of this rank, for the watchdog.
  RunControl* control = nullptr;
  Progress* progress = nullptr;
};

class Trainer {
 public:
  // Loads the data, builds and initializes the model; collective over topo's communicator.
  // `topo` and `run_dir` are not owned and must outlive the trainer. `out` receives the
  // progress lines (rank 0).
  Trainer(const Config& cfg, Backend& be, Topology& topo, RunDirectory& run_dir,
          std::ostream& out);
  // Builds its own Topology over `comm` and RunDirectory at cfg.run.dir (printing on `out`).
  Trainer(const Config& cfg, Backend& be, MPI_Comm comm, std::ostream& out);
  ~Trainer();

  // Trains cfg.train.steps steps. write_model = false skips the final model file (layout
  // tests that compare parameters in memory).
  TrainSummary run(bool write_model = true);
  // Trains from the current step (0, or a resumed checkpoint's) to cfg.train.steps.
  TrainSummary run(const RunOptions& opt);

  // Collective: restores the checkpoint `path` (any layout): parameters, moments, optimizer
  // step count, step, tokens seen, data position. UserError for an invalid file, or one whose
  // seed or global batch differs from this config's (the data order would not continue).
  ResumePoint resume(const std::string& path);
  // Collective: resumes from the checkpoint RunDirectory::find_resume_checkpoint chooses (the
  // newest valid one, after removing interrupted saves' temporaries; each rejected file is
  // reported). nullopt when there is none (a fresh start).
  std::optional<ResumePoint> resume_latest();
  // Collective: a fresh run's weights from [train] init_from (train/init_from.h).
  void init_from(const std::string& source);
  int64_t start_step() const { return start_step_; }

  // Mean validation loss over `batches` validation micro-batches (nats/token). With `control`,
  // the ranks ask it between batches whether a stop is requested (a stop signal, the deadline):
  // then nullopt, the remaining batches skipped (a huge train.eval_batches ran for hours).
  std::optional<double> validate(int64_t batches, const RunControl* control);
  double validate(int64_t batches) { return *validate(batches, nullptr); }
  // This rank's parameters, gathered over dp (collective under ZeRO 2/3).
  const ParamStore& params() { return engine_->gathered_params(); }
  ParallelEngine& engine() { return *engine_; }
  RunDirectory& run_directory() { return run_dir_; }

 private:
  struct Owned;  // the Topology and RunDirectory of the communicator constructor
  Trainer(const Config& cfg, Backend& be, std::unique_ptr<Owned> owned, std::ostream& out);
  struct StepRun {  // a trained step: its record, the engine's stats, its data staging time
    StepRecord r;
    StepStats s;
    double data_s = 0.0, peak_bytes = kNotMeasured;
    std::optional<LayerStats> layers;
  };
  StepRun train_step(int64_t step);
  // Rolls back from the spike at `step` to the newest checkpoint before it (logbook.h:
  // spike_action = rollback); returns the checkpoint's step, where training goes on.
  int64_t roll_back(AsyncCheckpointer* saver, int64_t step);
  int64_t checkpoint_before(int64_t step) const;  // the newest saved step < step, or -1
  // The step's logbook row; val_loss NaN unless validated at this step.
  // train_s: the step's training alone (tokens/s and MFU); step_s: the whole step, with its
  // validation and checkpoint stall.
  void record_step(const StepRun& o, double train_s, double step_s, double stall_s, double val_loss);
  void save_checkpoint(AsyncCheckpointer& saver, int64_t step);
  void report(const std::string& line) const;  // rank 0: a line on out_
  // done: steps trained by this process so far (for the ETA).
  void print_step(const StepRecord& r, int64_t done, double elapsed_s, double tokens_per_s) const;

  std::unique_ptr<Owned> owned_;  // when built by the trainer itself
  Topology& topo_;
  RunDirectory& run_dir_;
  const Config cfg_;  // a copy: the trainer outlives the caller's temporaries
  Backend& be_;
  MPI_Comm comm_;
  std::ostream& out_;
  int rank_ = 0;
  LogbookObserver journal_;  // observes run_dir_ (events → the logbook's journal)

  TokenDataset train_data_;
  std::optional<TokenDataset> val_data_;
  StepRows rows_;                   // the step's rows by objective (lm or sft)
  std::optional<StepRows> val_rows_;
  BatchLayout layout_;

  std::unique_ptr<ParallelEngine> engine_;
  std::unique_ptr<DpoObjective> dpo_;  // objective = "dpo" (train/dpo_objective.h)
  std::unique_ptr<EvalPrompts> eval_prompts_;  // [eval] prompts (train/eval_prompts.h)
  LrSchedule schedule_;
  double flops_per_token_;  // MFU's numerator (model/model_flops.h), fixed for the run
  std::vector<int32_t> host_ids_, host_targets_;   // [M, B·T] staged for one step
  std::vector<int32_t> host_docs_;                 // [M, B·T] document starts (sft packing)
  int64_t start_step_ = 0;      // the last step already trained (a resumed checkpoint's)
  int64_t last_saved_step_ = 0; // the step of the previous checkpoint (data mapping start)
  // The logbook and spike handling (built by the first run(), collective).
  std::unique_ptr<StepGuard> guard_;
  std::optional<RunState> resumed_run_;  // the run state of the checkpoint resumed from
  std::set<int64_t> saved_steps_;        // checkpoints of this run that a rollback may use
  int64_t trained_ = 0;                  // steps trained by this process (test_kill hook)
  double logbook_s_ = 0.0, steps_s_ = 0.0;  // the logbook's time and the steps' (this process)
  int64_t timed_steps_ = 0;
  std::string resumed_from_;     // the checkpoint resumed from, if any
};

}  // namespace llmpi
