// The per-rank memory table (see memory_report.h).
#include "parallel/memory_report.h"

#include <mpi.h>

#include <cstdio>
#include <vector>

namespace llmpi {

std::string memory_table(const EngineMemory& m, Topology& topo) {
  constexpr int K = 5;
  const int64_t mine[K] = {m.params, m.grads, m.optimizer, m.transient, m.frozen};
  const int n = topo.world_size();
  std::vector<int64_t> all(size_t(K * n));
  check_mpi(MPI_Allgather(mine, K, MPI_INT64_T, all.data(), K, MPI_INT64_T,
                          topo.world_communicator().get()),
            "MPI_Allgather", &topo.world_communicator());
  bool frozen = false;
  for (int r = 0; r < n; ++r) frozen = frozen || all[size_t(K * r + 4)] > 0;
  std::string out = "memory per rank (MiB): rank | tp dp pp | params | grads | optimizer | transient peak";
  out += frozen ? " | frozen base\n" : "\n";
  const double mib = 1.0 / (1024.0 * 1024.0);
  for (int r = 0; r < n; ++r) {
    const Coord c = topo.layout().coord_of(r);
    const int64_t* v = all.data() + K * r;
    char line[192];
    std::snprintf(line, sizeof line, "  %4d | %2d %2d %2d | %8.3f | %8.3f | %9.3f | %8.3f", r,
                  c.tp, c.dp, c.pp, double(v[0]) * mib, double(v[1]) * mib, double(v[2]) * mib,
                  double(v[3]) * mib);
    out += line;
    if (frozen) {
      std::snprintf(line, sizeof line, " | %9.3f", double(v[4]) * mib);
      out += line;
    }
    out += "\n";
  }
  return out;
}

}  // namespace llmpi
