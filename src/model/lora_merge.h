#pragma once
// The merged model of a LoRA run: every adapted weight W [O, I] becomes W + s · B A
// (model/lora.h: lora_merge), everything else is the base's. Whole tensors in stores of one
// rank (the `llmpi lora merge` command, the PEFT export's merged weights, tests).
// A tied embedding whose head is adapted cannot stay tied — the merged head differs from the
// input embedding — so the merged model unties them: its head.weight is embed.tokens + s·B A
// and embed.tokens stays the base's (merged_config says so).
#include "model/lora_targets.h"
#include "model/model_config.h"
#include "model/param_store.h"

namespace llmpi {

// The merged model's shape: cfg, untied when the head is adapted on tied embeddings.
ModelConfig merged_config(const ModelConfig& cfg, const LoraSpec& spec);

// merged (transformer_params of merged_config(cfg, spec), whole tensors) ← base (whole
// transformer_params of cfg; a frozen store is fine) with adapters (whole adapter_params)
// added. Any dtypes; the sums are formed in f64 on the host.
void merge_adapters(Backend& be, const ModelConfig& cfg, const LoraSpec& spec,
                    const ParamStore& base, const ParamStore& adapters, ParamStore& merged);

}  // namespace llmpi
