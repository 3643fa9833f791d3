#include "core/mpi_error.h"

#include <mpi.h>

#include "core/runtime.h"

namespace llmpi {

std::string mpi_error_string(int rc) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
    return "MPI error code " + std::to_string(rc);
  return std::string(text, static_cast<size_t>(len));
}

void check_mpi_call(int rc, std::string_view what) {
  if (rc == MPI_SUCCESS) return;
  const std::string cause = std::string(what) + " failed: " + mpi_error_string(rc);
  abort_job(cause.c_str());
}

}  // namespace llmpi
