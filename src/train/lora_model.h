#pragma once
// A LoRA run's model or checkpoint file opened as a model (sample, eval, export-hf, lora
// merge). The file holds the adapters; their base is rebuilt from the file's reference —
// lora_base: "seed <n>" (the seeded init of the stored config), or the model file, run
// directory or Hugging Face directory train.init_from named — and must have the recorded
// lora_base_checksum. A QLoRA base (base_dtype = "nf4") then goes through NF4 and back per
// tensor-parallel slab of the layout it was trained under (the values the adapters were
// trained beside: parallel/lora_base.h). Serial, on the host, whole tensors in f32.
#include <memory>
#include <string>

#include "backend/backend.h"
#include "config/config.h"
#include "io/file_meta.h"
#include "model/lora_targets.h"
#include "model/param_store.h"

namespace llmpi {

struct LoraFile {
  LoraSpec spec;
  std::string base_source;              // where the base was read from
  std::unique_ptr<ParamStore> base;     // whole transformer_params, f32
  std::unique_ptr<ParamStore> adapters; // whole adapter_params, f32
  ModelConfig model;                    // the run's model (the base's shape)
  ModelConfig merged_model;             // merged_config(model, spec)
  // The merged weights W + s·B A (transformer_params of merged_model, f32).
  std::unique_ptr<ParamStore> merge(Backend& be) const;
};

// path: the (resolved) file; meta, cfg: its metadata and stored config (cfg.lora enabled).
// base_override: read the base from there instead of meta.lora_base ("" = the file's). UserError
// naming the file for a missing base or a checksum that differs.
LoraFile open_lora_file(const std::string& path, const ModelFileMeta& meta, const Config& cfg,
                        Backend& be, const std::string& base_override = "");

}  // namespace llmpi
