#pragma once
// The few collectives the analysis needs over MPI_COMM_WORLD-like communicators: results
// computed per rank (row blocks in rank order, notes) gathered on rank 0, and strings
// broadcast from one rank. Thin, checked wrappers (check_mpi ends the job on an MPI error).
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace llmpi {

int comm_rank(MPI_Comm comm);
int comm_size(MPI_Comm comm);

// Rank 0: v becomes the concatenation of every rank's v in rank order (others: unchanged).
void gather_rows(std::vector<double>& v, MPI_Comm comm);
// Rank 0: every rank's strings in rank order (others: their own).
std::vector<std::string> gather_strings(const std::vector<std::string>& mine, MPI_Comm comm);
// `s` of rank `root` on every rank.
std::string bcast_string(std::string s, int root, MPI_Comm comm);

}  // namespace llmpi
