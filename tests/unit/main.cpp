// Unit-test main: one Runtime (MPI + Kokkos) around all GoogleTest tests.
#include <gtest/gtest.h>

#include "core/runtime.h"

int main(int argc, char** argv) {
  llmpi::Runtime rt(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
