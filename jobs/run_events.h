#pragma once
// The events of a run's life, and the observers that receive them. The run directory
// (jobs/run_dir.h) and the trainer emit them; RunDirectory prints each event's `line` (rank 0)
// and hands the event to every observer it holds — the place where the logbook's journal,
// Slurm's requeue logic or a watchdog attach. Adding a kind is one line in LLMPI_RUN_EVENTS.
//
// Which rank: an event is emitted on every rank that takes part in what it reports — all
// ranks for collective steps (run_start, resume, checkpoint_rejected, run_end), rank 0 alone
// for what rank 0 alone does (temporary_removed, checkpoint_saved, checkpoint_deleted,
// checkpoint_set_aside, watchdog: the file-system side of the run directory). signal and
// timeout are collective (every rank agreed to stop: jobs/run_control.h), so are
// config_change and requeue (jobs/relaunch.h). An observer that writes once per job filters on its
// own rank.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace llmpi {

// X(name): name is both the enumerator and the name tools see ("checkpoint_saved").
#define LLMPI_RUN_EVENTS(X)                                                                  \
  X(run_start)           /* training starts or continues: step, dir, resumed_from */         \
  X(temporary_removed)   /* an interrupted save's temporary was deleted: path */             \
  X(checkpoint_rejected) /* a checkpoint failed verification while resuming: path, step */   \
  X(resume)              /* state restored from a checkpoint: path, step, tokens_seen */     \
  X(loss_spike)          /* all ranks: the spike detector flagged a step: loss, z, action */ \
  X(nonfinite)           /* a non-finite loss or gradient norm: what, ranks_flagged */      \
  X(step_skipped)        /* an update was not applied (spike policy): reason */              \
  X(rollback)            /* reloaded an older checkpoint after a spike: to_step, skip_first.. */ \
  X(checkpoint_saved)    /* written, verified, made `latest`: path, step, bytes, seconds */  \
  X(checkpoint_deleted)  /* removed by retention: path, step */                              \
  X(checkpoint_set_aside) /* unreadable, moved aside (--no-resume): path, moved_to, message */ \
  X(run_end)             /* training stops: step, completed (1) or interrupted (0) */      \
  X(config_change)       /* a relaunch changed declared-safe keys: changes, summary */     \
  X(signal)              /* a stop signal: stop after this step, save (a preemption) */    \
  X(timeout)             /* the deadline is near: stop after this step, save */            \
  X(requeue)             /* this launch is a requeued Slurm job: slurm_job, restart_count */ \
  X(watchdog)            /* a rank's hang report (an earlier launch): rank, host, phase, ... */

enum class RunEventKind : uint8_t {
#define LLMPI_RUN_EVENT_ENUM(name) name,
  LLMPI_RUN_EVENTS(LLMPI_RUN_EVENT_ENUM)
#undef LLMPI_RUN_EVENT_ENUM
};

const char* event_name(RunEventKind kind);

struct RunEvent {
  RunEventKind kind = RunEventKind::run_start;
  int64_t step = -1;  // the training step it concerns; -1 when none
  std::string line;   // what the console shows on rank 0; empty: nothing is printed
  std::vector<std::pair<std::string, std::string>> details;  // named values for tools
};

// Receives every event of a run directory, on the thread that trains (see RunDirectory::
// deliver_events): events raised by the checkpoint writer thread arrive at the next delivery.
// An observer that uses HDF5 must not do so while a checkpoint write is in flight.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void on_event(const RunEvent& event) = 0;
};

}  // namespace llmpi
