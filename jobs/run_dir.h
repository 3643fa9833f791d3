#pragma once
// RunDirectory: the life of one run directory (run.dir), created by the caller (llmpi train,
// a test) and handed to the Trainer, which only runs steps:
//   <dir>/config.toml          the config of the latest start (snapshot written by begin())
//   <dir>/checkpoints/         step_XXXXXXXX.h5, `latest` (jobs/checkpoint_dir.h), retention
//                              (jobs/retention.h)
//   <dir>/model.h5             the final model
// Its life, in order:  find_resume_checkpoint()  →  begin()  →  commit_checkpoint() per save
// →  end(). Each step emits RunEvents (jobs/run_events.h) to the observers attached with
// add_observer; the event's line is printed on rank 0 (`out`).
// Collective methods are called by every rank of `comm` in the same order. Observers are
// called on the thread that constructed the RunDirectory; events raised on another thread
// (commit_checkpoint runs on the checkpoint writer's) wait for the next deliver_events().
#include <mpi.h>

#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "jobs/checkpoint_dir.h"
#include "jobs/run_events.h"

namespace llmpi {

class RunDirectory {
 public:
  // Collective over comm (not owned; it outlives this object). Touches no file yet.
  RunDirectory(std::string dir, MPI_Comm comm, std::ostream& out);
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  const std::string& dir() const { return dir_; }
  std::string checkpoint_path(int64_t step) const;
  std::string model_path() const;

  // Not owned; must outlive this object (or be attached for its whole use).
  void add_observer(RunObserver& observer);
  void remove_observer(RunObserver& observer);  // one that dies before this object

  // Collective, at start-up of a run that writes, before anything else touches the
  // directory: claims it (jobs/run_claim.h): created and marked, or refused — a non-empty
  // directory that is not an llmpi run, or one that cannot be written. UserError on every
  // rank alike.
  void claim(bool checkpoints);

  // Collective, before training: removes the temporaries of interrupted saves (rank 0), then
  // finds the newest valid checkpoint, falling back past rejected ones. An event per removed
  // temporary and per rejected file. `found` is empty when there is none (a fresh start).
  // Checkpoints none of which loads are a UserError listing each file and why: training does
  // not start again from step 0 on top of them (see set_aside_unreadable).
  Discovery find_resume_checkpoint();

  // Collective (a fresh start over an existing run, --no-resume): every checkpoint that does
  // not verify is renamed "<name>.unreadable" — never overwritten, never a candidate again.
  // An event per file. Returns the new paths.
  std::vector<std::string> set_aside_unreadable();

  // Collective: training starts at `step` (0, or the resumed checkpoint's). Creates the
  // directory (and checkpoints/ when `checkpoints`), writes the config snapshot, emits
  // run_start (with `resumed_from`, the checkpoint's path, when resuming).
  void begin(const Config& cfg, int64_t step, bool checkpoints, const std::string& resumed_from);

  // After checkpoint `step` was written and verified (every rank may call it, on any thread;
  // rank 0 acts): `latest` names it, retention deletes what the policy drops. Emits
  // checkpoint_saved (`seconds` from the start of the save) and checkpoint_deleted per file.
  void commit_checkpoint(int64_t step, const CheckpointSection& policy, double seconds);

  // Collective: training stops after `step`; completed = it reached train.steps.
  void end(int64_t step, bool completed);

  // Emits an event: printed (rank 0) and handed to the observers now on the constructing
  // thread, queued on any other.
  void emit(RunEvent event);
  // Delivers the events queued by other threads (call where training may pause: each step).
  void deliver_events();

 private:
  void deliver(const RunEvent& e);

  std::string dir_;
  MPI_Comm comm_;
  std::ostream& out_;
  int rank_ = 0;
  std::thread::id owner_;
  std::vector<RunObserver*> observers_;
  std::mutex queue_mu_;
  std::vector<RunEvent> queue_;
};

}  // namespace llmpi
