#include "jobs/run_control.h"

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "jobs/exit_codes.h"

namespace llmpi {
namespace {

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw InternalError(std::string(what) + " failed");
}

std::string fixed(double v, int digits = 0) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

StopRequest agree_on_stop(MPI_Comm comm, StopRequest mine) {
  int local = mine.encode(), agreed = 0;
  check(MPI_Allreduce(&local, &agreed, 1, MPI_INT, MPI_MAX, comm), "MPI_Allreduce (stop agreement)");
  return StopRequest::decode(agreed);
}

RunControl::RunControl(const Config& cfg, MPI_Comm comm, int64_t checkpoint_bytes,
                       const StopSignals& signals, RunDirectory& run_dir)
    : comm_(comm), signals_(signals), run_dir_(run_dir) {
  MPI_Comm_rank(comm_, &rank_);
  budget_.margin_s = cfg.run.deadline_margin;
  budget_.save_s = estimated_save_s(checkpoint_bytes);
  signal_margin_s_ = slurm_signal_margin_s();
  if (const char* d = std::getenv("LLMPI_TEST_STEP_DELAY"); d && *d) {
    char* end = nullptr;
    step_delay_s_ = std::strtod(d, &end);
    if (*end != '\0' || step_delay_s_ < 0 || step_delay_s_ > 60)
      user_error("LLMPI_TEST_STEP_DELAY: expected seconds in [0, 60], got '", d, "'");
  }
  // Every rank checks [run] deadline alike (the same UserError everywhere); rank 0 asks Slurm
  // for the job's end time (one squeue call at most) and shares the result.
  const double start = now_unix();
  const std::optional<double> configured = parse_deadline(cfg.run.deadline, start);
  double shared[3] = {0.0, 0.0, 0.0};
  std::string note;
  if (rank_ == 0) {
    const std::optional<double> end = slurm_job_end_time(&note);
    shared[0] = configured.value_or(0.0);
    shared[1] = end.value_or(0.0);
    shared[2] = configured && *configured <= start ? 1.0 : 0.0;  // rank 0's clock decides
  }
  check(MPI_Bcast(shared, 3, MPI_DOUBLE, 0, comm_), "MPI_Bcast (deadline)");
  // A deadline already past leaves no step to train: refused before training (it ran one step
  // and exited 76, "deadline in -818246368 s", which a chain job takes as "requeue me").
  if (shared[2] > 0) {
    const std::time_t now = std::time_t(start);
    char at[32];
    std::strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", std::localtime(&now));
    user_error("[run] deadline = '", cfg.run.deadline, "' has already passed (", fixed(start - shared[0]),
               " s ago; it is now ", at, " local time); expected a time in the future, or \"\" for none");
  }
  const char* job = std::getenv("SLURM_JOB_ID");
  deadline_ = earliest_deadline(shared[0] > 0 ? std::optional<double>(shared[0]) : std::nullopt,
                                shared[1] > 0 ? std::optional<double>(shared[1]) : std::nullopt,
                                job ? job : "");
  std::string line;
  if (!note.empty()) line = "deadline: " + note;
  if (deadline_) {
    line += std::string(line.empty() ? "" : "\n") + "deadline: " + deadline_.source + " in " +
            fixed(deadline_.at_unix - start) + " s; the run saves and stops before it, keeping a "
            "step + 2 x a save + " + fixed(budget_.margin_s) + " s";
  }
  summary_ = line;
}

void RunControl::save_measured(double seconds) {
  budget_.save_s = save_measured_ ? std::max(budget_.save_s, seconds) : seconds;
  save_measured_ = true;
}

StopRequest RunControl::local_request(double now) const {
  if (const int sig = signals_.pending()) {
    const bool timeout = signal_is_timeout(deadline_, signals_.received_at(), signal_margin_s_);
    return {timeout ? StopKind::timeout : StopKind::preemption, sig};
  }
  if (must_stop_for(deadline_, now, budget_)) return {StopKind::timeout, 0};
  return {};
}

bool RunControl::stop_pending() const { return bool(local_request(now_unix())); }

bool RunControl::stop_requested() const {
  return bool(agree_on_stop(comm_, local_request(now_unix())));
}

StopRequest RunControl::after_step(int64_t step, double step_seconds) {
  if (step_delay_s_ > 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(step_delay_s_));
    step_seconds += step_delay_s_;
  }
  budget_.longest_step_s = std::max(budget_.longest_step_s, step_seconds);
  const double now = now_unix();
  const StopRequest agreed = agree_on_stop(comm_, local_request(now));
  if (agreed) {
    const std::string s = std::to_string(step), code = std::to_string(exit_code(agreed));
    report(agreed, step, now, "after step " + s, "saving a checkpoint, then exit " + code,
           "stop after step " + s + ", save, exit " + code);
  }
  return agreed;
}

StopRequest RunControl::stop_before_steps(int64_t step, const std::string& phase) {
  const double now = now_unix();
  const StopRequest agreed = agree_on_stop(comm_, local_request(now));
  if (agreed) {
    // "stopping after step N" as after a step: tools read that line (slurm/run_status.cpp).
    const std::string when = "after step " + std::to_string(step) +
                             " (before this launch's first step, during " + phase + ")";
    const std::string code = std::to_string(exit_code(agreed));
    report(agreed, step, now, when, "nothing new to save, exit " + code,
           "stop " + when + ", nothing saved, exit " + code);
  }
  return agreed;
}

void RunControl::report(const StopRequest& r, int64_t step, double now, const std::string& when,
                        const std::string& then, const std::string& action) {
  const std::string sig = r.signo ? "SIG" + signal_name(r.signo) : "";
  RunEvent e;
  e.step = step;
  if (r.kind == StopKind::preemption) {
    e.kind = RunEventKind::signal;
    e.line = "stopping " + when + ": " + sig + " (preemption); " + then;
    e.details = {{"signal", sig}, {"kind", "preemption"}, {"action", action}};
  } else {
    e.kind = RunEventKind::timeout;
    const std::string left = deadline_ ? fixed(deadline_.at_unix - now) : "";
    e.line = "stopping " + when + ": time limit (" +
             (deadline_ ? deadline_.source + " in " + left + " s" : std::string("no end time known")) +
             (sig.empty() ? "" : ", " + sig) + "); " + then;
    e.details = {{"kind", "timeout"},
                 {"source", deadline_ ? deadline_.source : "signal near the job's end"},
                 {"deadline_unix", deadline_ ? fixed(deadline_.at_unix) : ""},
                 {"seconds_left", left},
                 {"needed_s", fixed(budget_.need(), 1)},
                 {"action", action}};
    if (!sig.empty()) e.details.emplace_back("signal", sig);
  }
  run_dir_.emit(std::move(e));
}

int RunControl::exit_code(const StopRequest& r) {
  return r.kind == StopKind::timeout ? kExitDeadline : kExitPreempted;
}

}  // namespace llmpi
