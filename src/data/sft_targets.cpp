// SFT targets from tokens, loss mask and documents (sft_targets.h).
#include "data/sft_targets.h"

#include "core/error.h"

namespace llmpi {

void sft_targets(std::span<const int32_t> tokens, std::span<const uint8_t> loss_mask,
                 std::span<const int32_t> doc_start, std::span<int32_t> targets) {
  const size_t n = tokens.size();
  LLMPI_CHECK(loss_mask.size() == n && targets.size() == n &&
                  (doc_start.empty() || doc_start.size() == n),
              "sft_targets: ", n, " tokens, ", loss_mask.size(), " mask entries, ",
              doc_start.size(), " document starts, ", targets.size(), " targets");
  for (size_t t = 0; t < n; ++t) {
    const size_t next = t + 1;
    const bool counted = next < n && loss_mask[next] != 0 &&
                         (doc_start.empty() || doc_start[next] != static_cast<int32_t>(next));
    targets[t] = counted ? tokens[next] : -1;
  }
}

}  // namespace llmpi
