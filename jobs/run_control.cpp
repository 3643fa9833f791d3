#include "jobs/run_control.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "config/config_schema.h"
#include "core/error.h"
#include "jobs/exit_codes.h"

namespace llmpi {
namespace {

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string stop_signal_name(StopSignal s) {
  for (const auto& e : config::enum_names(StopSignal{}))
    if (e.value == s) return std::string(e.name);
  return "USR1";
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw InternalError(std::string(what) + " failed");
}

}  // namespace

StopRequest agree_on_stop(MPI_Comm comm, StopRequest mine) {
  int local = mine.encode(), agreed = 0;
  check(MPI_Allreduce(&local, &agreed, 1, MPI_INT, MPI_MAX, comm), "MPI_Allreduce (stop agreement)");
  return StopRequest::decode(agreed);
}

RunControl::RunControl(const Config& cfg, MPI_Comm comm, int64_t checkpoint_bytes,
                       std::function<void(const std::string&)> log, JobEventSink sink)
    : comm_(comm), log_(std::move(log)), sink_(std::move(sink)) {
  MPI_Comm_rank(comm_, &rank_);
  signals_ = std::make_unique<StopSignals>(stop_signal_name(cfg.run.stop_signal));
  budget_.margin_s = cfg.run.deadline_margin;
  budget_.save_s = estimated_save_s(checkpoint_bytes);
  signal_margin_s_ = slurm_signal_margin_s();
  // Rank 0 resolves the deadline (one squeue call at most) and shares it.
  double at = 0.0;
  int slurm = 0;
  std::string note;
  if (rank_ == 0) {
    const double start = now_unix();
    const std::optional<double> configured = parse_deadline(cfg.run.deadline, start);
    const std::optional<double> end = slurm_job_end_time(&note);
    const char* job = std::getenv("SLURM_JOB_ID");
    deadline_ = earliest_deadline(configured, end, job ? job : "");
    at = deadline_.at_unix;
    slurm = deadline_.slurm;
  } else {
    parse_deadline(cfg.run.deadline, 0.0);  // the same UserError on every rank
  }
  double shared[2] = {at, double(slurm)};
  check(MPI_Bcast(shared, 2, MPI_DOUBLE, 0, comm_), "MPI_Bcast (deadline)");
  if (rank_ != 0) {
    deadline_.at_unix = shared[0];
    deadline_.slurm = shared[1] != 0.0;
    deadline_.source = deadline_.slurm ? "Slurm job end time" : "[run] deadline";
  }
  if (rank_ == 0 && log_) {
    if (!note.empty()) log_("deadline: " + note);
    if (deadline_) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "deadline: %s in %.0f s (%s); a checkpoint is saved before it, keeping step + "
                    "2 x save + %.0f s",
                    deadline_.source.c_str(), deadline_.at_unix - now_unix(),
                    deadline_.slurm ? "the Slurm job's time limit" : "configured",
                    budget_.margin_s);
      log_(line);
    }
  }
}

RunControl::~RunControl() = default;

void RunControl::save_measured(double seconds) {
  budget_.save_s = save_measured_ ? std::max(budget_.save_s, seconds) : seconds;
  save_measured_ = true;
}

StopRequest RunControl::local_request(double now) const {
  if (const int sig = signals_->pending()) {
    const bool timeout = signal_is_timeout(deadline_, signals_->received_at(), signal_margin_s_);
    return {timeout ? StopKind::timeout : StopKind::preemption, sig};
  }
  if (must_stop_for(deadline_, now, budget_)) return {StopKind::timeout, 0};
  return {};
}

StopRequest RunControl::after_step(int64_t step, double step_seconds) {
  budget_.longest_step_s = std::max(budget_.longest_step_s, step_seconds);
  const double now = now_unix();
  const StopRequest agreed = agree_on_stop(comm_, local_request(now));
  if (agreed && rank_ == 0) report(agreed, step, now);
  return agreed;
}

void RunControl::report(const StopRequest& r, int64_t step, double now) {
  const int code = exit_code(r);
  JobEvent e;
  e.step = step;
  e.time_unix = now;
  std::string why;
  if (r.kind == StopKind::preemption) {
    e.type = "signal";
    e.details = {{"signal", "SIG" + signal_name(r.signo)},
                 {"action", "stop after step " + std::to_string(step) + ", save, exit " +
                                std::to_string(code) + " (preemption: requeue)"}};
    why = "SIG" + signal_name(r.signo) + " (preemption)";
  } else {
    e.type = "timeout";
    e.details = {{"source", deadline_.source},
                 {"deadline_unix", deadline_.at_unix},
                 {"seconds_left", deadline_.at_unix - now},
                 {"needed_s", budget_.need()},
                 {"action", "stop after step " + std::to_string(step) + ", save, exit " +
                                std::to_string(code)}};
    if (r.signo) e.details["signal"] = "SIG" + signal_name(r.signo);
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s in %.0f s%s", deadline_.source.c_str(),
                  deadline_.at_unix - now,
                  r.signo ? (", signalled by SIG" + signal_name(r.signo)).c_str() : "");
    why = deadline_ ? std::string("time limit: ") + buf : "SIG" + signal_name(r.signo) + " at the time limit";
  }
  if (log_)
    log_("stopping after step " + std::to_string(step) + ": " + why +
         "; saving a checkpoint, then exit " + std::to_string(code));
  if (sink_) sink_(e);
}

int RunControl::exit_code(const StopRequest& r) {
  return r.kind == StopKind::timeout ? kExitDeadline : kExitPreempted;
}

}  // namespace llmpi
