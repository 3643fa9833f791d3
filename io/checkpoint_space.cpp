// Room for a checkpoint before the collective write (see checkpoint_space.h): each rank's
// file-size limit, rank 0's free space and reservation, one agreement.
#include "io/checkpoint_space.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/agreement.h"
#include "core/error.h"

namespace llmpi {
namespace {

constexpr uint64_t kFixedMargin = uint64_t(1) << 20;  // superblock, groups, attributes
constexpr uint64_t kPerTensorMargin = 8192;           // a dataset's header and checksum

std::string mib(uint64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / 1048576.0);
  return buf;
}

// This rank's RLIMIT_FSIZE against `bytes`: "" when a file of that size may be written.
std::string file_size_limit_problem(uint64_t bytes, int rank) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_FSIZE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return "";
  if (uint64_t(lim.rlim_cur) >= bytes) return "";
  return "rank " + std::to_string(rank) + "'s file-size limit (ulimit -f) is " +
         mib(uint64_t(lim.rlim_cur)) + ", below the checkpoint's estimated " + mib(bytes);
}

// Rank 0: free space of the directory, then `bytes` allocated for `tmp` (left allocated on
// success: HDF5's create truncates it). "" when the space is there.
std::string reserve_on_disk(const std::string& tmp, uint64_t bytes) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(tmp).has_parent_path() ? fs::path(tmp).parent_path() : ".";
  struct statvfs st{};
  if (::statvfs(dir.c_str(), &st) == 0) {
    const uint64_t avail = uint64_t(st.f_bavail) * uint64_t(st.f_frsize);
    if (avail < bytes)
      return dir.string() + " has " + mib(avail) + " free, the checkpoint needs about " +
             mib(bytes) + " (disk full or quota?)";
  }
  ::unlink(tmp.c_str());  // never write through a link or into an old temporary
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create " + tmp + ": " + std::strerror(errno);
  std::string why;
  if (::fallocate(fd, 0, 0, off_t(bytes)) != 0 && errno != EOPNOTSUPP && errno != ENOSYS)
    why = "cannot reserve " + mib(bytes) + " for " + tmp + ": " + std::strerror(errno) +
          " (disk full or quota?)";
  ::close(fd);
  if (!why.empty()) ::unlink(tmp.c_str());
  return why;
}

}  // namespace

uint64_t estimated_checkpoint_bytes(const CheckpointSlabs& slabs, const CheckpointMeta& meta,
                                    MPI_Comm comm) {
  uint64_t mine[2] = {0, 0};  // tensor bytes this rank writes, tensors it lists
  for (const auto* group : {&slabs.params, &slabs.m, &slabs.v})
    for (const TensorSlab& s : *group) {
      if (s.owner) mine[0] += uint64_t(s.local_numel()) * sizeof(float);
      mine[1] += 1;
    }
  uint64_t all[2] = {mine[0], mine[1]};
  if (comm != MPI_COMM_NULL) MPI_Allreduce(mine, all, 2, MPI_UINT64_T, MPI_SUM, comm);
  const uint64_t mapping = (meta.data.steps.size() + meta.data.step_samples.size()) * 8;
  return all[0] + mapping + meta.config_toml.size() + meta.tokenizer.size() + kFixedMargin +
         all[1] * kPerTensorMargin;
}

std::string reserve_checkpoint_space(const std::string& tmp, uint64_t bytes, MPI_Comm comm) {
  int rank = 0;
  if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &rank);
  std::string why = file_size_limit_problem(bytes, rank);
  if (why.empty() && rank == 0) why = reserve_on_disk(tmp, bytes);
  if (comm == MPI_COMM_NULL) return why;
  const AgreedFailure a = agree_on_failure(comm, why);  // the lowest failing rank's reason
  if (!a) return "";
  if (rank == 0 && a.rank != 0) ::unlink(tmp.c_str());  // rank 0 had reserved it
  MPI_Barrier(comm);
  return a.message;
}

InjectedDiskFull::InjectedDiskFull(int rank) {
  const char* h = std::getenv("LLMPI_TEST_DISK_FULL");
  if (!h || !*h) return;
  long long r = -1, n = -1;
  int used = 0;
  if (std::sscanf(h, "rank=%lld,bytes=%lld%n", &r, &n, &used) != 2 || h[used] != '\0' || r < 0 ||
      n < 0)
    user_error("LLMPI_TEST_DISK_FULL: expected \"rank=R,bytes=N\" (R >= 0, N >= 0), got '", h, "'");
  if (r != rank) return;
  rlimit lim{};
  if (::getrlimit(RLIMIT_FSIZE, &lim) != 0) return;
  saved_cur_ = uint64_t(lim.rlim_cur);
  std::signal(SIGXFSZ, SIG_IGN);
  lim.rlim_cur = rlim_t(n);
  active_ = ::setrlimit(RLIMIT_FSIZE, &lim) == 0;
  std::fprintf(stderr,
               "llmpi: rank %d: LLMPI_TEST_DISK_FULL: the disk fills at %lld bytes during this save\n",
               rank, n);
}

InjectedDiskFull::~InjectedDiskFull() {
  if (!active_) return;
  rlimit lim{};
  ::getrlimit(RLIMIT_FSIZE, &lim);
  lim.rlim_cur = rlim_t(saved_cur_);
  ::setrlimit(RLIMIT_FSIZE, &lim);
}

}  // namespace llmpi
