#include "train/loaded_model.h"

#include <filesystem>

#include "core/error.h"
#include "model/param_layout.h"

namespace llmpi {

std::string resolve_model_path(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) {
    const fs::path p = fs::path(path) / "model.h5";
    if (!fs::exists(p)) user_error(path, ": a run directory without model.h5 (has training finished?)");
    return p.string();
  }
  if (!fs::exists(path)) user_error(path, ": no such model file or run directory");
  return path;
}

LoadedModel load_model(const std::string& path, Backend& be) {
  LoadedModel m;
  m.path = resolve_model_path(path);
  m.meta = read_model_meta(m.path);
  m.config = parse_config(m.meta.config_toml, m.path + " (stored config)");
  const StageRange range = StageRange::full(m.config.model);
  m.store = std::make_unique<ParamStore>(be, transformer_params(m.config.model, range), DType::f32);
  load_model_params(m.path, MPI_COMM_NULL, be, *m.store, /*verify=*/true);
  m.model = std::make_unique<Transformer>(m.config.model, range, *m.store);
  return m;
}

}  // namespace llmpi
