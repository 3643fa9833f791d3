#include "core/agreement.h"

#include <chrono>
#include <thread>

#include "core/mpi_error.h"
#include "core/runtime.h"

namespace llmpi {
namespace {

int size_of(MPI_Comm comm) {
  int n = 1;
  if (comm != MPI_COMM_NULL) check_mpi_call(MPI_Comm_size(comm, &n), "MPI_Comm_size");
  return n;
}

int rank_of(MPI_Comm comm) {
  int r = 0;
  if (comm != MPI_COMM_NULL) check_mpi_call(MPI_Comm_rank(comm, &r), "MPI_Comm_rank");
  return r;
}

// Every rank, once `first` (the lowest failing rank, or size: none) is agreed: its message.
AgreedFailure share(MPI_Comm comm, int first, const std::string& mine) {
  AgreedFailure a;
  if (first >= size_of(comm)) return a;
  a.rank = first;
  a.message = mine;
  int n = int(a.message.size());
  check_mpi_call(MPI_Bcast(&n, 1, MPI_INT, first, comm), "MPI_Bcast (failure agreement)");
  a.message.resize(size_t(n));
  check_mpi_call(MPI_Bcast(a.message.data(), n, MPI_CHAR, first, comm), "MPI_Bcast (failure agreement)");
  return a;
}

}  // namespace

std::string AgreedFailure::text() const {
  return rank > 0 ? message + " (on rank " + std::to_string(rank) + ")" : message;
}

AgreedFailure agree_on_failure(MPI_Comm comm, const std::string& mine) {
  if (comm == MPI_COMM_NULL) return mine.empty() ? AgreedFailure{} : AgreedFailure{0, mine};
  const int size = size_of(comm);
  const int vote = mine.empty() ? size : rank_of(comm);
  int first = size;
  check_mpi_call(MPI_Allreduce(&vote, &first, 1, MPI_INT, MPI_MIN, comm),
            "MPI_Allreduce (failure agreement)");
  return share(comm, first, mine);
}

Spread spread(MPI_Comm comm, const std::vector<int64_t>& values) {
  Spread s{values, values};
  if (comm == MPI_COMM_NULL || values.empty()) return s;
  const int n = int(values.size());
  check_mpi_call(MPI_Allreduce(MPI_IN_PLACE, s.lo.data(), n, MPI_INT64_T, MPI_MIN, comm),
            "MPI_Allreduce (spread)");
  check_mpi_call(MPI_Allreduce(MPI_IN_PLACE, s.hi.data(), n, MPI_INT64_T, MPI_MAX, comm),
            "MPI_Allreduce (spread)");
  return s;
}

AgreedFailure agree_or_abort(MPI_Comm comm, const std::string& mine, double wait_s,
                          const std::string& command) {
  if (comm == MPI_COMM_NULL) return agree_on_failure(comm, mine);
  // Non-blocking on every rank (a blocking collective never matches a non-blocking one). A
  // rank that failed waits a bounded time: the others either failed alike and arrive here
  // soon, or went on into a collective of the setup that this rank will never join.
  const int size = size_of(comm);
  const int vote = mine.empty() ? size : rank_of(comm);
  int first = size;
  MPI_Request req = MPI_REQUEST_NULL;
  check_mpi_call(MPI_Iallreduce(&vote, &first, 1, MPI_INT, MPI_MIN, comm, &req),
            "MPI_Iallreduce (failure agreement)");
  if (mine.empty()) {
    check_mpi_call(MPI_Wait(&req, MPI_STATUS_IGNORE), "MPI_Wait (failure agreement)");
    return share(comm, first, mine);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  for (int done = 0;;) {
    check_mpi_call(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test (failure agreement)");
    if (done) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      const std::string cause = command + ": error: " + mine +
                                " (found on this rank only: the other ranks went on and did not "
                                "stop within " + std::to_string(int(wait_s)) + " s; ending the job)";
      abort_job(cause.c_str(), 2);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return share(comm, first, mine);
}

}  // namespace llmpi
