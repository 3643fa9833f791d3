#pragma once
// A trained model opened for inference (sample, eval): the model file's own config text is
// parsed back into a Config, the parameters are loaded (checksums verified) into a
// ParamStore on the given backend. `path` may be a model/checkpoint file or a run
// directory (its model.h5, else its newest valid checkpoint: jobs/checkpoint_dir.h).
// A LoRA run's file (adapters beside a base, train/lora_model.h) opens as the merged model:
// `config` is then the merged model's (no [lora]; untied when the head was adapted) and `lora`
// keeps the parts (the base, the adapters: PEFT export).
#include <memory>
#include <string>

#include "backend/backend.h"
#include "config/config.h"
#include "io/model_file.h"
#include "model/param_store.h"
#include "model/transformer.h"
#include "train/lora_model.h"

namespace llmpi {

struct LoadedModel {
  std::string path;
  ModelFileMeta meta;
  Config config;
  std::unique_ptr<ParamStore> store;
  std::unique_ptr<Transformer> model;
  std::unique_ptr<LoraFile> lora;  // a LoRA run's file: its base and adapters
};

// base_override: a LoRA file's base read from there instead of its lora_base attribute.
LoadedModel load_model(const std::string& path, Backend& be, const std::string& base_override = "");

}  // namespace llmpi
