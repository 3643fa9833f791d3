#pragma once
// RunLock: at most one job writes a run directory at a time.
//   <run.dir>/lock names its holder (JSON: host, pid, process start time, boot id, Slurm job,
//   since) and is flock()ed by the holder for as long as it runs: the kernel (or the NFS lock
//   manager) drops the lock when the holder dies, however it dies.
//   acquire  flock succeeds → ours (a holder named in the file was a dead job: reported as a
//            stale lock taken over). flock refused → refused with the holder's name, unless
//            the holder is provably gone: the same Slurm job (a requeued incarnation), a
//            process of this host that no longer exists, or a Slurm job squeue no longer
//            runs — then the file is replaced. On a file system without flock the same
//            liveness rules decide alone.
//   release  on destruction: the file is removed, then unlocked. An acquirer that locked a
//            file which was meanwhile removed notices (the path's inode changed) and retries.
// Serial: rank 0 holds the lock for the whole job.
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace llmpi {

// Who this process is, as the lock file records it.
nlohmann::json lock_holder_self();
// Whether the holder recorded in `holder` is certainly no longer running ("" = it may be
// running); the reason otherwise. Checks: same Slurm job as ours, same host and boot and the
// pid gone or reused, or squeue no longer listing its job as active.
std::string holder_is_gone(const nlohmann::json& holder);

class RunLock {
 public:
  // Takes <run_dir>/lock (creating run_dir). UserError naming the holder when another live
  // job has it. `log` receives a line when a stale lock is taken over.
  RunLock(const std::string& run_dir, const std::function<void(const std::string&)>& log = {});
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace llmpi
