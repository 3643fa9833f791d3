// GradReducer (parallel/grad_reducer.h) on a one-rank group: the bucket plan (contiguous,
// in store order, at most bucket_elems, cut between model parts and between synced and
// other parameters) and when buckets start — a part's bucket once it was written M times
// (overlap on), late (synced) buckets and everything without overlap only in finish().
#include <gtest/gtest.h>

#include <algorithm>

#include "backend/backend.h"
#include "model/param_layout.h"
#include "parallel/communicator.h"
#include "parallel/grad_reducer.h"
#include "parallel/mpi_collectives.h"

using namespace llmpi;

namespace {

ModelConfig tiny_gpt2() {
  ModelConfig m;
  m.arch = Arch::gpt2, m.vocab_size = 64, m.n_layer = 3, m.n_head = 2, m.d_model = 16,
  m.max_seq_len = 8, m.d_ff = 64;
  return m;
}

}  // namespace

TEST(GradReducer, BucketsFollowTheStoreAndStartWhenFinal) {
  const ModelConfig m = tiny_gpt2();
  auto be = make_host_backend();
  ParamStore store(*be, transformer_params(m, StageRange::full(m)), DType::f32);
  Communicator self = Communicator::dup(MPI_COMM_SELF, "self");
  MpiCollectives c(self);
  const int64_t cap = 1000;
  auto late = [](const ParamInfo& q) { return q.name == "layers.1.attn_norm.weight"; };
  for (bool overlap : {true, false}) {
    SCOPED_TRACE(overlap ? "overlap" : "no overlap");
    GradReducer r(*be, c, store, ShardRange::of(store.numel(), 1, 0), 2, cap, overlap, late);
    const auto& bs = r.buckets();
    ASSERT_FALSE(bs.empty());
    EXPECT_EQ(bs.front().begin, 0);
    EXPECT_EQ(bs.back().end, store.numel());
    for (size_t i = 0; i < bs.size(); ++i) {
      EXPECT_LE(bs[i].end - bs[i].begin, cap);
      EXPECT_LT(bs[i].begin, bs[i].end);
      if (i) EXPECT_EQ(bs[i].begin, bs[i - 1].end);
      const bool blocks = bs[i].parts.front() >= 0;
      for (int64_t p : bs[i].parts) EXPECT_EQ(p >= 0, blocks) << "a bucket mixes blocks and ends";
    }
    int64_t late_buckets = 0;
    for (const auto& b : bs) late_buckets += b.late;
    EXPECT_EQ(late_buckets, 1);  // the one synced gain, alone
    // Two micro-batches: nothing is final after the first; the last block after the second.
    r.begin_step();
    r.grads_written(GradListener::kHead);
    for (int64_t l = 2; l >= 0; --l) r.grads_written(l);
    r.grads_written(GradListener::kEmbedding);
    EXPECT_EQ(r.started_early(), 0);
    // Buckets (not late) whose parts are all among `done`.
    auto final_among = [&](std::vector<int64_t> done) {
      int64_t n = 0;
      for (const auto& b : bs) {
        bool all = !b.late;
        for (int64_t p : b.parts) all = all && std::find(done.begin(), done.end(), p) != done.end();
        n += all;
      }
      return n;
    };
    r.grads_written(GradListener::kHead);
    EXPECT_EQ(r.started_early(), overlap ? final_among({GradListener::kHead}) : 0);
    r.grads_written(2);
    EXPECT_GT(final_among({2}), 0);
    EXPECT_EQ(r.started_early(), overlap ? final_among({GradListener::kHead, 2}) : 0);
    r.grads_written(1);
    r.grads_written(0);
    r.grads_written(GradListener::kEmbedding);
    // Everything but the late bucket has started with overlap; nothing without.
    EXPECT_EQ(r.started_early(), overlap ? int64_t(bs.size()) - 1 : 0);
    r.finish();
  }
}
