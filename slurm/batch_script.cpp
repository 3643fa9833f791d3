#include "slurm/batch_script.h"

#include <cctype>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "core/excerpt.h"
#include "jobs/exit_codes.h"
#include "jobs/stop_signals.h"

namespace llmpi {
namespace {

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

bool is_env_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

// `value` with control characters spelt out ("\n", "\x1b"), for a message.
std::string visible(const std::string& value) {
  std::string out;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else out += c;
  }
  return out;
}

// Every value lands on one line of the script (a #SBATCH directive, the header comment, an
// export or the launch line): a line break would end that line early and make the rest a
// command of its own, so a control character in any value is refused.
void check_one_line(const std::string& value, const std::string& what) {
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f)
      user_error(what, ": '", excerpt(visible(value)),
                 "' holds a control character (a line break?); expected one line of text, as "
                 "every value goes on one line of the batch script");
  }
}

}  // namespace

int64_t parse_slurm_time(const std::string& text, const std::string& what) {
  auto bad = [&]() -> int64_t {
    user_error(what, ": '", text, "' is not a Slurm time (minutes, M:S, H:M:S, D-H, D-H:M or "
               "D-H:M:S, e.g. 90, 2:00:00 or 1-12:00:00)");
  };
  int64_t days = 0;
  std::string rest = text;
  const size_t dash = text.find('-');
  if (dash != std::string::npos) {
    const std::string d = text.substr(0, dash);
    if (!all_digits(d)) return bad();
    days = std::stoll(d);
    rest = text.substr(dash + 1);
  }
  const std::vector<std::string> f = split(rest, ':');
  if (f.size() > 3) return bad();
  int64_t v[3] = {0, 0, 0};
  for (size_t i = 0; i < f.size(); ++i) {
    if (!all_digits(f[i]) || f[i].size() > 9) return bad();
    v[i] = std::stoll(f[i]);
  }
  int64_t s = 0;
  if (dash != std::string::npos) {  // D-H, D-H:M, D-H:M:S
    s = days * 86400 + v[0] * 3600 + (f.size() > 1 ? v[1] * 60 : 0) + (f.size() > 2 ? v[2] : 0);
  } else if (f.size() == 1) {  // M
    s = v[0] * 60;
  } else if (f.size() == 2) {  // M:S
    s = v[0] * 60 + v[1];
  } else {  // H:M:S
    s = v[0] * 3600 + v[1] * 60 + v[2];
  }
  if (s <= 0) user_error(what, ": '", text, "' is no time at all; give a positive limit");
  return s;
}

std::string format_slurm_time(int64_t seconds) {
  char buf[48];
  const long long d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60,
                  s = seconds % 60;
  if (d > 0)
    std::snprintf(buf, sizeof buf, "%lld-%02lld:%02lld:%02lld", d, h, m, s);
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", h, m, s);
  return buf;
}

void validate_batch_spec(const BatchSpec& b) {
  const SlurmResources& r = b.res;
  if (r.nodes < 1) user_error("--nodes: expected at least 1, got ", r.nodes);
  if (r.tasks_per_node < 1) user_error("--tasks-per-node: expected at least 1, got ", r.tasks_per_node);
  if (r.gpus_per_task < 0) user_error("--gpus-per-task: expected 0 or more, got ", r.gpus_per_task);
  if (r.cpus_per_task < 0) user_error("--cpus-per-task: expected 0 or more, got ", r.cpus_per_task);
  parse_stop_signal(b.stop_signal, "--signal");
  if (b.signal_margin_s < 1) user_error("--signal-margin: expected at least 1 second, got ", b.signal_margin_s);
  if (r.time_limit_s > 0 && b.signal_margin_s >= r.time_limit_s)
    user_error("--signal-margin: ", b.signal_margin_s, " s is not less than the time limit (",
               format_slurm_time(r.time_limit_s), "); the signal would come before the job starts");
  if (b.launcher == Launcher::mpirun && b.stop_signal == "TERM")
    user_error("--signal TERM with --launcher mpirun: mpirun ends the job on SIGTERM instead of "
               "forwarding it; use USR1 or USR2 (and the same [run] stop_signal)");
  if (b.max_requeues < 0) user_error("--max-requeues: expected 0 or more, got ", b.max_requeues);
  if (b.chain_length < 1) user_error("--chain: expected at least 1 job, got ", b.chain_length);
  for (const auto* p : {&b.workdir, &b.output, &b.llmpi_bin, &b.run_dir})
    LLMPI_CHECK(!p->empty() && (*p)[0] == '/', "batch spec path not absolute: '", *p, "'");
  LLMPI_CHECK(!b.train_args.empty(), "batch spec without a command");
  for (const auto& [k, v] : b.env)
    if (!is_env_name(k)) user_error("--env: '", k, "' is not an environment variable name");
  for (const std::string& s : b.sbatch_extra) {
    check_one_line(s, "--sbatch-arg");
    if (s.rfind("--", 0) != 0)
      user_error("--sbatch-arg: expected one sbatch option such as --exclusive or --mem=0, got '", s, "'");
  }
  for (const auto& [value, what] : {std::pair<const std::string*, const char*>{&b.job_name, "--job-name"},
                                    {&r.partition, "--partition"}, {&r.account, "--account"},
                                    {&r.qos, "--qos"}, {&r.constraint, "--constraint"},
                                    {&b.workdir, "the working directory"},
                                    {&b.run_dir, "run.dir"}, {&b.output, "the job output path"},
                                    {&b.llmpi_bin, "the llmpi binary's path"},
                                    {&b.submitted_with, "the submitting command line"}})
    check_one_line(*value, what);
  for (const auto& [k, v] : b.env) check_one_line(v, "--env " + k);
  for (const std::string& s : b.launcher_extra) check_one_line(s, "--launcher-arg");
  for (const std::string& s : b.train_args) check_one_line(s, "the training command (CONFIG or --set)");
}

std::string shell_quote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789_-.,/:=@+%") == std::string::npos)
    return word;
  std::string q = "'";
  for (char c : word) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string render_batch_script(const BatchSpec& b) {
  validate_batch_spec(b);
  const SlurmResources& r = b.res;
  const bool mpirun = b.launcher == Launcher::mpirun;
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# llmpi batch job '" << b.job_name << "', rendered by " << b.llmpi_version << ":\n"
    << "#   " << b.submitted_with << "\n"
    << "# Submitting it again (as is, or by Slurm's requeue) continues the same run: llmpi\n"
    << "# resumes its run directory from the newest valid checkpoint. docs/slurm.md explains\n"
    << "# every line; the exit codes are those of jobs/exit_codes.h.\n";
  s << "#SBATCH --job-name=" << shell_quote(b.job_name) << "\n"
    << "#SBATCH --nodes=" << r.nodes << "\n"
    << "#SBATCH --ntasks-per-node=" << r.tasks_per_node << "\n";
  if (r.cpus_per_task > 0) s << "#SBATCH --cpus-per-task=" << r.cpus_per_task << "\n";
  if (r.gpus_per_task > 0)  // every GPU of the node visible to every rank: NCCL peer access
    s << "#SBATCH --gpus-per-node=" << r.gpus_per_task * r.tasks_per_node << "\n";
  if (!r.partition.empty()) s << "#SBATCH --partition=" << r.partition << "\n";
  if (!r.account.empty()) s << "#SBATCH --account=" << r.account << "\n";
  if (!r.qos.empty()) s << "#SBATCH --qos=" << r.qos << "\n";
  if (r.time_limit_s > 0) s << "#SBATCH --time=" << format_slurm_time(r.time_limit_s) << "\n";
  if (!r.constraint.empty()) s << "#SBATCH --constraint=" << shell_quote(r.constraint) << "\n";
  s << "#SBATCH --signal=B:" << b.stop_signal << "@" << b.signal_margin_s << "\n"
    << "#SBATCH --requeue\n"
    << "#SBATCH --open-mode=append\n"
    << "#SBATCH --output=" << b.output << "\n"
    << "#SBATCH --chdir=" << b.workdir << "\n";
  for (const std::string& e : b.sbatch_extra) s << "#SBATCH " << e << "\n";
  s << "\nset -u\n"
    << "LLMPI_BIN=${LLMPI_BIN:-" << shell_quote(b.llmpi_bin) << "}\n"
    << "submitted_version=" << shell_quote(b.llmpi_version) << "\n"
    << "stop_signal=" << b.stop_signal << "\n"
    << "max_requeues=" << b.max_requeues << "\n"
    << "chain_index=${LLMPI_CHAIN_INDEX:-1}\n"
    << "chain_length=${LLMPI_CHAIN_LENGTH:-" << b.chain_length << "}\n"
    << "hang_reports=" << shell_quote(b.run_dir + "/hangs") << "\n"
    << "train_args=(";
  for (size_t i = 0; i < b.train_args.size(); ++i) s << (i ? " " : "") << shell_quote(b.train_args[i]);
  s << ")\n";
  // Environment of every rank: srun passes the batch environment on; mpirun needs -x.
  std::vector<std::string> exported;
  for (const auto& [k, v] : b.env) {
    s << "export " << k << "=" << shell_quote(v) << "\n";
    exported.push_back(k);
  }
  s << "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}\n";
  exported.push_back("OMP_NUM_THREADS");
  // llmpi tells a stop signal near the job's end (a time limit) from a preemption by it.
  s << "export LLMPI_SIGNAL_MARGIN=" << b.signal_margin_s << "\n";
  exported.push_back("LLMPI_SIGNAL_MARGIN");
  if (r.cpus_per_task > 0)  // srun (Slurm >= 22.05) does not inherit --cpus-per-task itself
    s << "export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-" << r.cpus_per_task << "}\n";

  s << R"SH(
say() { printf '[llmpi-slurm %s] %s\n' "$(date +%Y-%m-%dT%H:%M:%S)" "$*"; }
job=${SLURM_JOB_ID:?this script runs as a Slurm batch job (sbatch)}
if [ -n "${SLURM_ARRAY_JOB_ID:-}" ] && [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
  job=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
fi
restarts=${SLURM_RESTART_COUNT:-0}
if [ ! -x "$LLMPI_BIN" ]; then say "error: $LLMPI_BIN is not an executable file (set LLMPI_BIN)"; exit 2; fi
if ! version=$("$LLMPI_BIN" version 2>&1); then say "error: '$LLMPI_BIN version' failed: $version"; exit 2; fi
say "job $job on ${SLURM_JOB_NODELIST:-?}: chain job $chain_index of $chain_length, restart $restarts (at most $max_requeues)"
say "binary $LLMPI_BIN: $version"
if [ "$version" != "$submitted_version" ]; then
  say "warning: the job was submitted with '$submitted_version'; the binary has changed since"
fi
)SH";
  s << "launch=(";
  if (mpirun) {
    s << "mpirun -n " << r.nodes * r.tasks_per_node << " --map-by ppr:" << r.tasks_per_node
      << ":node --bind-to none";
    for (const std::string& k : exported) s << " -x " << k;
    s << " -x LLMPI_CHAIN_INDEX -x SLURM_RESTART_COUNT";
  } else {
    s << "srun --mpi=" << b.srun_mpi << " --kill-on-bad-exit=1";
  }
  for (const std::string& e : b.launcher_extra) s << " " << shell_quote(e);
  s << ")\n";
  if (mpirun) s << "export LLMPI_CHAIN_INDEX=$chain_index SLURM_RESTART_COUNT=$restarts\n";
  s << R"SH(say "running: ${launch[*]} $LLMPI_BIN ${train_args[*]}"
started=$(date +%s)
"${launch[@]}" "$LLMPI_BIN" "${train_args[@]}" &
step=$!
interrupted=0
forward() {
  interrupted=1
  say "SIG$stop_signal received: forwarding it to the training step (pid $step)"
  kill -s "$stop_signal" "$step" 2>/dev/null || true
}
trap forward "$stop_signal"
# A trapped signal ends `wait` early: wait again until the step has really ended.
while :; do
  interrupted=0
  wait "$step"
  rc=$?
  [ "$interrupted" = 1 ] || break
  kill -0 "$step" 2>/dev/null && continue
  wait "$step"
  r=$?
  [ "$r" -eq 127 ] || rc=$r
  break
done
# The step has ended: a stop signal now (Slurm's may come up to a minute before its margin)
# must not kill the script before it requeues the job or hands the run on.
trap 'say "SIG$stop_signal received after the training step ended: ignored"' "$stop_signal"
# srun reports the ranks it ended after the first one failed (143), not the watchdog's 79:
# the hang reports this launch left tell.
if [ "$rc" -ne 0 ] && [ "$rc" -ne )SH" << kExitPreempted << " ] && [ \"$rc\" -ne " << kExitDeadline << R"SH( ] &&
   [ -n "$(find "$hang_reports" -name 'rank-*.json' -newermt "@$started" 2>/dev/null)" ]; then
  say "hang reports in $hang_reports: the watchdog ended the run (the launcher exited $rc)"
  rc=)SH" << kExitWatchdog << R"SH(
fi

requeue() {
  if [ "$restarts" -ge "$max_requeues" ]; then
    say "not requeued: $restarts requeues already (--max-requeues $max_requeues); submit the script again to continue"
    exit "$rc"
  fi
  say "requeueing job $job (restart $((restarts + 1)) of at most $max_requeues)"
  if scontrol requeue "$job"; then exit 0; fi
  say "error: scontrol requeue $job failed; submit the script again to continue"
  exit "$rc"
}
)SH";
  s << "case $rc in\n"
    << "  " << kExitOk << ") say \"training finished (exit 0)\" ;;\n"
    << "  " << kExitPreempted << ")\n"
    << "    say \"preempted: llmpi saved a checkpoint and asked to be requeued (exit $rc)\"\n"
    << "    requeue ;;\n"
    << "  " << kExitDeadline << ")\n"
    << "    say \"time limit: llmpi saved a checkpoint before the job's end (exit $rc)\"\n"
    << "    if [ \"$chain_index\" -lt \"$chain_length\" ]; then\n"
    << "      say \"the next job of the chain continues the run\"\n"
    << "      exit 0\n"
    << "    fi\n"
    << "    requeue ;;\n"
    << "  " << kExitWatchdog << ")\n"
    << "    say \"the watchdog ended a hung run (exit $rc); see the positions above; not requeued\" ;;\n"
    << "  *) say \"training failed (exit $rc); not requeued\" ;;\n"
    << "esac\n"
    << "exit \"$rc\"\n";
  return s.str();
}

}  // namespace llmpi
