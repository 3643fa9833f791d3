#include "io/stored_model.h"

#include <cstdint>
#include <map>

#include "core/error.h"
#include "io/hdf5.h"
#include "io/tensor_file.h"
#include "model/param_layout.h"

namespace llmpi {
namespace {

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

std::string shape_keys(const ModelConfig& m) {
  return detail::concat("model.vocab_size = ", m.vocab_size, ", n_layer = ", m.n_layer,
                        ", d_model = ", m.d_model, ", n_head = ", m.n_head, ", d_ff = ", m.d_ff);
}

}  // namespace

StoredModel check_stored_model(const std::string& path) {
  StoredModel s;
  s.meta = read_model_meta(path);
  s.config = parse_config(s.meta.config_toml, path + " (stored config)");
  const ModelConfig& m = s.config.model;
  h5::Id file = h5::open_file(path, MPI_COMM_NULL);
  if (!h5::exists(file, "params")) user_error(path, ": no /params group (not a model file?)");
  h5::Id params = h5::open_group(file, "params", path);
  const std::vector<TensorEntry> held = list_tensors(params, path);

  // The count first, without listing n_layer layers.
  const int64_t outer = int64_t(transformer_params(m, {0, 0, true, true}).size());
  const int64_t per_layer = int64_t(transformer_params(m, {0, 1, false, false}).size());
  const int64_t n = int64_t(held.size()), layers_held = n - outer;
  if (layers_held < 0 || layers_held % per_layer != 0 || layers_held / per_layer != m.n_layer)
    user_error(path, ": the stored config (", shape_keys(m), ") implies ",
               m.n_layer <= (INT64_MAX - outer) / per_layer
                   ? std::to_string(outer + per_layer * m.n_layer)
                   : std::string("more than 2^63"),
               " parameter tensors but /params holds ", n,
               "; the file's config does not describe its tensors");

  std::map<std::string, const TensorEntry*> by_name;
  for (const TensorEntry& e : held) by_name[e.name] = &e;
  for (const ParamInfo& p : transformer_params(m, StageRange::full(m))) {
    auto it = by_name.find(p.name);
    if (it == by_name.end())
      user_error(path, ": params/", p.name, " is missing (the stored config implies it)");
    const std::vector<int64_t> want(p.global_shape.dims.begin(),
                                    p.global_shape.dims.begin() + p.global_shape.ndim);
    std::vector<int64_t> dims;
    open_f32_dataset(params, p.name, path, dims);  // f32, and its bytes fit in the file
    if (dims != want)
      user_error(path, ": params/", p.name, " has shape ", dims_str(dims),
                 " but the stored config (", shape_keys(m), ") implies ", dims_str(want));
  }
  s.tensors = n;
  return s;
}

}  // namespace llmpi
