#include "parallel/communicator.h"

#include <utility>

#include "core/error.h"
#include "core/runtime.h"

namespace llmpi {

namespace {
bool mpi_alive() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}
}  // namespace

void check_mpi(int rc, std::string_view call, const Communicator* comm) {
  if (rc == MPI_SUCCESS) return;
  std::string cause(call);
  if (comm)
    cause += detail::concat(" on communicator '", comm->name(), "' (rank ", comm->rank(), " of ",
                            comm->size(), ")");
  check_mpi_call(rc, cause);
}

Communicator::Communicator(MPI_Comm comm, std::string name) : comm_(comm), name_(std::move(name)) {
  if (comm_ == MPI_COMM_NULL) return;
  // Errors must come back to us as codes (then abort_job), never MPI's default print-and-die
  // nor a silent return that callers ignore.
  check_mpi(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", this);
  check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", this);
  check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", this);
}

Communicator::Communicator(Communicator&& o) noexcept
    : comm_(std::exchange(o.comm_, MPI_COMM_NULL)),
      rank_(std::exchange(o.rank_, -1)),
      size_(std::exchange(o.size_, 0)),
      name_(std::move(o.name_)) {}

Communicator& Communicator::operator=(Communicator&& o) noexcept {
  if (this != &o) {
    reset();
    comm_ = std::exchange(o.comm_, MPI_COMM_NULL);
    rank_ = std::exchange(o.rank_, -1);
    size_ = std::exchange(o.size_, 0);
    name_ = std::move(o.name_);
  }
  return *this;
}

Communicator::~Communicator() { reset(); }

void Communicator::reset() noexcept {
  // After MPI_Finalize nothing can be freed (and the handle is gone with MPI anyway).
  if (comm_ != MPI_COMM_NULL && mpi_alive()) MPI_Comm_free(&comm_);
  comm_ = MPI_COMM_NULL;
  rank_ = -1;
  size_ = 0;
}

Communicator Communicator::dup(MPI_Comm parent, std::string name) {
  MPI_Comm c = MPI_COMM_NULL;
  check_mpi(MPI_Comm_dup(parent, &c), "MPI_Comm_dup (" + name + ")");
  return Communicator(c, std::move(name));
}

Communicator Communicator::split(const Communicator& parent, int color, int key,
                                 std::string name) {
  LLMPI_CHECK(parent.valid(), "split of a null communicator into '", name, "'");
  MPI_Comm c = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split(parent.get(), color < 0 ? MPI_UNDEFINED : color, key, &c),
            "MPI_Comm_split (" + name + ")", &parent);
  return Communicator(c, std::move(name));
}

}  // namespace llmpi
