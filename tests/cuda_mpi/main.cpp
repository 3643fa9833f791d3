// Multi-GPU test main: one Runtime (MPI + Kokkos) around the tests, one GPU per rank
// (cudaSetDevice(node-local rank)). It FAILS when the job does not have exactly
// LLMPI_EXPECTED_RANKS ranks, and exits 77 with "no GPU" on every rank when some node has
// fewer GPUs than ranks on it (ctest: SKIP_RETURN_CODE 77, reported as not run). Only rank 0
// prints GoogleTest's report (the others their failed assertions only, helpers/rank_report.h);
// the exit code is the maximum over ranks.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "core/runtime.h"
#include "helpers/rank_report.h"  // tests/

int main(int argc, char** argv) {
  llmpi::Runtime rt(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (rt.world_size() != LLMPI_EXPECTED_RANKS) {
    if (rt.world_rank() == 0)
      std::fprintf(stderr, "FAIL: this test needs exactly %d MPI ranks, started with %d\n",
                   LLMPI_EXPECTED_RANKS, rt.world_size());
    return 1;
  }

  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
  int gpus = 0;
  if (cudaGetDeviceCount(&gpus) != cudaSuccess) gpus = 0;
  const int enough = gpus >= local_size ? 1 : 0;
  int all_enough = 0;
  MPI_Allreduce(&enough, &all_enough, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all_enough) {
    if (rt.world_rank() == 0)
      std::printf("no GPU: %d ranks per node need as many GPUs, this node has %d; "
                  "multi-GPU tests not run\n", local_size, gpus);
    return 77;
  }
  if (cudaSetDevice(local_rank) != cudaSuccess) {
    std::fprintf(stderr, "FAIL: rank %d: cudaSetDevice(%d) failed\n", rt.world_rank(),
                 local_rank);
    return 1;
  }

  llmpi::test::report_failures_only_off_rank0(rt.world_rank());
  int local = RUN_ALL_TESTS();
  int global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return global;
}
