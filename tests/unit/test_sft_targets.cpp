// SFT targets (data/sft_targets.h), by hand: the mask marks the predicted token (shifted with
// the labels), nothing is predicted across a document boundary or past the end.
#include <gtest/gtest.h>

#include <vector>

#include "core/documents.h"
#include "core/error.h"
#include "data/sft_targets.h"

using namespace llmpi;

TEST(SftTargets, MaskShiftsWithTheLabels) {
  //                              prompt  | answer + end-of-turn
  const std::vector<int32_t> tokens = {10, 11, 12, 20, 21, 99};
  const std::vector<uint8_t> mask = {0, 0, 0, 1, 1, 1};
  std::vector<int32_t> tg(tokens.size());
  sft_targets(tokens, mask, {}, tg);
  // The last prompt token predicts the first answer token; the answer's last token predicts
  // the end-of-turn token (so the model learns to stop); the end-of-turn has no next token.
  EXPECT_EQ(tg, (std::vector<int32_t>{-1, -1, 20, 21, 99, -1}));
}

TEST(SftTargets, NothingCrossesADocumentBoundary) {
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7};
  const std::vector<uint8_t> mask = {0, 1, 1, 1, 0, 1, 1};  // token 3 starts document 2
  const std::vector<int32_t> ds = doc_start_from_lengths(std::vector<int64_t>{3, 2, 2}, 7);
  std::vector<int32_t> tg(tokens.size());
  sft_targets(tokens, mask, ds, tg);
  EXPECT_EQ(tg, (std::vector<int32_t>{2, 3, -1, -1, -1, 7, -1}));
  // Without documents the same mask predicts token 4 from token 3 (position 2).
  sft_targets(tokens, mask, {}, tg);
  EXPECT_EQ(tg, (std::vector<int32_t>{2, 3, 4, -1, 6, 7, -1}));
}

TEST(SftTargets, RejectsMismatchedLengths) {
  const std::vector<int32_t> tokens = {1, 2, 3};
  const std::vector<uint8_t> short_mask = {1, 1};
  std::vector<int32_t> tg(3);
  EXPECT_THROW(sft_targets(tokens, short_mask, {}, tg), InternalError);
  const std::vector<uint8_t> mask = {1, 1, 1};
  const std::vector<int32_t> ds = {0, 0};
  EXPECT_THROW(sft_targets(tokens, mask, ds, tg), InternalError);
}
