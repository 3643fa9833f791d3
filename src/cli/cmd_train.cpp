// `llmpi train CONFIG [--set section.key=value ...] [--resume PATH | --no-resume]`
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "cli/args.h"
#include "cli/backend_option.h"
#include "cli/commands.h"
#include "config/config.h"
#include "core/error.h"
#include "core/runtime.h"
#include "parallel/communicator.h"
#include "parallel/topology.h"
#include "train/trainer.h"

namespace llmpi {

namespace {
constexpr const char* kHelp = R"(usage: llmpi train CONFIG [--set section.key=value ...] [--resume PATH | --no-resume]
                   [--no-save]

Trains the model described by the TOML file CONFIG (see configs/ and docs/config.md).
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
(batch_size x micro_batches x dp) and train.seed must be those of the saved run.

options:
  --set section.key=value   override one config key (repeatable), e.g. --set train.steps=50
  --resume PATH             continue from this checkpoint file (an error if it is invalid)
  --no-resume               start from step 0 even when run.dir holds checkpoints (they are
                            overwritten step by step and subject to retention)
  --no-save                 write no checkpoints and no model file (benchmarks, dry runs)
  -h, --help                this help
)";
}  // namespace

int cmd_train(const std::vector<std::string>& argv, Runtime& rt) {
  Args args(argv, "llmpi train");
  if (args.help_requested()) {
    std::cout << kHelp << kBackendOptionHelp;
    return 0;
  }
  const auto overrides = args.get_all("--set");
  const std::string backend = args.get("--backend", "host");
  const std::optional<std::string> resume = args.get("--resume");
  const bool fresh = args.flag("--no-resume");
  const bool no_save = args.flag("--no-save");
  const auto pos = args.positionals();
  args.finish();
  if (pos.size() != 1) user_error("llmpi train: expected exactly one CONFIG file (see --help)");
  if (resume && fresh) user_error("llmpi train: --resume and --no-resume exclude each other");
  // Setup, in order: config (same file on every rank), Topology (validates the layout on
  // every rank alike; LayoutError), then data and model. A UserError during setup is agreed
  // on by all ranks: the lowest failing rank prints it, every rank returns 2 — no rank is
  // left waiting. Errors during training itself abort the job (main.cpp).
  std::unique_ptr<Backend> be;
  std::unique_ptr<Topology> topo;
  std::unique_ptr<Trainer> trainer;
  std::string failure;
  try {
    const Config cfg = load_config(pos[0], overrides);
    topo = std::make_unique<Topology>(cfg, MPI_COMM_WORLD);
    be = make_backend_option(backend, "llmpi train");
    trainer = std::make_unique<Trainer>(cfg, *be, *topo, std::cout);
    // Collective on every rank alike: an invalid --resume file fails on all of them.
    bool resumed = false;
    if (resume) {
      if (resume->empty()) user_error("llmpi train: --resume needs a checkpoint file");
      trainer->resume(*resume);
      resumed = true;
    } else if (!fresh) {
      resumed = trainer->resume_latest().has_value();  // the run dir's newest valid checkpoint
    }
    if (!resumed && !cfg.train.init_from.empty()) trainer->init_from(cfg.train.init_from);
  } catch (const UserError& e) {
    if (rt.world_size() == 1) throw;  // the usual single-process error path (main.cpp)
    failure = e.what();
  }
  if (rt.world_size() > 1) {
    const int mine = failure.empty() ? rt.world_size() : rt.world_rank();
    int first = 0;
    check_mpi(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
    if (first < rt.world_size()) {
      if (rt.world_rank() == first) {
        std::cerr << "llmpi train: error: " << failure;
        if (first != 0) std::cerr << " (on rank " << first << ")";
        std::cerr << "\n" << std::flush;
      }
      return 2;
    }
  }
  trainer->run(RunOptions{.write_model = !no_save, .checkpoints = !no_save});
  return 0;
}

}  // namespace llmpi
