// CUDA test main: one Runtime (MPI + Kokkos, for the host reference backend) around the
// GoogleTest tests. On a machine without a usable GPU it prints "no GPU: CUDA tests not run"
// and exits 77, which ctest (SKIP_RETURN_CODE) reports as "not run", never as passed.
#include <gtest/gtest.h>

#include <cstdio>

#include "backend/cuda/cuda_backend.h"
#include "core/runtime.h"

int main(int argc, char** argv) {
  llmpi::Runtime rt(argc, argv);
  if (llmpi::cuda_device_count() == 0) {
    std::printf("no GPU: CUDA tests not run\n");
    return 77;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
