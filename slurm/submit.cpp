#include "slurm/submit.h"

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "config/config_schema.h"
#include "core/error.h"
#include "core/subprocess.h"
#include "core/version.h"
#include "jobs/run_claim.h"
#include "jobs/stop_signals.h"
#include "slurm/batch_script.h"

extern char** environ;

namespace llmpi {

namespace fs = std::filesystem;

namespace {

// Variables of the submitting shell that every rank gets, whatever the launcher.
bool passed_through(const std::string& name) {
  for (const char* prefix : {"NCCL_", "UCX_", "OMPI_MCA_"})
    if (name.rfind(prefix, 0) == 0) return true;
  return name == "CUDA_DEVICE_MAX_CONNECTIONS";
}

std::string stop_signal_text(StopSignal s) {
  for (const auto& e : config::enum_names(StopSignal{}))
    if (e.value == s) return std::string(e.name);
  return "USR1";
}

std::string timestamp(double unix_s) {
  const std::time_t t = std::time_t(unix_s);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

}  // namespace

SubmitContext current_submit_context(const std::vector<std::string>& argv) {
  SubmitContext c;
  c.cwd = fs::current_path().string();
  std::error_code ec;
  c.llmpi_bin = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec || c.llmpi_bin.empty()) c.llmpi_bin = fs::absolute(argv.empty() ? "llmpi" : argv[0]).string();
  c.llmpi_version = std::string("llmpi ") + kVersion + " (git " + kGitRevision + ")";
  for (char** e = environ; e && *e; ++e) c.environ.emplace_back(*e);
  for (size_t i = 0; i < argv.size(); ++i) c.command_line += (i ? " " : "") + shell_quote(argv[i]);
  c.now_unix = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return c;
}

std::string parse_sbatch_job_id(const std::string& out) {
  std::string id;
  for (char c : out) {
    if (std::isdigit(static_cast<unsigned char>(c))) id += c;
    else if (!id.empty() || !std::isspace(static_cast<unsigned char>(c))) break;
  }
  if (id.empty()) user_error("sbatch printed no job id: '", out, "'");
  return id;
}

BatchSpec make_batch_spec(const SubmitOptions& opt, const SubmitContext& ctx, std::string& run_dir) {
  const fs::path config_abs = fs::absolute(fs::path(ctx.cwd) / opt.config_path).lexically_normal();
  const Config cfg = load_config(config_abs.string(), opt.overrides);
  run_dir = (fs::path(ctx.cwd) / cfg.run.dir).lexically_normal().string();

  BatchSpec b;
  b.res = opt.res;
  const int64_t world = cfg.parallel.tp * cfg.parallel.pp * cfg.parallel.dp;
  if (b.res.nodes < 1) user_error("--nodes: expected at least 1, got ", b.res.nodes);
  if (b.res.tasks_per_node == 0) {
    if (world % b.res.nodes != 0)
      user_error("--nodes ", b.res.nodes, ": the config's layout needs tp x pp x dp = ",
                 cfg.parallel.tp, " x ", cfg.parallel.pp, " x ", cfg.parallel.dp, " = ", world,
                 " ranks, which do not split evenly over ", b.res.nodes, " nodes");
    b.res.tasks_per_node = world / b.res.nodes;
  }
  if (b.res.nodes * b.res.tasks_per_node != world)
    user_error("--nodes ", b.res.nodes, " x --tasks-per-node ", b.res.tasks_per_node, " = ",
               b.res.nodes * b.res.tasks_per_node, " ranks, but the config's layout needs tp x pp x dp = ",
               cfg.parallel.tp, " x ", cfg.parallel.pp, " x ", cfg.parallel.dp, " = ", world,
               " (change [parallel] with --set, or the Slurm request)");

  const std::string configured = stop_signal_text(cfg.run.stop_signal);
  b.stop_signal = opt.signal.empty() ? configured : parse_stop_signal(opt.signal, "--signal");
  b.signal_margin_s = opt.signal_margin_s;
  b.launcher = opt.launcher;
  b.max_requeues = opt.max_requeues;
  b.chain_length = opt.chain;
  b.workdir = ctx.cwd;
  b.output = (fs::path(slurm_dir(run_dir)) / "%j.out").string();
  b.run_dir = run_dir;
  b.llmpi_bin = ctx.llmpi_bin;
  b.llmpi_version = ctx.llmpi_version;
  b.job_name = opt.job_name.empty() ? "llmpi-" + fs::path(run_dir).filename().string() : opt.job_name;
  b.submitted_with = ctx.command_line;

  b.train_args = {"train", config_abs.string()};
  for (const std::string& o : opt.overrides) {
    b.train_args.push_back("--set");
    b.train_args.push_back(o);
  }
  if (b.stop_signal != configured) {
    b.train_args.push_back("--set");
    b.train_args.push_back("run.stop_signal=" + b.stop_signal);
  }
  const std::string backend = !opt.backend.empty() ? opt.backend : b.res.gpus_per_task > 0 ? "cuda" : "";
  if (backend == "host" && b.res.gpus_per_task > 0)
    user_error("--backend host with --gpus-per-task ", b.res.gpus_per_task,
               ": the GPUs would sit idle; drop one of the two");
  if (!backend.empty() && backend != "host" && backend != "cuda")
    user_error("--backend: expected host or cuda, got '", backend, "'");
  if (!backend.empty()) {
    b.train_args.push_back("--backend");
    b.train_args.push_back(backend);
  }

  for (const std::string& kv : ctx.environ) {
    const size_t eq = kv.find('=');
    if (eq != std::string::npos && passed_through(kv.substr(0, eq)))
      b.env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  for (const std::string& kv : opt.env) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) user_error("--env: expected KEY=VALUE, got '", kv, "'");
    const std::string key = kv.substr(0, eq);
    std::erase_if(b.env, [&](const auto& e) { return e.first == key; });  // --env wins
    b.env.emplace_back(key, kv.substr(eq + 1));
  }
  b.sbatch_extra = opt.sbatch_extra;
  b.launcher_extra = opt.launcher_extra;
  validate_batch_spec(b);
  return b;
}

SubmitResult submit(const SubmitOptions& opt, const SubmitContext& ctx) {
  std::string run_dir;
  const BatchSpec spec = make_batch_spec(opt, ctx, run_dir);
  SubmitResult res;
  res.run_dir = run_dir;
  res.script_text = render_batch_script(spec);
  if (opt.dry_run) return res;

  // The job's files go into run.dir: it must be (or become) an llmpi run directory.
  if (const std::string why = claim_run_directory(run_dir, /*checkpoints=*/true); !why.empty())
    throw UserError(why);
  const fs::path dir = slurm_dir(run_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) user_error(dir.string(), ": cannot create the directory (", ec.message(), ")");
  std::string base = "submit-" + timestamp(ctx.now_unix);
  fs::path script = dir / (base + ".sbatch");
  // A free name: nothing there, not even a dangling link (ofstream would write through it).
  const auto taken = [&](const fs::path& p) { return fs::exists(fs::symlink_status(p, ec)); };
  for (int n = 2; taken(script); ++n) script = dir / (base + "-" + std::to_string(n) + ".sbatch");
  {
    std::ofstream out(script);
    out << res.script_text;
    out.close();
    if (!out) user_error(script.string(), ": cannot write the batch script");
  }
  fs::permissions(script, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add, ec);
  res.script_path = script.string();

  std::string previous;
  for (int64_t i = 1; i <= opt.chain; ++i) {
    std::vector<std::string> argv = {"sbatch", "--parsable"};
    if (!previous.empty()) argv.push_back("--dependency=afterany:" + previous);
    argv.push_back("--export=ALL,LLMPI_CHAIN_INDEX=" + std::to_string(i) +
                   ",LLMPI_CHAIN_LENGTH=" + std::to_string(opt.chain));
    argv.push_back(res.script_path);
    const ProcessResult p = run_process(argv, 120.0);
    if (!p.ok()) {
      std::string why = !p.started ? p.error
                        : p.timed_out ? "no answer within 120 s"
                                      : "exit " + std::to_string(p.exit_code) + ": " + p.err + p.out;
      while (!why.empty() && std::isspace(static_cast<unsigned char>(why.back()))) why.pop_back();
      user_error("sbatch ", res.script_path, " failed",
                 i > 1 ? " for chain job " + std::to_string(i) + " (the earlier ones are submitted)" : "",
                 ": ", why);
    }
    JobRecord r;
    r.job_id = parse_sbatch_job_id(p.out);
    r.chain_index = i;
    r.chain_length = opt.chain;
    r.depends_on = previous;
    r.submitted_unix = ctx.now_unix;
    r.script = res.script_path;
    r.output = spec.output;
    r.nodes = spec.res.nodes;
    r.tasks_per_node = spec.res.tasks_per_node;
    r.gpus_per_task = spec.res.gpus_per_task;
    r.time_limit_s = spec.res.time_limit_s;
    r.partition = spec.res.partition;
    r.launcher = spec.launcher == Launcher::mpirun ? "mpirun" : "srun";
    r.llmpi_version = spec.llmpi_version;
    append_job_record(run_dir, r);
    res.jobs.push_back(r);
    previous = r.job_id;
  }
  return res;
}

}  // namespace llmpi
