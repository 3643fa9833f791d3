// Failure agreement (core/agreement.h) on 4 ranks: a UserError that only some ranks throw
// is thrown on every rank, with the lowest failing rank's message ("(on rank R)" for R > 0);
// no failure: every rank returns f's value; spread gives every rank the least and greatest of
// each value; agree_or_abort agrees the same way when every rank reaches it (the bounded wait
// of a rank the others never meet ends the job: tests/e2e/rank_failures.sh).
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "core/agreement.h"
#include "parallel/communicator.h"

namespace llmpi {
namespace {

std::string thrown(MPI_Comm comm, int fail_mask, int rank) {
  try {
    agreed(comm, [&] {
      if (fail_mask >> rank & 1) user_error("bad input seen by rank ", rank);
    });
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(Agreement, OneRanksUserErrorIsEveryRanksWithTheLowestFailingRanksMessage) {
  Communicator c = Communicator::dup(MPI_COMM_WORLD, "agreement");
  ASSERT_EQ(c.size(), 4);
  const int r = c.rank();
  EXPECT_EQ(thrown(c.get(), 0b0000, r), "");
  EXPECT_EQ(thrown(c.get(), 0b0001, r), "bad input seen by rank 0");
  EXPECT_EQ(thrown(c.get(), 0b1000, r), "bad input seen by rank 3 (on rank 3)");
  EXPECT_EQ(thrown(c.get(), 0b1010, r), "bad input seen by rank 1 (on rank 1)");
  // A value passes through when no rank fails.
  EXPECT_EQ(agreed(c.get(), [&] { return 10 * r; }), 10 * r);
}

TEST(Agreement, SpreadIsTheLeastAndGreatestValueOnEveryRank) {
  Communicator c = Communicator::dup(MPI_COMM_WORLD, "spread");
  const int r = c.rank();
  const Spread s = spread(c.get(), {int64_t(r) * 10 - 5, 7, r == 2 ? 8 : 7});
  EXPECT_EQ(s.lo, (std::vector<int64_t>{-5, 7, 7}));
  EXPECT_EQ(s.hi, (std::vector<int64_t>{25, 7, 8}));
  EXPECT_FALSE(s.same(0));
  EXPECT_TRUE(s.same(1));
  EXPECT_FALSE(s.same(2));
}

TEST(Agreement, SetupAgreementWhenEveryRankArrives) {
  Communicator c = Communicator::dup(MPI_COMM_WORLD, "setup");
  const int r = c.rank();
  EXPECT_FALSE(agree_or_abort(c.get(), "", 5, "test"));
  const AgreedFailure f =
      agree_or_abort(c.get(), r >= 2 ? "failed on " + std::to_string(r) : "", 30, "test");
  ASSERT_TRUE(f);
  EXPECT_EQ(f.rank, 2);
  EXPECT_EQ(f.text(), "failed on 2 (on rank 2)");
}

}  // namespace
}  // namespace llmpi
