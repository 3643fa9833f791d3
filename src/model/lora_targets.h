#pragma once
// Which linear maps of a transformer carry LoRA adapters (model/lora.h), and the adapters'
// parameters. A target module is named as in [lora] target_modules; each has one base weight
// per layer (the head: one for the model) and one branch beside it:
//   q, k, v  layers.<i>.attn.{q,k,v}.weight   rows of the packed q|k|v map   column-parallel
//   o        layers.<i>.attn.out.weight                                      row-parallel
//   gate, up layers.<i>.mlp.{gate,up}.weight  rows of the packed gate|up map column-parallel
//   down     layers.<i>.mlp.down.weight                                      row-parallel
//   head     head.weight (embed.tokens when tied)                            vocab rows
// The branch of base weight "<p>.weight" [O, I] is "<p>.lora_A" [r, I] and "<p>.lora_B" [O, r]
// (the head's: "head.lora_A", "head.lora_B" whether or not the embeddings are tied). Adapter
// names sort into the same layer as their base (the gradient reducer's parts, pipeline
// stages, ZeRO units follow the layer index).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/model_config.h"
#include "model/param_layout.h"
#include "model/param_store.h"

namespace llmpi {

// The [lora] settings the model needs (config/config.h's LoraSection without dropout).
struct LoraSpec {
  int64_t rank = 0;  // 0: no adapters
  double alpha = 16.0;
  bool rslora = false;
  std::vector<std::string> targets;  // module names (above)

  bool enabled() const { return rank > 0; }
  bool targets_module(std::string_view module) const;
  double scale() const;  // lora_scale(alpha, rank, rslora)
};

// Every module name, in the order adapters are laid out: q k v o gate up down head.
const std::vector<std::string>& lora_module_names();

// The base weight a module's branch of layer `layer` sits beside (layer ignored for head).
std::string lora_base_weight(const ModelConfig& cfg, std::string_view module, int64_t layer);
// "<p>" of the branch's "<p>.lora_A" / "<p>.lora_B".
std::string lora_prefix(std::string_view module, int64_t layer);

// The adapters of `range` (whole tensors; shard_params_tp slices them): for each layer, the
// targeted modules in lora_module_names() order; then the head's when the range has it.
std::vector<ParamInfo> adapter_params(const ModelConfig& cfg, const LoraSpec& spec,
                                      const StageRange& range);

}  // namespace llmpi
