// Pipeline parallelism on 2 ranks (pp = 2): 1F1B and interleaved 1F1B (2 virtual stages),
// GPT-2 (tied embeddings across the two stages) and Llama, balanced and configured splits,
// micro-batch counts below, at and above pp — each equal to the 1-rank model (pp_harness.h).
#include "pp_harness.h"

using namespace llmpi;
using namespace llmpi::pp_test;

TEST(PipelinePp2, OneFOneBGpt2) { check_pipeline_matches_single_rank({Arch::gpt2, 4, 1, 4}); }
TEST(PipelinePp2, OneFOneBLlama) { check_pipeline_matches_single_rank({Arch::llama, 4, 1, 4}); }
TEST(PipelinePp2, OneFOneBOneMicroBatch) {
  check_pipeline_matches_single_rank({Arch::gpt2, 2, 1, 1});
}
TEST(PipelinePp2, OneFOneBOddMicroBatches) {
  check_pipeline_matches_single_rank({Arch::llama, 3, 1, 5});
}
TEST(PipelinePp2, ConfiguredSplit) {
  check_pipeline_matches_single_rank({Arch::gpt2, 4, 1, 4, {3, 1}});
}
TEST(PipelinePp2, InterleavedGpt2) { check_pipeline_matches_single_rank({Arch::gpt2, 4, 2, 4}); }
TEST(PipelinePp2, InterleavedLlama) {
  check_pipeline_matches_single_rank({Arch::llama, 4, 2, 6});
}
TEST(PipelinePp2, InterleavedMicroBatchesEqualPp) {
  check_pipeline_matches_single_rank({Arch::gpt2, 5, 2, 2, {1, 2, 1, 1}});
}
TEST(PipelinePp2, InterleavedOneStorePerRank) {
  PipeCase c{Arch::gpt2, 4, 2, 4};
  c.shared_store = true;
  check_pipeline_matches_single_rank(c);
}
TEST(PipelinePp2, OneFOneBOneStorePerRankLlama) {
  PipeCase c{Arch::llama, 4, 1, 2};
  c.shared_store = true;
  check_pipeline_matches_single_rank(c);
}
