// LoRA in a run: the base's source, its reference in files, the resume check (lora_setup.h).
#include "train/lora_setup.h"

#include <cstdio>

#include "core/error.h"
#include "parallel/engine.h"
#include "train/init_from.h"

namespace llmpi {

namespace {

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%016llx", (unsigned long long)v);
  return b;
}

}  // namespace

std::string lora_base_source(const Config& cfg) {
  return cfg.train.init_from.empty() ? "seed " + std::to_string(cfg.train.seed) : cfg.train.init_from;
}

void stamp_lora_base(ModelFileMeta& m, const Config& cfg, const ParallelEngine& engine) {
  if (!engine.frozen_base()) return;
  m.lora_base = lora_base_source(cfg);
  m.lora_base_checksum = engine.frozen_base()->checksum();
}

void prepare_lora_resume(const std::string& path, const ModelFileMeta& meta, const Config& cfg,
                         ParallelEngine& engine, MPI_Comm world) {
  const bool adapters = !meta.lora_base.empty();
  if (adapters && !cfg.lora.enabled())
    user_error(path, ": holds LoRA adapters (beside base \"", meta.lora_base,
               "\"), but the config has no [lora] rank; resume it with its [lora] section, or "
               "merge it first (llmpi lora merge)");
  if (!adapters && cfg.lora.enabled())
    user_error(path, ": holds a full model, but the config has [lora] rank = ", cfg.lora.rank,
               "; start LoRA from it with train.init_from in a new run directory");
  if (!adapters) return;
  const int tp = engine.topology().layout().tp;
  if (cfg.lora.nf4_base() && meta.layout.tp != tp)
    user_error(path, ": a QLoRA run saved under parallel.tp = ", meta.layout.tp,
               "; its NF4 base is quantised per tensor-parallel slab, so it resumes under the "
               "same tp (this run has parallel.tp = ", tp, ")");
  if (!cfg.train.init_from.empty()) init_params_from(cfg.train.init_from, cfg, engine, world);
  const uint64_t now = engine.frozen_base()->checksum();
  if (now != meta.lora_base_checksum)
    user_error(path, ": its adapters were trained beside the base \"", meta.lora_base,
               "\" (checksum ", hex(meta.lora_base_checksum), "), but this run's base \"",
               lora_base_source(cfg), "\" has checksum ", hex(now),
               "; resume with the base the adapters were trained on (train.init_from, same "
               "file contents)");
}

std::string lora_summary(const Config& cfg, const ParallelEngine& engine) {
  if (!cfg.lora.enabled()) return "";
  const LoraSpec s = cfg.lora.spec();
  std::string mods;
  for (const std::string& m : s.targets) mods += (mods.empty() ? "" : ", ") + m;
  char line[320];
  std::snprintf(line, sizeof line,
                "LoRA rank %lld (alpha %g%s, scale %g) on %s: %lld trainable of %lld parameters; "
                "base %s",
                (long long)s.rank, s.alpha, s.rslora ? ", rsLoRA" : "", s.scale(), mods.c_str(),
                (long long)engine.trainable_param_count(), (long long)engine.global_param_count(),
                lora_base_source(cfg).c_str());
  return line;
}

}  // namespace llmpi
