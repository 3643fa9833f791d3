// Checkpoint resume on 8 ranks (resume_harness.h): bitwise on tp2·pp2·dp2 ZeRO 1, and the
// issue's resharding matrix from tp2·pp2·dp2 ZeRO 1 — to one rank (MPI_COMM_SELF), dp4 ZeRO 3
// (× tp2 to fill 8 ranks), tp4 (× dp2) and pp2 interleaved (× dp4) — each matching the
// uninterrupted run with the same data order.
#include "resume_harness.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(Resume8, BitwiseTp2Pp2Dp2Zero1) {
  expect_bitwise_resume(shared_corpus("resume8_bitwise"), {.tp = 2, .pp = 2, .dp = 2, .zero = 1});
}

TEST(Resume8, ReshardFromTp2Pp2Dp2Zero1) {
  const auto d = shared_corpus("reshard8");
  const ResumeLayout source{.tp = 2, .pp = 2, .dp = 2, .zero = 1};
  expect_reshard(d, source, {.self = true});
  expect_reshard(d, source, {.tp = 2, .dp = 4, .zero = 3});
  expect_reshard(d, source, {.tp = 4, .dp = 2});
  expect_reshard(d, source, {.pp = 2, .dp = 4, .virtual_stages = 2});
}
