// ZeRO shard arithmetic (parallel/zero_shard.h): the shards of all ranks partition [0, n)
// in rank order, equal chunks ⌊n/dp⌋ with the tail on the last rank; and the flat
// collectives on a one-rank group are the identity (the multi-rank cases run in the
// data-parallel training tests under mpiexec).
#include <gtest/gtest.h>

#include "backend/backend.h"
#include "parallel/communicator.h"
#include "parallel/mpi_collectives.h"
#include "parallel/zero_shard.h"

using namespace llmpi;

TEST(ZeroShard, ShardsPartitionInRankOrder) {
  for (int64_t n : {0, 1, 3, 7, 8, 1000, 1001, 1023}) {
    for (int64_t dp : {1, 2, 3, 4, 8}) {
      int64_t next = 0;
      for (int64_t r = 0; r < dp; ++r) {
        const ShardRange s = ShardRange::of(n, dp, r);
        EXPECT_EQ(s.begin(), next) << "n " << n << " dp " << dp << " r " << r;
        EXPECT_EQ(s.size(), s.size_of(r));
        EXPECT_EQ(s.size(), n / dp + (r == dp - 1 ? n % dp : 0));
        next = s.end();
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST(ZeroShard, OneRankGroupIsIdentity) {
  Communicator self = Communicator::dup(MPI_COMM_SELF, "self");
  MpiCollectives c(self);
  auto be = make_host_backend();
  Buffer full = be->alloc(Shape{7}, DType::f32), out = be->alloc(Shape{7}, DType::f32);
  for (int i = 0; i < 7; ++i) full.ptr<float>()[i] = float(i + 1);
  const ShardRange s = ShardRange::of(7, 1, 0);
  reduce_scatter_shard(*be, c, s, full, out);
  be->synchronize();
  for (int i = 0; i < 7; ++i) EXPECT_EQ(out.ptr<float>()[i], float(i + 1));
  be->fill(full, 0.0);
  all_gather_shard(*be, c, s, full, out);
  be->synchronize();
  for (int i = 0; i < 7; ++i) EXPECT_EQ(full.ptr<float>()[i], float(i + 1));
}
