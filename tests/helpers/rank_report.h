#pragma once
// GoogleTest output for multi-rank test mains (tests/mpi_main.cpp, tests/cuda_mpi/main.cpp):
// rank 0 keeps the full report; every other rank prints only its failed assertions, each
// line prefixed "rank N:", so a check that fails on rank 2 alone says what failed instead
// of only turning the job's exit code non-zero.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace llmpi::test {

class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestStart(const ::testing::TestInfo& t) override {
    test_ = std::string(t.test_suite_name()) + "." + t.name();
  }
  // Called with GoogleTest's lock held: nothing here may call back into UnitTest.
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "rank %d: FAILED %s at %s:%d\nrank %d: %s\n", rank_, test_.c_str(),
                 r.file_name() ? r.file_name() : "?", r.line_number(), rank_, r.message());
    std::fflush(stderr);
  }

 private:
  int rank_;
  std::string test_;
};

// Rank 0: GoogleTest's default printer. Other ranks: failures only.
inline void report_failures_only_off_rank0(int rank) {
  if (rank == 0) return;
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  delete listeners.Release(listeners.default_result_printer());
  listeners.Append(new RankFailurePrinter(rank));
}

}  // namespace llmpi::test
