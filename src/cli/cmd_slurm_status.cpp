// `llmpi slurm status RUN_DIR`: a run's Slurm jobs, segments, requeues, last checkpoint,
// progress and ETA (slurm/run_status.h). Needs no MPI.
#include <chrono>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/options.h"
#include "slurm/run_status.h"

namespace llmpi {
namespace {

constexpr const char* kDescription = R"(Tells what became of a run submitted with `llmpi slurm submit`: its jobs with their Slurm
state (scontrol, else sacct), every launch of the training step (segment) with the steps it
trained and how it ended (finished, preempted and requeued, time limit, hang), the number of
requeues, the newest checkpoint, progress against train.steps, and an ETA while a job runs.
Reads the run directory (slurm/jobs.jsonl, the jobs' output files, checkpoints/,
config.toml); --no-slurm leaves Slurm's commands out.
)";

struct StatusArgs {
  std::string run_dir;
  bool no_slurm = false;
};

}  // namespace

CommandSpec slurm_status_command() {
  return {"slurm status", "RUN_DIR [--no-slurm]",
          "jobs, segments, requeues, last checkpoint, progress and ETA of a run", kDescription,
          [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<StatusArgs>();
            add_value(app, "RUN_DIR", a->run_dir, "RUN_DIR", "the run directory (run.dir)")->required();
            add_switch(app, "--no-slurm", a->no_slurm, "do not ask Slurm (scontrol, sacct) for job states");
            return [a](CommandEnv&) {
              const double now = std::chrono::duration<double>(
                                     std::chrono::system_clock::now().time_since_epoch()).count();
              const RunStatus s = read_run_status(a->run_dir, !a->no_slurm, now);
              std::cout << format_run_status(s, now) << std::flush;
              return 0;
            };
          }};
}

}  // namespace llmpi
