// Pipeline × tensor parallel on 4 ranks (tp = 2 × pp = 2): each pipeline chunk is
// tp-sharded (column/row-parallel, vocab-parallel embedding and loss), with and without
// sequence parallelism (the stages then exchange only their local token rows), 1F1B and
// interleaved — equal to the 1-rank model slab by slab (pp_harness.h). GPT-2's tied
// embedding is vocab-sharded on both ends and synced per tp rank over the embedding group.
#include "pp_harness.h"

using namespace llmpi;
using namespace llmpi::pp_test;

namespace {
PipeCase tp2(Arch arch, int64_t v, bool sp, bool shared = false) {
  PipeCase c{arch, 4, v, 4};
  c.tp = 2;
  c.sequence_parallel = sp;
  c.shared_store = shared;
  return c;
}
}  // namespace

TEST(PipelineTp2Pp2, OneFOneBGpt2) { check_pipeline_matches_single_rank(tp2(Arch::gpt2, 1, false)); }
TEST(PipelineTp2Pp2, OneFOneBLlama) { check_pipeline_matches_single_rank(tp2(Arch::llama, 1, false)); }
TEST(PipelineTp2Pp2, SequenceParallelGpt2) {
  check_pipeline_matches_single_rank(tp2(Arch::gpt2, 1, true));
}
TEST(PipelineTp2Pp2, SequenceParallelLlama) {
  check_pipeline_matches_single_rank(tp2(Arch::llama, 1, true));
}
TEST(PipelineTp2Pp2, InterleavedSequenceParallelGpt2) {
  check_pipeline_matches_single_rank(tp2(Arch::gpt2, 2, true, true));
}
TEST(PipelineTp2Pp2, InterleavedLlama) {
  check_pipeline_matches_single_rank(tp2(Arch::llama, 2, false, true));
}
