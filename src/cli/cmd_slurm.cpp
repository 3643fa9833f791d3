// `llmpi slurm submit CONFIG [--set ...] --nodes N ...`: renders the run's batch script and
// submits it (slurm/submit.h); the `slurm` group itself only lists its commands. Needs no MPI:
// it runs on a login node.
#include <chrono>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/options.h"
#include "core/error.h"
#include "slurm/batch_script.h"
#include "slurm/submit.h"

namespace llmpi {
namespace {

constexpr const char* kGroupDescription = R"(Runs llmpi as Slurm batch jobs: `submit` renders a batch script for a run and submits it
(or a chain of them); `status` tells what became of a run's jobs. docs/slurm.md explains
preemption, deadlines, chains, the watchdog and the exit codes.
)";

constexpr const char* kSubmitDescription = R"(Renders a Slurm batch script that trains CONFIG (with the --set overrides) and submits it
with sbatch. The rank count is the config's tp x pp x dp; --tasks-per-node defaults to it
divided by --nodes. The script asks Slurm for --signal=B:<SIG>@<margin> before the time
limit, --requeue and --open-mode=append; it forwards the stop signal to the training step,
which saves a checkpoint and exits 75 (preempted) or 76 (time limit); the script then
requeues itself (at most --max-requeues times) or leaves the run to the next job of the
chain. Every relaunch resumes from the newest valid checkpoint, so the script never changes.
Written to <run.dir>/slurm/submit-<time>.sbatch; each job is recorded in
<run.dir>/slurm/jobs.jsonl and logs to <run.dir>/slurm/<job id>.out.
The environment's NCCL_*, UCX_* and OMPI_MCA_* variables are passed to every rank; add
others with --env. --dry-run prints the script and submits nothing.
)";

struct SubmitArgs {
  SubmitOptions opt;
  std::string time, launcher = "srun";
};

// The submission as a command line, for the script's header (canonical order).
std::string command_line(const SubmitArgs& a) {
  const SubmitOptions& o = a.opt;
  std::string s = "llmpi slurm submit " + shell_quote(o.config_path);
  for (const std::string& v : o.overrides) s += " --set " + shell_quote(v);
  s += " --nodes " + std::to_string(o.res.nodes);
  if (o.res.tasks_per_node) s += " --tasks-per-node " + std::to_string(o.res.tasks_per_node);
  if (o.res.gpus_per_task) s += " --gpus-per-task " + std::to_string(o.res.gpus_per_task);
  if (o.res.cpus_per_task) s += " --cpus-per-task " + std::to_string(o.res.cpus_per_task);
  for (const auto& [flag, v] : {std::pair<const char*, const std::string*>{"--partition", &o.res.partition},
                                {"--account", &o.res.account}, {"--qos", &o.res.qos},
                                {"--time", &a.time}, {"--constraint", &o.res.constraint},
                                {"--signal", &o.signal}, {"--backend", &o.backend},
                                {"--job-name", &o.job_name}})
    if (!v->empty()) s += std::string(" ") + flag + " " + shell_quote(*v);
  s += " --signal-margin " + std::to_string(o.signal_margin_s);
  if (a.launcher != "srun") s += " --launcher " + a.launcher;
  s += " --max-requeues " + std::to_string(o.max_requeues);
  if (o.chain > 1) s += " --chain " + std::to_string(o.chain);
  for (const std::string& v : o.env) s += " --env " + shell_quote(v);
  for (const std::string& v : o.sbatch_extra) s += " --sbatch-arg " + shell_quote(v);
  for (const std::string& v : o.launcher_extra) s += " --launcher-arg " + shell_quote(v);
  return s;
}

int run_submit(SubmitArgs& a) {
  SubmitOptions& o = a.opt;
  if (!a.time.empty()) o.res.time_limit_s = parse_slurm_time(a.time, "--time");
  o.launcher = a.launcher == "mpirun" ? Launcher::mpirun : Launcher::srun;
  SubmitContext ctx = current_submit_context({});
  ctx.command_line = command_line(a);
  const SubmitResult r = submit(o, ctx);
  if (o.dry_run) {
    std::cout << r.script_text << std::flush;
    std::cerr << "llmpi slurm submit: --dry-run: nothing submitted\n";
    return 0;
  }
  std::cout << "batch script: " << r.script_path << "\n";
  for (const JobRecord& j : r.jobs) {
    std::cout << "submitted job " << j.job_id;
    if (j.chain_length > 1) std::cout << " (chain job " << j.chain_index << " of " << j.chain_length;
    if (!j.depends_on.empty()) std::cout << ", after job " << j.depends_on;
    if (j.chain_length > 1) std::cout << ")";
    std::cout << ": output " << job_output_path(j) << "\n";
  }
  std::cout << "follow it with: llmpi slurm status " << r.run_dir << "\n" << std::flush;
  return 0;
}

}  // namespace

CommandSpec slurm_command() {
  return {"slurm", "<command> [options]", "run training as Slurm batch jobs: submit, status",
          kGroupDescription, {}};
}

CommandSpec slurm_submit_command() {
  return {"slurm submit", "CONFIG [--set section.key=value ...] --nodes N [options]",
          "render and submit the batch script of a run (or a chain of jobs)", kSubmitDescription,
          [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<SubmitArgs>();
            SubmitOptions& o = a->opt;
            add_value(app, "CONFIG", o.config_path, "CONFIG", "the run's TOML config")->required();
            add_list(app, "--set", o.overrides, "section.key=value", "override one config key (repeatable)");
            add_value(app, "--nodes", o.res.nodes, "N", "nodes")->required()->check(at_least(1));
            add_value(app, "--tasks-per-node", o.res.tasks_per_node, "T",
                      "MPI ranks per node (default: tp x pp x dp / nodes)")->check(at_least(1));
            add_value(app, "--gpus-per-task", o.res.gpus_per_task, "G",
                      "GPUs per rank (default 0; > 0 trains with --backend cuda)")->check(at_least(0));
            add_value(app, "--cpus-per-task", o.res.cpus_per_task, "C", "CPU cores per rank")->check(at_least(1));
            add_value(app, "--partition", o.res.partition, "NAME", "Slurm partition");
            add_value(app, "--account", o.res.account, "NAME", "account to charge");
            add_value(app, "--qos", o.res.qos, "NAME", "quality of service");
            add_value(app, "--time", a->time, "TIME", "time limit per job: minutes, H:M:S, D-H:M:S, ...");
            add_value(app, "--constraint", o.res.constraint, "FEATURES", "node features (sbatch --constraint)");
            add_value(app, "--signal", o.signal, "SIG",
                      "stop signal: USR1, USR2 or TERM (default: the config's [run] stop_signal)");
            add_value(app, "--signal-margin", o.signal_margin_s, "SECONDS",
                      "send it this long before the time limit (default 180)")->check(at_least(1));
            add_value(app, "--launcher", a->launcher, "srun|mpirun",
                      "how the script starts the ranks (default srun --mpi=pmix)")->check(one_of({"srun", "mpirun"}));
            add_value(app, "--max-requeues", o.max_requeues, "N",
                      "at most this many self-requeues per job (default 5)")->check(at_least(0));
            add_value(app, "--chain", o.chain, "K",
                      "submit K jobs, each starting after the previous one ends (afterany)")->check(at_least(1));
            add_list(app, "--env", o.env, "KEY=VALUE", "export to every rank (repeatable)");
            add_list(app, "--sbatch-arg", o.sbatch_extra, "OPTION",
                     "one more #SBATCH option, e.g. --sbatch-arg=--exclusive (repeatable)");
            add_list(app, "--launcher-arg", o.launcher_extra, "OPTION",
                     "one more srun/mpirun option (repeatable)");
            add_value(app, "--backend", o.backend, "host|cuda", "the training backend")->check(one_of({"host", "cuda"}));
            add_value(app, "--job-name", o.job_name, "NAME", "Slurm job name (default llmpi-<run dir name>)");
            add_switch(app, "--dry-run", o.dry_run, "print the script; submit and record nothing");
            return [a](CommandEnv&) { return run_submit(*a); };
          }};
}

}  // namespace llmpi
