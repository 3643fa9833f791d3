#include "analysis/rank_gather.h"

#include "parallel/communicator.h"

namespace llmpi {

int comm_rank(MPI_Comm comm) {
  int r = 0;
  check_mpi(MPI_Comm_rank(comm, &r), "MPI_Comm_rank");
  return r;
}

int comm_size(MPI_Comm comm) {
  int s = 1;
  check_mpi(MPI_Comm_size(comm, &s), "MPI_Comm_size");
  return s;
}

namespace {
// Rank 0: every rank's count and its displacement in the gathered buffer; returns the total.
int gather_counts(int mine, MPI_Comm comm, std::vector<int>& counts, std::vector<int>& displs) {
  const size_t size = size_t(comm_size(comm));
  counts.assign(size, 0);
  displs.assign(size, 0);
  check_mpi(MPI_Gather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, comm), "MPI_Gather");
  int total = 0;
  for (size_t r = 0; r < size; ++r) {
    displs[r] = total;
    total += counts[r];
  }
  return total;
}
}  // namespace

void gather_rows(std::vector<double>& v, MPI_Comm comm) {
  std::vector<int> counts, displs;
  const int mine = int(v.size());
  const int total = gather_counts(mine, comm, counts, displs);
  std::vector<double> all(comm_rank(comm) == 0 ? size_t(total) : 0);
  check_mpi(MPI_Gatherv(v.data(), mine, MPI_DOUBLE, all.data(), counts.data(), displs.data(),
                        MPI_DOUBLE, 0, comm),
            "MPI_Gatherv");
  if (comm_rank(comm) == 0) v.swap(all);
}

std::vector<std::string> gather_strings(const std::vector<std::string>& mine, MPI_Comm comm) {
  // Packed as one buffer per rank: each string followed by a NUL.
  std::string packed;
  for (const std::string& s : mine) packed += s + '\0';
  std::vector<int> counts, displs;
  const int n = int(packed.size());
  const int total = gather_counts(n, comm, counts, displs);
  std::string all(size_t(total), '\0');
  check_mpi(MPI_Gatherv(packed.data(), n, MPI_CHAR, all.data(), counts.data(), displs.data(),
                        MPI_CHAR, 0, comm),
            "MPI_Gatherv");
  if (comm_rank(comm) != 0) return mine;
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i] == '\0') {
      out.push_back(all.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

std::string bcast_string(std::string s, int root, MPI_Comm comm) {
  int64_t n = int64_t(s.size());
  check_mpi(MPI_Bcast(&n, 1, MPI_INT64_T, root, comm), "MPI_Bcast");
  s.resize(size_t(n));
  if (n) check_mpi(MPI_Bcast(s.data(), int(n), MPI_CHAR, root, comm), "MPI_Bcast");
  return s;
}

}  // namespace llmpi
