// The run directory's life and its events (see run_dir.h).
#include "jobs/run_dir.h"

#include <filesystem>
#include <fstream>
#include <ostream>

#include "core/agreement.h"
#include "core/error.h"
#include "core/text_file.h"
#include "io/checkpoint.h"
#include "jobs/run_claim.h"
#include "jobs/retention.h"
#include "parallel/communicator.h"

namespace llmpi {
namespace fs = std::filesystem;

const char* event_name(RunEventKind kind) {
  switch (kind) {
#define LLMPI_RUN_EVENT_NAME(name) \
  case RunEventKind::name:         \
    return #name;
    LLMPI_RUN_EVENTS(LLMPI_RUN_EVENT_NAME)
#undef LLMPI_RUN_EVENT_NAME
  }
  return "unknown";
}

RunDirectory::RunDirectory(std::string dir, MPI_Comm comm, std::ostream& out)
    : dir_(std::move(dir)), comm_(comm), out_(out), owner_(std::this_thread::get_id()) {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_rank(comm_, &rank_);
}

std::string RunDirectory::checkpoint_path(int64_t step) const {
  return llmpi::checkpoint_path(dir_, step);
}

std::string RunDirectory::model_path() const { return (fs::path(dir_) / "model.h5").string(); }

void RunDirectory::add_observer(RunObserver& observer) { observers_.push_back(&observer); }

void RunDirectory::remove_observer(RunObserver& observer) {
  std::erase(observers_, &observer);
}

void RunDirectory::claim(bool checkpoints) {
  std::string why = rank_ == 0 ? claim_run_directory(dir_, checkpoints) : std::string();
  if (comm_ != MPI_COMM_NULL) {
    int n = int(why.size());
    check_mpi(MPI_Bcast(&n, 1, MPI_INT, 0, comm_), "MPI_Bcast");
    why.resize(size_t(n));
    check_mpi(MPI_Bcast(why.data(), n, MPI_CHAR, 0, comm_), "MPI_Bcast");
  }
  if (!why.empty()) throw UserError(why);
}

Discovery RunDirectory::find_resume_checkpoint() {
  if (rank_ == 0)
    for (const std::string& t : clean_temporaries(dir_))
      emit({RunEventKind::temporary_removed, -1, "removed " + t + " (an interrupted save)",
            {{"path", t}}});
  if (comm_ != MPI_COMM_NULL) check_mpi(MPI_Barrier(comm_), "MPI_Barrier");
  Discovery d = find_latest_valid(dir_, comm_, /*verify_tensors=*/true);
  for (size_t i = 0; i < d.rejected.size(); ++i) {
    const CheckpointFile& f = d.rejected_files[i];
    emit({RunEventKind::checkpoint_rejected, f.step, d.rejected[i],
          {{"path", f.path}, {"message", d.rejected[i]}}});
  }
  if (!d.found && !d.rejected.empty()) {  // the same on every rank: a collective verification
    std::string list;
    for (const std::string& r : d.rejected) list += "\n  " + r;
    user_error(checkpoints_dir(dir_), " holds ", d.rejected.size(),
               " checkpoint(s) and none of them loads:", list,
               "\nTraining does not start again from step 0 over them. Resume from a good copy "
               "with --resume PATH, or start from step 0 with --no-resume (the unreadable files "
               "are then moved aside as <name>.unreadable, not overwritten).");
  }
  return d;
}

std::vector<std::string> RunDirectory::set_aside_unreadable() {
  std::vector<std::string> moved;
  for (const CheckpointFile& f : shared_checkpoint_list(dir_, comm_)) {
    const std::string why = verify_checkpoint(f.path, comm_, /*tensors=*/true);
    if (why.empty()) continue;
    std::string to = f.path + ".unreadable";
    // Rank 0 renames; a failure is every rank's (the others would wait in the next collective).
    agreed(comm_, [&] {
      if (rank_ != 0) return;
      std::error_code ec;
      for (int k = 1; fs::exists(fs::symlink_status(to, ec)); ++k)
        to = f.path + ".unreadable." + std::to_string(k);
      fs::rename(f.path, to, ec);
      if (ec) user_error(f.path, ": unreadable (", why, ") and cannot be moved aside: ", ec.message());
      emit({RunEventKind::checkpoint_set_aside, f.step,
            f.path + " is unreadable (" + why + "); moved aside to " + to,
            {{"path", f.path}, {"moved_to", to}, {"message", why}}});
    });
    moved.push_back(to);
  }
  if (comm_ != MPI_COMM_NULL) check_mpi(MPI_Barrier(comm_), "MPI_Barrier");
  return moved;
}

void RunDirectory::begin(const Config& cfg, int64_t step, bool checkpoints,
                         const std::string& resumed_from) {
  // Rank 0 writes; its failure (a disk filled since claim()) is every rank's, which also
  // makes this the barrier: every rank sees the directory afterwards.
  agreed(comm_, [&] {
    if (rank_ != 0) return;
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) user_error("run.dir = \"", dir_, "\": cannot create it: ", ec.message());
    write_text_atomically((fs::path(dir_) / "config.toml").string(), cfg.source_text);  // never through a link
    if (!checkpoints) return;
    fs::create_directories(checkpoints_dir(dir_), ec);
    if (ec) user_error(checkpoints_dir(dir_), ": cannot create it: ", ec.message());
  });
  RunEvent e{RunEventKind::run_start, step, "", {{"dir", dir_}, {"step", std::to_string(step)}}};
  if (!resumed_from.empty()) e.details.emplace_back("resumed_from", resumed_from);
  emit(std::move(e));
}

void RunDirectory::commit_checkpoint(int64_t step, const CheckpointSection& policy,
                                     double seconds) {
  if (rank_ != 0) return;
  const std::string path = checkpoint_path(step);
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  const std::vector<std::string> deleted = llmpi::commit_checkpoint(dir_, step, policy);
  emit({RunEventKind::checkpoint_saved, step, "",
        {{"path", path},
         {"bytes", ec ? "" : std::to_string(bytes)},
         {"seconds", std::to_string(seconds)}}});
  for (const std::string& p : deleted)
    emit({RunEventKind::checkpoint_deleted, parse_checkpoint_step(fs::path(p).filename()).value_or(-1),
          "", {{"path", p}}});
}

void RunDirectory::end(int64_t step, bool completed) {
  deliver_events();
  emit({RunEventKind::run_end, step, "",
        {{"step", std::to_string(step)}, {"completed", completed ? "1" : "0"}}});
}

void RunDirectory::emit(RunEvent event) {
  if (std::this_thread::get_id() != owner_) {
    std::lock_guard<std::mutex> lock(queue_mu_);
    queue_.push_back(std::move(event));
    return;
  }
  deliver_events();  // what other threads raised before this one comes first
  deliver(event);
}

void RunDirectory::deliver_events() {
  std::vector<RunEvent> pending;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    pending.swap(queue_);
  }
  for (const RunEvent& e : pending) deliver(e);
}

void RunDirectory::deliver(const RunEvent& e) {
  if (rank_ == 0 && !e.line.empty()) out_ << e.line << "\n" << std::flush;
  for (RunObserver* o : observers_) o->on_event(e);
}

}  // namespace llmpi
