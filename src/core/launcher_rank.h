#pragma once
// The launcher's rank: which rank of the job this process is, as the launcher (mpiexec, srun)
// announces it in the environment — known before MPI_Init, when no collective is possible.
// The first of these variables that is set decides:
//   OMPI_COMM_WORLD_RANK  Open MPI's mpirun/mpiexec
//   PMIX_RANK             PMIx launchers: Open MPI 5's prterun, srun --mpi=pmix
//   PMI_RANK              MPICH's and Intel MPI's hydra (mpiexec), srun --mpi=pmi2
//   SLURM_PROCID          srun (any MPI)
// SLURM_PROCID comes last: under an mpirun inside a Slurm job, every rank inherits one that is
// not its own (the batch shell's 0, or its node daemon's), while its own variable comes first.
// None set: the process runs alone (or under a launcher not listed). A value that is not a
// whole number >= 0 tells nothing: the rank is unknown then too, never guessed.
#include <optional>

namespace llmpi {

// This process's rank in the launch, or nullopt when unknown (see above).
std::optional<int> launcher_rank();

// Whether this process prints what every rank of the launch would print alike (a bad command
// line, --help): the launcher's rank 0, and any process whose rank is unknown (one started
// alone always prints).
bool prints_for_all_ranks();

}  // namespace llmpi
