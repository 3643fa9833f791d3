// `llmpi train CONFIG [--set section.key=value ...] [--resume PATH | --no-resume]`
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "cli/backend_option.h"
#include "cli/command.h"
#include "cli/options.h"
#include "config/config.h"
#include "core/agreement.h"
#include "core/error.h"
#include "core/runtime.h"
#include "io/hdf5_open_files.h"
#include "jobs/launch.h"
#include "jobs/run_dir.h"
#include "parallel/communicator.h"
#include "parallel/topology.h"
#include "train/trainer.h"

namespace llmpi {

namespace {
constexpr const char* kDescription = R"(Trains the model described by the TOML file CONFIG (see configs/ and docs/config.md).
Runs on any number of MPI ranks: the [parallel] section's tp x pp x dp must equal the
number of ranks (e.g. mpiexec -n 2 llmpi train CONFIG --set parallel.dp=2). Every rank's
memory for parameters, gradients and optimizer state is printed at start-up.
Prints one line per logged step (step, loss, lr, gradient norm, tokens/s, elapsed, ETA),
validation losses, and writes <run.dir>/model.h5 and <run.dir>/config.toml.
Checkpoints are saved to <run.dir>/checkpoints/ per the [checkpoint] section (always at
the last step), in the background; the stall of each save is printed.
Resume: when <run.dir> holds a valid checkpoint, training continues from the newest one
(corrupt or partial newer files are reported and skipped) under any parallel layout, with
the same data order; the checkpoint and its step are printed. The global batch
(batch_size x micro_batches x dp) and train.seed must be those of the saved run, and the
model may not change (docs/slurm.md lists what a relaunch may change).
Checkpoints none of which loads stop the run with the list of files and reasons.
run.dir must be new, empty or an llmpi run directory (marker .llmpi-run) and writable;
both are checked at start-up. A model that cannot fit in memory is refused before
anything is allocated, naming the keys that drive its size.
Stopping: the [run] stop_signal (USR1 by default), SIGTERM or Ctrl-C make every rank stop
after the current step, save a checkpoint and exit 75; a second one exits at once. Before
[run] deadline or the Slurm job's end time the run saves and exits 76. A rank that makes no
progress within the [watchdog] limits ends the job with exit 79. One job at a time may
write a run directory (<run.dir>/lock).
)";

struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string backend = "host";
  std::string resume;
  bool has_resume = false;
  bool fresh = false;
  bool no_save = false;
};

int run_train(const TrainArgs& a, CommandEnv& env) {
  Runtime& rt = env.runtime();
  // Setup, in order: config (same file on every rank), Topology (validates the layout on
  // every rank alike; LayoutError), then data and model; then training. A UserError of
  // either phase is agreed on by all ranks (core/agreement.h): rank 0 prints the lowest
  // failing rank's message once, every rank returns 2. One that only some ranks found (the
  // others wait in a collective) ends the job within kAgreementWait_s — no rank is left
  // waiting. Other errors abort the job (main.cpp).
  constexpr double kAgreementWait_s = 30;
  // The agreement's own communicator: a rank that fails before the Topology exists must not
  // meet the others' MPI_Comm_dup of MPI_COMM_WORLD with its vote.
  const Communicator agreement =
      rt.world_size() > 1 ? Communicator::dup(MPI_COMM_WORLD, "agreement") : Communicator();
  auto agreed_exit = [&](const std::string& failure) {  // 0: no rank failed, else 2
    if (rt.world_size() == 1) return 0;
    const AgreedFailure f = agree_or_abort(agreement.get(), failure, kAgreementWait_s, "llmpi train");
    if (!f) return 0;
    if (rt.world_rank() == 0) std::cerr << "llmpi train: error: " << f.text() << "\n" << std::flush;
    h5::exit_if_files_left_open(2);  // a failed save's file would crash MPI_Finalize's clean-up
    return 2;
  };
  std::unique_ptr<Backend> be;
  std::unique_ptr<Topology> topo;
  std::unique_ptr<RunDirectory> run_dir;
  std::unique_ptr<Trainer> trainer;
  std::unique_ptr<Launch> launch;  // stop signals, watchdog, lock (jobs/launch.h)
  std::optional<Config> cfg;
  std::string failure;
  try {
    cfg = load_config(a.config, a.overrides);
    launch = std::make_unique<Launch>(*cfg, rt.world_rank());
    topo = std::make_unique<Topology>(*cfg, MPI_COMM_WORLD);
    launch->watch(*topo);
    run_dir = std::make_unique<RunDirectory>(cfg->run.dir, topo->world_communicator().get(),
                                             std::cout);
    // Before anything is written there (the lock included): a foreign or unwritable run.dir
    // is refused at once.
    if (!a.no_save) run_dir->claim(/*checkpoints=*/true);
    launch->lock(cfg->run.dir, topo->world_communicator().get());  // rank 0 takes it
    be = make_backend_option(a.backend, "llmpi train");
    trainer = std::make_unique<Trainer>(*cfg, *be, *topo, *run_dir, std::cout);
    // A requeue, hangs of the previous launch: after the trainer, whose journal observer
    // takes them into the logbook (a launch that fails before leaves the hang reports on
    // disk for the next one).
    launch->announce(cfg->run.dir, *run_dir);
    // Collective on every rank alike: an invalid --resume file fails on all of them.
    bool resumed = false;
    if (a.has_resume) {
      if (a.resume.empty()) user_error("llmpi train: --resume needs a checkpoint file");
      trainer->resume(a.resume);
      resumed = true;
    } else if (!a.fresh) {
      resumed = trainer->resume_latest().has_value();  // the run dir's newest valid checkpoint
    } else if (!a.no_save) {
      run_dir->set_aside_unreadable();  // a fresh start never overwrites what it cannot read
    }
    if (!resumed && !cfg->train.init_from.empty()) trainer->init_from(cfg->train.init_from);
    launch->begin(*cfg, topo->world_communicator().get(), trainer->engine().global_param_count(),
                  *run_dir);
  } catch (const UserError& e) {
    if (rt.world_size() == 1) throw;  // the usual single-process error path (main.cpp)
    failure = e.what();
  }
  if (const int code = agreed_exit(failure)) return code;
  RunOptions opt{.write_model = !a.no_save, .checkpoints = !a.no_save};
  opt.control = launch->control();
  opt.progress = launch->progress();
  StopRequest stopped;
  try {
    stopped = trainer->run(opt).stopped;
  } catch (const UserError& e) {
    if (rt.world_size() == 1) throw;
    failure = e.what();
  }
  if (const int code = agreed_exit(failure)) return code;
  // 0, or 75 / 76 when a stop signal or the deadline ended the run early after a checkpoint.
  return Launch::exit_code(stopped);
}

}  // namespace

CommandSpec train_command() {
  return {"train", "CONFIG [--set section.key=value ...] [--resume PATH | --no-resume] [--no-save]",
          "train a model from a TOML config (resumes its run directory)", kDescription,
          [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<TrainArgs>();
            add_value(app, "CONFIG", a->config, "CONFIG", "the run's TOML config")->required();
            add_list(app, "--set", a->overrides, "section.key=value",
                     "override one config key (repeatable), e.g. --set train.steps=50");
            Opt resume = add_value(
                app, "--resume", a->resume, "PATH",
                "continue from this checkpoint file (an error if it is invalid)");
            Opt fresh = add_switch(
                app, "--no-resume", a->fresh,
                "start from step 0 even when run.dir holds checkpoints (valid ones are\n"
                "overwritten step by step and subject to retention; unreadable ones are\n"
                "moved aside as <name>.unreadable)");
            resume->excludes(fresh);
            add_switch(app, "--no-save", a->no_save,
                       "write no checkpoints and no model file (benchmarks, dry runs)");
            add_backend_option(app, a->backend);
            return [a, resume](CommandEnv& env) {
              a->has_resume = resume->count() > 0;
              return run_train(*a, env);
            };
          }};
}

}  // namespace llmpi
