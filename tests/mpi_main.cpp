// Multi-rank test main: one Runtime around the tests; FAILS (never skips) when the job does
// not have exactly LLMPI_EXPECTED_RANKS ranks. Only rank 0 prints GoogleTest's report (the
// others print their failed assertions only, helpers/rank_report.h); the
// exit code is the OR over ranks, so a failure on any rank fails the test.
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
  llmpi::test::report_failures_only_off_rank0(rt.world_rank());
  int local = RUN_ALL_TESTS();
  int global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return global;
}
