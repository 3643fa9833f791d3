#pragma once
// Communicator: the one RAII owner of an MPI communicator. Created by duplicating or
// splitting a parent, freed (MPI_Comm_free) on destruction; move-only, so a communicator
// can never be freed twice or leaked. A rank that is not a member of a split (color
// MPI_UNDEFINED) holds a null Communicator (valid() == false).
// Every communicator returns MPI error codes (MPI_ERRORS_RETURN) and every call made on it
// goes through check_mpi, which ends the whole job (abort_job) naming the rank, the call,
// the communicator and MPI's own error string — a failed call never leaves a rank hanging.
// This header is the MPI-specific layer; the Collectives interface above it has no MPI types.
#include <mpi.h>

#include <string>
#include <string_view>

#include "core/mpi_error.h"  // mpi_error_string, check_mpi_call

namespace llmpi {

class Communicator {
 public:
  Communicator() = default;  // null: not a member of any group
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  Communicator(Communicator&& o) noexcept;
  Communicator& operator=(Communicator&& o) noexcept;
  ~Communicator();

  // A private duplicate of `parent` (e.g. MPI_COMM_WORLD), so that our traffic never
  // matches messages of other libraries on the parent.
  static Communicator dup(MPI_Comm parent, std::string name);
  // MPI_Comm_split of `parent`: ranks with equal color form one group, ordered by key.
  // color < 0 means "not a member": the result is a null Communicator.
  static Communicator split(const Communicator& parent, int color, int key, std::string name);

  bool valid() const { return comm_ != MPI_COMM_NULL; }
  MPI_Comm get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& name() const { return name_; }

 private:
  Communicator(MPI_Comm comm, std::string name);
  void reset() noexcept;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = -1, size_ = 0;
  std::string name_;
};

// rc != MPI_SUCCESS → abort_job("<call> on communicator '<name>' (rank r of n): <MPI error
// string>"). `comm` may be null (MPI_COMM_NULL) for calls that are not on a communicator.
void check_mpi(int rc, std::string_view call, const Communicator* comm = nullptr);

}  // namespace llmpi
