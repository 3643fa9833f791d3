#pragma once
// Runtime: owns process-wide initialization, in order — MPI (threads: MULTIPLE requested,
// needed by async checkpoint writes), then Kokkos — and finalizes in reverse on scope exit.
// Exactly one lives in main() (and one in each test main). Never a global.
#include <memory>

namespace llmpi {

class Runtime {
 public:
  Runtime(int& argc, char**& argv);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  int world_rank() const { return rank_; }
  int world_size() const { return size_; }
  int thread_level() const { return thread_level_; }  // MPI_THREAD_* granted

 private:
  struct KokkosGuard;
  int rank_ = 0, size_ = 1, thread_level_ = 0;
  bool mpi_owned_ = false;
  std::unique_ptr<KokkosGuard> kokkos_;
};

// Abort every rank of the job (MPI_Abort) after printing "rank R: cause" to stderr.
// Used for failures after which no rank can continue safely.
[[noreturn]] void abort_job(const char* cause, int code = 1);

}  // namespace llmpi
