// The launcher's rank from the environment, before MPI_Init (see launcher_rank.h).
#include "core/launcher_rank.h"

#include <cerrno>
#include <cstdlib>

namespace llmpi {

std::optional<int> launcher_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    const char* value = std::getenv(name);
    if (value == nullptr) continue;
    char* end = nullptr;
    errno = 0;
    const long r = std::strtol(value, &end, 10);
    const bool whole = *value >= '0' && *value <= '9' && *end == '\0' && errno == 0;
    if (!whole || r > 1'000'000'000) return std::nullopt;  // set, but no rank: unknown
    return static_cast<int>(r);
  }
  return std::nullopt;
}

bool prints_for_all_ranks() {
  const std::optional<int> r = launcher_rank();
  return !r || *r == 0;
}

}  // namespace llmpi
