#pragma once
// A trained model opened for inference (sample, eval): the model file's own config text is
// parsed back into a Config, the parameters are loaded (checksums verified) into a
// ParamStore on the given backend. `path` may be a model/checkpoint file or a run
// directory (its model.h5, else its newest valid checkpoint: jobs/checkpoint_dir.h).
#include <memory>
#include <string>

#include "backend/backend.h"
#include "config/config.h"
#include "io/model_file.h"
#include "model/param_store.h"
#include "model/transformer.h"

namespace llmpi {

struct LoadedModel {
  std::string path;
  ModelFileMeta meta;
  Config config;
  std::unique_ptr<ParamStore> store;
  std::unique_ptr<Transformer> model;
};

LoadedModel load_model(const std::string& path, Backend& be);

}  // namespace llmpi
