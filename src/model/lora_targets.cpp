// LoRA target modules: names, base weights and the adapters' parameters (lora_targets.h).
#include "model/lora_targets.h"

#include <algorithm>

#include "core/error.h"
#include "model/lora.h"

namespace llmpi {

bool LoraSpec::targets_module(std::string_view module) const {
  return enabled() && std::find(targets.begin(), targets.end(), module) != targets.end();
}

double LoraSpec::scale() const { return lora_scale(alpha, rank, rslora); }

const std::vector<std::string>& lora_module_names() {
  static const std::vector<std::string> names = {"q", "k", "v", "o", "gate", "up", "down", "head"};
  return names;
}

std::string lora_prefix(std::string_view m, int64_t layer) {
  if (m == "head") return "head";
  const std::string p = layer_prefix(layer);
  if (m == "q" || m == "k" || m == "v") return p + "attn." + std::string(m);
  if (m == "o") return p + "attn.out";
  if (m == "gate" || m == "up" || m == "down") return p + "mlp." + std::string(m);
  LLMPI_CHECK(false, "no LoRA module named ", m);
  return {};
}

std::string lora_base_weight(const ModelConfig& cfg, std::string_view m, int64_t layer) {
  if (m == "head") return cfg.tied_embeddings ? "embed.tokens" : "head.weight";
  return lora_prefix(m, layer) + ".weight";
}

std::vector<ParamInfo> adapter_params(const ModelConfig& cfg, const LoraSpec& spec,
                                      const StageRange& range) {
  std::vector<ParamInfo> out;
  if (!spec.enabled()) return out;
  // The base shapes, by name, from the layout itself (one source of truth).
  const std::vector<ParamInfo> base = transformer_params(cfg, range);
  auto shape_of = [&](const std::string& name) {
    for (const ParamInfo& p : base)
      if (p.name == name) return p.global_shape;
    LLMPI_CHECK(false, "LoRA: no base weight ", name);
    return Shape{};
  };
  auto add = [&](std::string_view m, int64_t layer) {
    const Shape w = shape_of(lora_base_weight(cfg, m, layer));  // [O, I]
    for (ParamInfo& p : lora_params(lora_prefix(m, layer), w[1], w[0], spec.rank))
      out.push_back(std::move(p));
  };
  for (const std::string& t : spec.targets)
    LLMPI_CHECK(std::find(lora_module_names().begin(), lora_module_names().end(), t) !=
                    lora_module_names().end(),
                "no LoRA module named ", t);
  for (int64_t l = range.first_layer; l < range.end_layer; ++l)
    for (const std::string& m : lora_module_names())
      if (m != "head" && spec.targets_module(m)) add(m, l);
  if (range.head && spec.targets_module("head")) add("head", 0);
  return out;
}

}  // namespace llmpi
