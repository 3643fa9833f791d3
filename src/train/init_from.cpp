// init_params_from: shape checks, then the engine's slabs filled from an llmpi file (collective
// hyperslab reads) or a Hugging Face directory (one HF tensor at a time, split into llmpi
// parameters, copied into every slab of those parameters this rank holds).
#include "train/init_from.h"

#include <functional>
#include <map>
#include <memory>

#include "core/agreement.h"
#include "core/error.h"
#include "io/hdf5.h"
#include "io/hf_import.h"
#include "io/hf_weights.h"
#include "io/model_file.h"
#include "io/stored_model.h"
#include "io/tensor_file.h"
#include "jobs/checkpoint_dir.h"
#include "model/param_layout.h"
#include "parallel/engine.h"

namespace llmpi {

namespace {

// UserError naming the first model key whose value differs between the run and the source.
void check_same_shape(const ModelConfig& run, const ModelConfig& src, const std::string& source,
                      bool vocab_may_grow) {
  auto key = [&](const char* name, auto want, auto have) {
    if (want != have)
      user_error("train.init_from = \"", source, "\": its model has ", name, " = ", have,
                 " but the config's model.", name, " = ", want);
  };
  key("arch", std::string(arch_name(run.arch)), std::string(arch_name(src.arch)));
  key("n_layer", run.n_layer, src.n_layer);
  key("n_head", run.n_head, src.n_head);
  key("n_kv_head", run.kv_heads(), src.kv_heads());
  key("d_model", run.d_model, src.d_model);
  key("d_ff", run.d_ff, src.d_ff);
  key("tied_embeddings", run.tied_embeddings, src.tied_embeddings);
  key("norm_eps", run.norm_eps, src.norm_eps);
  if (run.arch == Arch::llama) key("rope_theta", run.rope_theta, src.rope_theta);
  if (run.learned_positions()) key("max_seq_len", run.max_seq_len, src.max_seq_len);
  if (!vocab_may_grow || run.vocab_size < src.vocab_size) key("vocab_size", run.vocab_size, src.vocab_size);
}

// Copies the part of a global row-major tensor that slab s covers into s.data.
void fill_slab(const TensorSlab& s, const std::vector<float>& global) {
  float* out = s.data;
  for (const Box& b : slab_boxes(s)) {
    LLMPI_CHECK(b.start.size() <= 2, s.name, ": ", b.start.size(), "-d box");
    const int64_t gcols = s.global_shape.size() == 2 ? s.global_shape[1] : 1;
    const int64_t rows = b.count.empty() ? 1 : b.count[0];
    const int64_t cols = b.count.size() == 2 ? b.count[1] : 1;
    const int64_t r0 = b.start.empty() ? 0 : b.start[0], c0 = b.start.size() == 2 ? b.start[1] : 0;
    for (int64_t r = 0; r < rows; ++r, out += cols)
      std::copy_n(global.data() + (r0 + r) * gcols + c0, cols, out);
  }
}

// open_model_source on this rank alone: what it reads (the file's metadata, a HF directory's
// config and headers) may differ between nodes.
ModelSource open_here(const std::string& source, const Config& cfg, MPI_Comm world) {
  if (is_hf_model_dir(source)) {
    auto src = std::make_shared<const HfModelSource>(open_hf_model(source));
    check_same_shape(cfg.model, src->meta.model, source, /*vocab_may_grow=*/true);
    auto shapes = std::make_shared<std::map<std::string, std::vector<int64_t>>>();
    for (const ParamInfo& p : transformer_params(cfg.model, StageRange::full(cfg.model)))
      for (int d = 0; d < p.global_shape.ndim; ++d) (*shapes)[p.name].push_back(p.global_shape[d]);
    ModelSource out;
    out.description = source + ": Hugging Face " + arch_name(src->meta.model.arch) + " model (" +
                      std::to_string(src->weights.shard_count()) + " safetensors file(s))";
    out.fill = [src, shapes, model = cfg.model](std::vector<TensorSlab>& slabs) {
      std::multimap<std::string, const TensorSlab*> by_name;
      for (const TensorSlab& s : slabs) by_name.emplace(s.name, &s);
      for (const HfTensorMap& t : hf_tensor_map(model, src->meta.model.vocab_size, src->gpt2_prefix)) {
        bool wanted = false;
        for (const std::string& p : t.params) wanted = wanted || by_name.count(p) > 0;
        if (!wanted) continue;
        split_hf_values(t, src->weights.read_f32(t.hf_name),
                        [&](const std::string& n) { return shapes->at(n); },
                        [&](const std::string& name, std::vector<float> v) {
                          const auto [lo, hi] = by_name.equal_range(name);
                          for (auto it = lo; it != hi; ++it) fill_slab(*it->second, v);
                        });
      }
    };
    return out;
  }
  const std::string path = resolve_model_source(source);
  // The file's tensors are exactly those its config implies (io/stored_model.h, as for sample
  // and eval): an extra tensor in /params was ignored here.
  const StoredModel stored_model = check_stored_model(path);
  const ModelFileMeta& meta = stored_model.meta;
  const Config& stored = stored_model.config;
  check_same_shape(cfg.model, stored.model, source, /*vocab_may_grow=*/false);
  if (!meta.lora_base.empty())
    user_error("train.init_from = \"", source, "\": ", path, " holds LoRA adapters, not a model; ",
               "merge them into their base first (llmpi lora merge)");
  ModelSource out;
  out.description = path + ": llmpi " + meta.kind + " of step " + std::to_string(meta.step);
  out.fill = [path, world](std::vector<TensorSlab>& slabs) {
    h5::Id file = h5::open_file(path, world);
    h5::Id params = h5::open_group(file, "params", path);
    read_tensors(params, world, slabs, path, /*verify=*/true);
  };
  return out;
}

}  // namespace

// Every rank opens the source itself; a refusal on any rank (the file missing or damaged on
// one node) is thrown on all (core/agreement.h) before fill's collective reads.
ModelSource open_model_source(const std::string& source, const Config& cfg, MPI_Comm world) {
  return agreed(world, [&] { return open_here(source, cfg, world); });
}

std::string init_params_from(const std::string& source, const Config& cfg, ParallelEngine& engine,
                             MPI_Comm world) {
  const ModelSource src = open_model_source(source, cfg, world);
  // With LoRA the weights are the frozen base's; the adapters start fresh.
  if (cfg.lora.enabled())
    engine.load_base(src.fill);
  else
    engine.load_params(src.fill);
  return src.description;
}

}  // namespace llmpi
