#include "jobs/launch.h"

#include <cstdlib>

#include "config/config_schema.h"
#include "core/agreement.h"
#include "jobs/exit_codes.h"

namespace llmpi {
namespace {

std::string stop_signal_name(StopSignal s) {
  for (const auto& e : config::enum_names(StopSignal{}))
    if (e.value == s) return std::string(e.name);
  return "USR1";
}

}  // namespace

Launch::Launch(const Config& cfg, int world_rank)
    : rank_(world_rank),
      signals_(stop_signal_name(cfg.run.stop_signal)),
      progress_(world_rank),
      watchdog_(cfg.watchdog, progress_, world_rank, cfg.run.dir) {}

Launch::~Launch() {
  if (topo_) topo_->set_observer(nullptr);
}

void Launch::watch(Topology& topo) {
  topo_ = &topo;
  topo.set_observer(&progress_);
}

void Launch::lock(const std::string& run_dir, MPI_Comm comm) {
  // Rank 0's verdict is every rank's: a refusal on rank 0 alone left the others waiting in the
  // setup's next collective for ever.
  agreed(comm, [&] {
    if (rank_ != 0) return;
    lock_ = std::make_unique<RunLock>(run_dir, [](const std::string& line) {
      std::fprintf(stdout, "%s\n", line.c_str());
      std::fflush(stdout);
    });
  });
}

void Launch::announce(const std::string& dir, RunDirectory& run_dir) {
  if (const char* r = std::getenv("SLURM_RESTART_COUNT"); r && std::atoll(r) > 0) {
    const char* job = std::getenv("SLURM_JOB_ID");
    const std::string id = job ? job : "?";
    run_dir.emit({RunEventKind::requeue, -1,
                  "requeued Slurm job " + id + ": restart " + r,
                  {{"slurm_job", id}, {"restart_count", r}}});
  }
  if (rank_ == 0)
    for (RunEvent& e : take_hang_reports(dir)) run_dir.emit(std::move(e));
}

void Launch::begin(const Config& cfg, MPI_Comm comm, int64_t param_count, RunDirectory& run_dir) {
  // A checkpoint holds the parameters and both AdamW moments in f32.
  control_ = std::make_unique<RunControl>(cfg, comm, param_count * 3 * 4, signals_, run_dir);
  if (rank_ == 0 && !control_->summary().empty()) {
    std::fprintf(stdout, "%s\n", control_->summary().c_str());
    std::fflush(stdout);
  }
}

int Launch::exit_code(const StopRequest& stopped) {
  return stopped ? RunControl::exit_code(stopped) : kExitOk;
}

}  // namespace llmpi
