#pragma once
// MPI's error codes in words, and the one rule for a failed MPI call: rc != MPI_SUCCESS →
// abort_job("<what> failed: <MPI error string>") (no rank can continue after a failed
// collective). parallel/communicator.h's check_mpi adds the communicator's name to `what`.
#include <string>
#include <string_view>

namespace llmpi {

// MPI's text for an error code, e.g. "MPI_ERR_TRUNCATE: message truncated".
std::string mpi_error_string(int rc);

void check_mpi_call(int rc, std::string_view what);

}  // namespace llmpi
