#include "train/loaded_model.h"

#include <filesystem>

#include "core/error.h"
#include "io/stored_model.h"
#include "jobs/checkpoint_dir.h"
#include "model/param_layout.h"

namespace llmpi {

LoadedModel load_model(const std::string& path, Backend& be) {
  LoadedModel m;
  m.path = resolve_model_source(path);
  // The stored config is trusted only once the file's tensors match it (io/stored_model.h):
  // nothing of the model's size is allocated before.
  StoredModel stored = check_stored_model(m.path);
  m.meta = std::move(stored.meta);
  m.config = std::move(stored.config);
  const StageRange range = StageRange::full(m.config.model);
  m.store = std::make_unique<ParamStore>(be, transformer_params(m.config.model, range), DType::f32);
  load_model_params(m.path, MPI_COMM_NULL, be, *m.store, /*verify=*/true);
  m.model = std::make_unique<Transformer>(m.config.model, range, *m.store);
  return m;
}

}  // namespace llmpi
