#include "train/step_guard.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <limits>

#include "parallel/communicator.h"
#include "train/logbook_observer.h"

namespace llmpi {
namespace {

bool listed(const std::vector<int64_t>& steps, int64_t step) {
  return std::find(steps.begin(), steps.end(), step) != steps.end();
}

// NaN-safe for MPI_MAX: NaN travels as -inf (and comes back as NaN when every rank had none).
double to_max(double x) { return std::isnan(x) ? -std::numeric_limits<double>::infinity() : x; }
double from_max(double x) { return std::isinf(x) && x < 0 ? std::nan("") : x; }

}  // namespace

std::string action_name(StepAction a) {
  switch (a) {
    case StepAction::apply: return "apply";
    case StepAction::log_spike: return "log";
    case StepAction::skip: return "skip";
    case StepAction::rollback: return "rollback";
    case StepAction::skip_data: return "skip_data";
  }
  return "?";
}

StepGuard::StepGuard(const Config& cfg, const LogbookSchema& schema, int64_t min_segment,
                     MPI_Comm comm, std::ostream& out)
    : cfg_(cfg.logbook), comm_(comm), policy_(cfg.logbook),
      recorder_(cfg, schema, min_segment, comm, out) {
  check_mpi(MPI_Comm_rank(comm, &rank_), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(comm, &world_), "MPI_Comm_size");
}

bool StepGuard::layer_stats_due(int64_t step) const {
  return recorder_.writes_anywhere() && cfg_.layer_stats_every > 0 && step % cfg_.layer_stats_every == 0;
}

bool StepGuard::poison_gradient(int64_t step) const {
  return rank_ == world_ - 1 && listed(cfg_.test_nan_grad_steps, step);
}

double StepGuard::loss_seen(int64_t step, double loss) const {
  return rank_ == world_ - 1 && listed(cfg_.test_loss_spike_steps, step) ? loss * 10.0 : loss;
}

void StepGuard::maybe_kill(int64_t trained) {
  if (rank_ != 0 || cfg_.test_kill_after_steps <= 0 || trained != cfg_.test_kill_after_steps) return;
  recorder_.maybe_flush(false, true);
  std::raise(SIGKILL);
}

AgreedVerdict StepGuard::agree(int64_t step, double loss, double grad_norm, double peak_bytes) {
  const double seen = loss_seen(step, loss);
  const SpikeVerdict v = policy_.check(seen, grad_norm);
  double mx[6] = {double(v.spike), double(v.nonfinite), to_max(v.loss_z), to_max(v.grad_z),
                  to_max(seen), to_max(peak_bytes)};
  int flagged = v.spike || v.nonfinite;
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, mx, 6, MPI_DOUBLE, MPI_MAX, comm_), "MPI_Allreduce");
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, &flagged, 1, MPI_INT, MPI_SUM, comm_), "MPI_Allreduce");
  AgreedVerdict a;
  a.verdict.spike = mx[0] > 0;
  a.verdict.nonfinite = mx[1] > 0;
  a.verdict.loss_z = from_max(mx[2]);
  a.verdict.grad_z = from_max(mx[3]);
  a.loss_seen = from_max(mx[4]);
  a.peak_bytes = from_max(mx[5]);
  a.ranks_flagged = flagged;
  return a;
}

void StepGuard::journal(RunDirectory& dir, int64_t step, const AgreedVerdict& a, const StepDecision& d,
                        double grad_norm) {
  if (d.action == StepAction::apply || d.action == StepAction::skip_data) return;
  const std::string action = action_name(d.action);
  char line[256];
  if (a.verdict.nonfinite) {
    const char* what = std::isfinite(a.loss_seen) ? "gradient" : "loss";
    std::snprintf(line, sizeof line, "non-finite %s at step %lld (%d rank(s)); action: %s", what,
                  (long long)step, a.ranks_flagged, action.c_str());
    dir.emit({RunEventKind::nonfinite, step, line,
              {json_detail("what", what), json_detail("ranks_flagged", a.ranks_flagged)}});
  } else {
    std::snprintf(line, sizeof line, "loss spike at step %lld: loss %.4f (z %.1f), grad norm %.4f (z %.1f), "
                  "flagged by %d rank(s); action: %s", (long long)step, a.loss_seen, a.verdict.loss_z,
                  grad_norm, a.verdict.grad_z, a.ranks_flagged, action.c_str());
    dir.emit({RunEventKind::loss_spike, step, line,
              {json_detail("loss", a.loss_seen), json_detail("loss_z", a.verdict.loss_z),
               json_detail("grad_norm", grad_norm), json_detail("grad_z", a.verdict.grad_z),
               json_detail("action", action), json_detail("ranks_flagged", a.ranks_flagged)}});
  }
  if (d.action == StepAction::skip)
    dir.emit({RunEventKind::step_skipped, step, "", {json_detail("reason", d.reason)}});
}

}  // namespace llmpi
