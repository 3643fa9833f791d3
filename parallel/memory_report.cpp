// The per-rank memory table (see memory_report.h).
#include "parallel/memory_report.h"

#include <mpi.h>

#include <cstdio>
#include <vector>

namespace llmpi {

std::string memory_table(const EngineMemory& m, Topology& topo) {
  const int64_t mine[4] = {m.params, m.grads, m.optimizer, m.transient};
  const int n = topo.world_size();
  std::vector<int64_t> all(size_t(4 * n));
  check_mpi(MPI_Allgather(mine, 4, MPI_INT64_T, all.data(), 4, MPI_INT64_T,
                          topo.world_communicator().get()),
            "MPI_Allgather", &topo.world_communicator());
  std::string out = "memory per rank (MiB): rank | tp dp pp | params | grads | optimizer | transient peak\n";
  const double mib = 1.0 / (1024.0 * 1024.0);
  for (int r = 0; r < n; ++r) {
    const Coord c = topo.layout().coord_of(r);
    char line[160];
    std::snprintf(line, sizeof line, "  %4d | %2d %2d %2d | %8.3f | %8.3f | %9.3f | %8.3f\n", r,
                  c.tp, c.dp, c.pp, double(all[size_t(4 * r)]) * mib,
                  double(all[size_t(4 * r + 1)]) * mib, double(all[size_t(4 * r + 2)]) * mib,
                  double(all[size_t(4 * r + 3)]) * mib);
    out += line;
  }
  return out;
}

}  // namespace llmpi
