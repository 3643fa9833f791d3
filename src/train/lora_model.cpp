// Opening a LoRA run's file: base, checksum, NF4 round trip, adapters, merge (lora_model.h).
#include "train/lora_model.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/error.h"
#include "io/model_file.h"
#include "model/lora_merge.h"
#include "model/param_layout.h"
#include "parallel/lora_base.h"
#include "parallel/tensor_parallel.h"
#include "quant/nf4.h"
#include "train/init_from.h"

namespace llmpi {

namespace {

// Every whole tensor of `store` (host f32) as a slab this process owns.
std::vector<TensorSlab> whole_slabs(const ParamStore& store) {
  std::vector<TensorSlab> slabs;
  float* base = store.master().ptr<float>();
  for (const ParamInfo& p : store.params()) slabs.push_back(param_slab(p, base + p.offset, true));
  return slabs;
}

// W's values after NF4 and back, slab by slab as `tp` ranks quantised them.
void nf4_round_trip(const ModelConfig& model, const ParamInfo& whole, float* w, int tp) {
  const int64_t cols = whole.global_shape[1];
  std::vector<std::pair<int64_t, int64_t>> done;  // slab starts already handled (kv replicas)
  for (int r = 0; r < tp; ++r) {
    const ParamInfo s = tp > 1 ? shard_params_tp(model, {whole}, tp, r)[0] : whole;
    const int64_t r0 = s.local_start[0], c0 = s.local_start[1];
    if (std::find(done.begin(), done.end(), std::make_pair(r0, c0)) != done.end()) continue;
    done.emplace_back(r0, c0);
    const int64_t rows = s.local_shape[0], n = s.local_shape[1];
    std::vector<float> v(size_t(rows * n));
    for (int64_t i = 0; i < rows; ++i)
      std::copy_n(w + (r0 + i) * cols + c0, n, v.begin() + i * n);
    nf4_dequantize(nf4_quantize(v), v);
    for (int64_t i = 0; i < rows; ++i)
      std::copy_n(v.begin() + i * n, n, w + (r0 + i) * cols + c0);
  }
}

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%016llx", (unsigned long long)v);
  return b;
}

}  // namespace

std::unique_ptr<ParamStore> LoraFile::merge(Backend& be) const {
  auto merged = std::make_unique<ParamStore>(
      be, transformer_params(merged_model, StageRange::full(merged_model)), DType::f32);
  merge_adapters(be, model, spec, *base, *adapters, *merged);
  return merged;
}

LoraFile open_lora_file(const std::string& path, const ModelFileMeta& meta, const Config& cfg,
                        Backend& be, const std::string& base_override) {
  LLMPI_CHECK(cfg.lora.enabled() && !meta.lora_base.empty(), path, " is not a LoRA file");
  LoraFile f;
  f.spec = cfg.lora.spec();
  f.model = cfg.model;
  f.merged_model = merged_config(cfg.model, f.spec);
  const StageRange full = StageRange::full(cfg.model);
  f.base_source = base_override.empty() ? meta.lora_base : base_override;
  f.base = std::make_unique<ParamStore>(be, transformer_params(cfg.model, full), DType::f32);
  std::vector<TensorSlab> slabs = whole_slabs(*f.base);
  const std::string seed = "seed ";
  if (f.base_source.rfind(seed, 0) == 0) {
    f.base->init(be, cfg.train.seed);  // the same f32 values as parallel/lora_base.h's
  } else {
    open_model_source(f.base_source, cfg, MPI_COMM_NULL).fill(slabs);
  }
  std::vector<uint64_t> sums;
  for (const TensorSlab& s : slabs) sums.push_back(slab_checksum(s));
  const uint64_t have = fold_base_checksum(sums);
  if (have != meta.lora_base_checksum)
    user_error(path, ": its adapters were trained beside the base \"", meta.lora_base,
               "\" (checksum ", hex(meta.lora_base_checksum), "), but \"", f.base_source,
               "\" has checksum ", hex(have),
               base_override.empty() ? "; pass the right base with --base" : "");
  if (cfg.lora.nf4_base()) {
    float* w = f.base->master().ptr<float>();
    for (const ParamInfo& p : f.base->params())
      if (nf4_base_weight(p.name)) nf4_round_trip(cfg.model, p, w + p.offset, meta.layout.tp);
  }
  f.adapters = std::make_unique<ParamStore>(be, adapter_params(cfg.model, f.spec, full), DType::f32);
  load_model_params(path, MPI_COMM_NULL, be, *f.adapters, /*verify=*/true);
  return f;
}

}  // namespace llmpi
