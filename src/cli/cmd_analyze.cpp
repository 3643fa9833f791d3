// `llmpi analyze RUN_DIR [--out DIR] [--eval SHARD]`: the training-dynamics report of a run.
#include <iostream>
#include <memory>
#include <string>

#include "analysis/analyze.h"
#include "backend/backend.h"
#include "cli/backend_option.h"
#include "cli/command.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/runtime.h"

namespace llmpi {

namespace {
constexpr const char* kDescription = R"(Studies a run directory offline (no Python needed) and writes a report: one self-contained
HTML file with SVG charts, plus the CSV of every table behind them (data/) and report.json.
From logbook.h5: loss, validation loss, learning rate, gradient norm, throughput and the
time split per step, with spikes, skipped updates, rollbacks and restarts marked; per-layer
statistics; the lineage and the journal. From the checkpoints (any mix of parallel layouts):
weight norms per layer, ||dW||/||W|| between consecutive checkpoints per tensor, cosine
similarity to the final checkpoint, the data->checkpoint map; with --eval, the loss of every
checkpoint on that shard; and memorization over time (the fraction of a 32-token
continuation each checkpoint reproduces greedily for training samples it saw).
Runs under mpiexec, spreading the checkpoints over the ranks; each rank holds one
checkpoint's model (or three tensors) at a time. A partial run gives a partial report with
notes (a damaged checkpoint or logbook is left out and named). The exit status is 2 when
nothing can be reported, or at once, before any work, when an input named on the command
line is unusable: RUN_DIR not a directory, --eval or --train-data not token shards, --out
not a directory, or --out holding files of those names that an earlier analyze did not write
(replaced only with --force; recognised by report.json).
)";

struct AnalyzeArgs {
  AnalyzeOptions opt;
  std::string backend = "host";
};

int run_analyze(const AnalyzeArgs& a, CommandEnv& env) {
  Runtime& rt = env.runtime();
  std::unique_ptr<Backend> be = make_backend_option(a.backend, "llmpi analyze");
  try {
    analyze_run(a.opt, *be, MPI_COMM_WORLD, std::cout);
  } catch (const UserError& e) {
    // The run directory is judged alike on every rank (the same files, after the same
    // collectives): rank 0 says why, every rank exits 2.
    if (rt.world_size() == 1) throw;
    if (rt.world_rank() == 0) std::cerr << "llmpi analyze: error: " << e.what() << "\n" << std::flush;
    return 2;
  }
  return 0;
}

}  // namespace

CommandSpec analyze_command() {
  return {"analyze", "RUN_DIR [--out DIR] [--eval SHARD] [options]",
          "training-dynamics report of a run (HTML with charts, CSV, JSON)", kDescription,
          [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<AnalyzeArgs>();
            add_value(app, "RUN_DIR", a->opt.run_dir, "RUN_DIR", "the run directory (run.dir of its config)")
                ->required();
            add_value(app, "--out", a->opt.out_dir, "DIR", "where to write the report (default RUN_DIR/analysis)");
            add_value(app, "--eval", a->opt.eval_data, "SHARD",
                      "token shard(s) (path or glob): the loss of every checkpoint on them");
            add_value(app, "--eval-batches", a->opt.eval_batches, "N",
                      "batches of train.batch_size sequences per evaluation (default 16; 0 = all)")
                ->check(at_least(0));
            add_value(app, "--train-data", a->opt.train_data, "PATH|GLOB",
                      "the run's training shards for memorization (default: data.train of its\n"
                      "config, relative to the current directory)");
            add_value(app, "--memorization-samples", a->opt.probe_samples, "K",
                      "training samples probed per checkpoint interval (default 8; 0 = no\n"
                      "memorization)")
                ->check(at_least(0));
            add_switch(app, "--force", a->opt.force,
                       "replace report files in --out that an earlier analyze did not write");
            add_backend_option(app, a->backend);
            return [a](CommandEnv& env) { return run_analyze(*a, env); };
          }};
}

}  // namespace llmpi
