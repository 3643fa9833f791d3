#include "core/runtime.h"

#include <mpi.h>

#include <Kokkos_Core.hpp>
#include <cstdio>
#include <cstdlib>

namespace llmpi {

// Kokkos sees only the program name: its own option parser would otherwise answer our
// subcommands' --help. Kokkos settings come from its KOKKOS_* environment variables.
struct Runtime::KokkosGuard {
  int argc = 1;
  char* argv[2];
  Kokkos::ScopeGuard guard;
  explicit KokkosGuard(char* prog) : argv{prog, nullptr}, guard(argc, argv) {}
};

Runtime::Runtime(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &thread_level_);
    mpi_owned_ = true;
  } else {
    MPI_Query_thread(&thread_level_);
  }
  // Errors on the world communicator return codes; collectives wrappers turn them into
  // exceptions that end the job through abort_job.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  kokkos_ = std::make_unique<KokkosGuard>(argc > 0 ? argv[0] : nullptr);
}

Runtime::~Runtime() {
  kokkos_.reset();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (mpi_owned_ && !finalized) MPI_Finalize();
}

void abort_job(const char* cause, int code) {
  int rank = 0, initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "llmpi: rank %d: fatal: %s\n", rank, cause);
  std::fflush(stderr);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace llmpi
