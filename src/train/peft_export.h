#pragma once
// A LoRA run's adapters in Hugging Face PEFT's format, beside the merged model that export-hf
// writes (train/hf_export.h): <out>/adapter/adapter_config.json and adapter_model.safetensors,
// which PeftModel.from_pretrained(base, "<out>/adapter") loads onto the base model.
//   keys     base_model.model.<HF module>.lora_A.weight [r, in], .lora_B.weight [out, r], the HF
//            module of each adapted map by io/hf_weights.h's names (model.layers.N.self_attn.
//            q_proj, transformer.h.N.attn.c_attn, lm_head, ...)
//   config   peft_type LORA, task_type CAUSAL_LM, r, lora_alpha, use_rslora, lora_dropout 0,
//            bias none, target_modules (HF module names), base_model_name_or_path (the run's
//            base), fan_in_fan_out (true for GPT-2's Conv1D maps)
// GPT-2 packs q|k|v into one map (c_attn): its adapters become one of rank k·r (k of q, k, v
// adapted), A stacked and B block-diagonal — the same product — with rank_pattern and
// alpha_pattern keeping the scale s. Head rows past the tokenizer's vocabulary (llmpi's
// padding) are dropped as in the merged export.
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "train/lora_model.h"

namespace llmpi {

// Writes the adapter directory for `lora` with `vocab_rows` head rows; returns the files
// written, relative to out_dir.
std::vector<std::string> write_peft_adapter(const LoraFile& lora, int64_t vocab_rows,
                                            const std::string& out_dir, StDtype dtype);

}  // namespace llmpi
