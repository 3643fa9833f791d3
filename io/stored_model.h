#pragma once
// The model a file declares, checked against the tensors it holds, before anything of the
// model's size is allocated. A model or checkpoint file records its config (TOML); sample,
// eval and inspect trust it only after its /params group holds exactly the parameters that
// config implies (model/param_layout.h): first their number, in closed form (the tensors of
// the embedding and head plus n_layer × those of one layer; a stored config declaring
// 2,000,000 layers is refused without listing them), then every name and shape, each an f32
// dataset whose bytes fit in the file (open_f32_dataset). So allocating the model costs at
// most what the file holds. UserError naming the file and the first difference.
#include <string>

#include "config/config.h"
#include "io/model_file.h"

namespace llmpi {

struct StoredModel {
  ModelFileMeta meta;
  Config config;        // the stored config, parsed and validated
  int64_t tensors = 0;  // parameter tensors checked
};

// Serial; reads metadata and dataset headers only.
StoredModel check_stored_model(const std::string& path);

}  // namespace llmpi
