// PEFT adapter export (peft_export.h).
#include "train/peft_export.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/text_file.h"
#include "io/hf_weights.h"
#include "model/lora_targets.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

// One HF module with adapters: its branches (llmpi prefixes) and where each writes.
struct PeftModule {
  std::string path;   // "model.layers.0.self_attn.q_proj"
  std::string short_name;  // "self_attn.q_proj" (the layer prefix removed) or "lm_head"
  int64_t in = 0, out = 0;
  std::vector<std::pair<std::string, int64_t>> branches;  // (prefix, first output row)
};

std::vector<float> values(const ParamStore& s, const std::string& name) {
  const Tensor t = s.master(name);
  const float* p = t.ptr<float>();
  return std::vector<float>(p, p + t.numel());
}

}  // namespace

std::vector<std::string> write_peft_adapter(const LoraFile& lora, int64_t vocab_rows,
                                            const std::string& out_dir, StDtype dtype) {
  const LoraSpec& spec = lora.spec;
  const ModelConfig& model = lora.model;
  // The HF module of each adapted base weight, from the weight map of the export.
  std::map<std::string, std::pair<std::string, int64_t>> where;  // weight → (module, row0)
  std::map<std::string, int64_t> module_rows;
  for (const HfTensorMap& m : hf_tensor_map(model, vocab_rows)) {
    if (!m.hf_name.ends_with(".weight")) continue;
    const std::string module = m.hf_name.substr(0, m.hf_name.size() - 7);
    int64_t row = 0;
    for (const std::string& p : m.params) {
      where[p] = {module, row};
      row += lora.base->info(p).global_shape[0];
    }
    module_rows[module] = row;
  }
  std::vector<PeftModule> mods;
  std::map<std::string, size_t> index;
  auto add = [&](const std::string& module_name, int64_t layer) {
    const std::string prefix = lora_prefix(module_name, layer);
    std::string module;
    int64_t row0 = 0, out = 0;
    if (module_name == "head") {  // lm_head exists in HF even when tied to the embeddings
      module = "lm_head";
      out = vocab_rows;
    } else {
      const auto& [m, r] = where.at(lora_base_weight(model, module_name, layer));
      module = m;
      row0 = r;
      out = module_rows.at(m);
    }
    if (!index.count(module)) {
      index[module] = mods.size();
      PeftModule pm;
      pm.path = module;
      pm.in = lora.adapters->info(prefix + ".lora_A").global_shape[1];
      pm.out = out;
      const std::string lp = model.arch == Arch::llama ? "model.layers." : "transformer.h.";
      const std::string lead = lp + std::to_string(layer) + ".";
      pm.short_name = module.rfind(lead, 0) == 0 ? module.substr(lead.size()) : module;
      mods.push_back(pm);
    }
    mods[index[module]].branches.emplace_back(prefix, row0);
  };
  for (int64_t l = 0; l < model.n_layer; ++l)
    for (const std::string& m : lora_module_names())
      if (m != "head" && spec.targets_module(m)) add(m, l);
  if (spec.targets_module("head")) add("head", 0);

  // target_modules: the module's last name (q_proj) unless two modules share it (GPT-2's
  // attn.c_proj and mlp.c_proj): then the name below the layer (PEFT matches name suffixes).
  std::map<std::string, std::set<std::string>> by_last;
  auto last = [](const std::string& n) { return n.substr(n.rfind('.') + 1); };
  for (const PeftModule& m : mods) by_last[last(m.short_name)].insert(m.short_name);
  for (PeftModule& m : mods)
    if (by_last[last(m.short_name)].size() == 1) m.short_name = last(m.short_name);

  // Tensors: A stacked over the module's branches [k·r, in]; B [out, k·r] block-diagonal.
  const int64_t r = spec.rank;
  std::vector<StSpec> specs;
  std::vector<std::vector<float>> data;
  nlohmann::ordered_json rank_pattern = nlohmann::ordered_json::object();
  nlohmann::ordered_json alpha_pattern = nlohmann::ordered_json::object();
  std::vector<std::string> targets;
  for (const PeftModule& m : mods) {
    const int64_t k = int64_t(m.branches.size()), R = k * r;
    std::vector<float> A(size_t(R * m.in), 0.f), B(size_t(m.out * R), 0.f);
    for (int64_t j = 0; j < k; ++j) {
      const auto& [prefix, row0] = m.branches[size_t(j)];
      const std::vector<float> a = values(*lora.adapters, prefix + ".lora_A");
      const std::vector<float> b = values(*lora.adapters, prefix + ".lora_B");
      std::copy(a.begin(), a.end(), A.begin() + j * r * m.in);
      const int64_t rows = std::min<int64_t>(int64_t(b.size()) / r, m.out - row0);  // head: vocab
      for (int64_t o = 0; o < rows; ++o)
        for (int64_t c = 0; c < r; ++c)
          B[size_t((row0 + o) * R + j * r + c)] = b[size_t(o * r + c)];
    }
    const std::string key = "base_model.model." + m.path;
    specs.push_back({key + ".lora_A.weight", dtype, {R, m.in}});
    data.push_back(std::move(A));
    specs.push_back({key + ".lora_B.weight", dtype, {m.out, R}});
    data.push_back(std::move(B));
    if (std::find(targets.begin(), targets.end(), m.short_name) == targets.end())
      targets.push_back(m.short_name);
    if (k > 1) {  // a packed map (GPT-2's c_attn): rank k·r with the same scale s
      rank_pattern[m.short_name] = R;
      alpha_pattern[m.short_name] =
          spec.rslora ? spec.alpha * std::sqrt(double(k)) : spec.alpha * double(k);
    }
  }
  const fs::path dir = fs::path(out_dir) / "adapter";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) user_error(dir.string(), ": cannot create the adapter directory: ", ec.message());
  {
    SafetensorsWriter w((dir / "adapter_model.safetensors").string(), specs, {{"format", "pt"}});
    for (size_t i = 0; i < specs.size(); ++i) w.write(specs[i].name, encode_f32(data[i], dtype));
    w.commit();
  }
  nlohmann::ordered_json cfg;
  cfg["base_model_name_or_path"] = lora.base_source;
  cfg["bias"] = "none";
  cfg["fan_in_fan_out"] = model.arch == Arch::gpt2;
  cfg["inference_mode"] = true;
  cfg["init_lora_weights"] = true;
  cfg["lora_alpha"] = spec.alpha;
  cfg["lora_dropout"] = 0.0;
  cfg["modules_to_save"] = nullptr;
  cfg["peft_type"] = "LORA";
  cfg["r"] = r;
  cfg["rank_pattern"] = rank_pattern;
  cfg["alpha_pattern"] = alpha_pattern;
  cfg["target_modules"] = targets;
  cfg["task_type"] = "CAUSAL_LM";
  cfg["use_dora"] = false;
  cfg["use_rslora"] = spec.rslora;
  write_text_atomically((dir / "adapter_config.json").string(), cfg.dump(2) + "\n");
  return {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"};
}

}  // namespace llmpi
