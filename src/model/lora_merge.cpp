// Merging LoRA adapters into their base (lora_merge.h).
#include "model/lora_merge.h"

#include <vector>

#include "core/error.h"
#include "model/lora.h"

namespace llmpi {

namespace {

std::vector<double> host_values(Backend& be, const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  be.copy(host_tensor(v.data(), t.shape, DType::f64), t);
  be.synchronize();
  return v;
}

}  // namespace

ModelConfig merged_config(const ModelConfig& cfg, const LoraSpec& spec) {
  ModelConfig m = cfg;
  if (cfg.tied_embeddings && spec.targets_module("head")) m.tied_embeddings = false;
  return m;
}

void merge_adapters(Backend& be, const ModelConfig& cfg, const LoraSpec& spec,
                    const ParamStore& base, const ParamStore& adapters, ParamStore& merged) {
  const ModelConfig out = merged_config(cfg, spec);
  for (const ParamInfo& p : merged.params()) {
    const std::string src = p.name == "head.weight" && cfg.tied_embeddings ? "embed.tokens" : p.name;
    LLMPI_CHECK(base.info(src).global_shape == p.global_shape, "merge: ", p.name, " vs base ", src);
    be.copy(merged.master(p.name), base.master(src));
  }
  const double s = spec.scale();
  auto merge = [&](const std::string& module, int64_t layer) {
    const std::string prefix = lora_prefix(module, layer);
    const Tensor W = merged.master(lora_base_weight(out, module, layer));
    std::vector<double> w = host_values(be, W);
    const std::vector<double> a = host_values(be, adapters.master(prefix + ".lora_A"));
    const std::vector<double> b = host_values(be, adapters.master(prefix + ".lora_B"));
    lora_merge<double>(w, a, b, W.dim(0), W.dim(1), spec.rank, s);
    be.copy(W, host_tensor(w.data(), W.shape, DType::f64));
    be.synchronize();  // w goes out of scope
  };
  for (int64_t l = 0; l < cfg.n_layer; ++l)
    for (const std::string& m : lora_module_names())
      if (m != "head" && spec.targets_module(m)) merge(m, l);
  if (spec.targets_module("head")) merge("head", 0);
  merged.refresh_compute(be);
}

}  // namespace llmpi
