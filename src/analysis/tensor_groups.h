#pragma once
// Parameter tensors grouped the way the report draws them: one group per transformer layer
// ("layers.3.attn.q.weight" → "layer 3") and one per other top-level part ("embed.tokens",
// "embed.positions" → "embed"; "final_norm.weight" → "final_norm"; "head.weight" → "head").
// Groups are ordered embed, layer 0, layer 1, ..., then the rest by name; `index` says, per
// tensor, which group it belongs to. Aggregates over a group are sums of per-tensor sums of
// squares, so a group's norm is the norm of its tensors concatenated.
#include <string>
#include <vector>

namespace llmpi {

struct TensorGroups {
  std::vector<std::string> names;  // group names in display order
  std::vector<size_t> index;       // [tensors] group of each tensor
  std::vector<bool> is_layer;      // [groups] a transformer layer (drawn with the layer ramp)
};

TensorGroups group_tensors(const std::vector<std::string>& tensors);

}  // namespace llmpi
