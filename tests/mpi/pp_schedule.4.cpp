// Pipeline parallelism on 4 ranks (pp = 4): 1F1B for GPT-2 (tied embeddings between
// stage 0 and stage 3) and Llama, and interleaved 1F1B with 2 virtual stages — each equal
// to the 1-rank model (pp_harness.h).
#include "pp_harness.h"

using namespace llmpi;
using namespace llmpi::pp_test;

TEST(PipelinePp4, OneFOneBGpt2) { check_pipeline_matches_single_rank({Arch::gpt2, 4, 1, 8}); }
TEST(PipelinePp4, OneFOneBLlama) { check_pipeline_matches_single_rank({Arch::llama, 6, 1, 4}); }
TEST(PipelinePp4, OneFOneBFewerMicroBatchesThanStages) {
  check_pipeline_matches_single_rank({Arch::gpt2, 4, 1, 2});
}
TEST(PipelinePp4, InterleavedGpt2) { check_pipeline_matches_single_rank({Arch::gpt2, 8, 2, 8}); }
TEST(PipelinePp4, InterleavedLlama) { check_pipeline_matches_single_rank({Arch::llama, 8, 2, 4}); }
TEST(PipelinePp4, InterleavedOneStorePerRank) {
  PipeCase c{Arch::gpt2, 8, 2, 4};
  c.shared_store = true;
  check_pipeline_matches_single_rank(c);
}
