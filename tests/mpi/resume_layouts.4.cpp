// Checkpoint resume on 4 ranks (resume_harness.h). Bitwise: dp4 ZeRO 1, tp2·dp2, pp2·dp2
// each resume on their own layout exactly. Resharding: a checkpoint of tp2·dp2 ZeRO 1
// continues on one rank (MPI_COMM_SELF), dp4 ZeRO 3, tp4 and pp2 interleaved · dp2; one of
// dp4 ZeRO 3 continues on tp2·pp2 — all matching the uninterrupted run with the same data.
#include "resume_harness.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(ResumeLayouts4, BitwiseDp4Zero1) {
  expect_bitwise_resume(shared_corpus("resume_dp4"), {.dp = 4, .zero = 1});
}

TEST(ResumeLayouts4, BitwiseTp2Dp2) {
  expect_bitwise_resume(shared_corpus("resume_tp2dp2"), {.tp = 2, .dp = 2});
}

TEST(ResumeLayouts4, BitwisePp2Dp2) {
  expect_bitwise_resume(shared_corpus("resume_pp2dp2"), {.pp = 2, .dp = 2});
}

TEST(ResumeLayouts4, ReshardFromTp2Dp2Zero1) {
  const auto d = shared_corpus("reshard_tp2dp2");
  const ResumeLayout source{.tp = 2, .dp = 2, .zero = 1};
  expect_reshard(d, source, {.self = true});
  expect_reshard(d, source, {.dp = 4, .zero = 3});
  expect_reshard(d, source, {.tp = 4});
  expect_reshard(d, source, {.pp = 2, .dp = 2, .virtual_stages = 2});
}

TEST(ResumeLayouts4, ReshardFromDp4Zero3ToTp2Pp2) {
  expect_reshard(shared_corpus("reshard_dp4z3"), {.dp = 4, .zero = 3}, {.tp = 2, .pp = 2});
}
