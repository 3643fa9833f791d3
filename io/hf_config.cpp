// HF model configs; see hf_config.h. Keys are written in the order transformers writes them
// (ordered_json), values from ModelConfig; reading checks every key llmpi depends on.
#include "io/hf_config.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/text_file.h"
#include "model/param_layout.h"

namespace llmpi {

using OJson = nlohmann::ordered_json;
using Json = nlohmann::json;

namespace {

void token_ids(OJson& j, const HfModelMeta& m) {
  j["bos_token_id"] = m.bos_token_id >= 0 ? OJson(m.bos_token_id) : OJson(nullptr);
  j["eos_token_id"] = m.eos_token_id >= 0 ? OJson(m.eos_token_id) : OJson(nullptr);
}

struct Reader {
  const Json& j;
  std::string file;

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    user_error(file, ": ", key, ": ", what);
  }
  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  int64_t integer(const char* key) const {
    if (!has(key)) fail(key, "missing");
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0)
      fail(key, "expected a positive integer, got " + j[key].dump());
    return j[key].get<int64_t>();
  }
  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    if (!j[key].is_number() || !(j[key].get<double>() > 0))
      fail(key, "expected a positive number, got " + j[key].dump());
    return j[key].get<double>();
  }
  bool flag(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j[key].is_boolean()) fail(key, "expected true or false, got " + j[key].dump());
    return j[key].get<bool>();
  }
  std::string text(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!j[key].is_string()) fail(key, "expected a string, got " + j[key].dump());
    return j[key].get<std::string>();
  }
  void require(const char* key, bool want, bool fallback, const std::string& why) const {
    if (flag(key, fallback) != want) fail(key, std::string(want ? "false" : "true") + " is not supported (" + why + ")");
  }
  // A token id, or the first of a list of them (several eos); -1 when absent.
  int64_t token(const char* key) const {
    if (!has(key)) return -1;
    const Json& all = j[key];
    if (all.is_array() && all.empty()) return -1;
    const Json& v = all.is_array() ? all[0] : all;
    if (!v.is_number_integer()) fail(key, "expected a token id or a list of them, got " + all.dump());
    return v.get<int64_t>();
  }
};

void read_gpt2(const Reader& r, ModelConfig& m) {
  m.arch = Arch::gpt2;
  m.d_model = r.integer("n_embd");
  m.n_layer = r.integer("n_layer");
  m.n_head = r.integer("n_head");
  m.n_kv_head = m.n_head;
  m.max_seq_len = r.integer("n_positions");
  m.d_ff = r.has("n_inner") ? r.integer("n_inner") : 4 * m.d_model;
  m.norm_eps = r.number("layer_norm_epsilon", 1e-5);
  const std::string act = r.text("activation_function", "gelu_new");
  if (act != "gelu_new" && act != "gelu_pytorch_tanh")
    r.fail("activation_function", "\"" + act + "\" is not supported (llmpi's GPT-2 uses the tanh "
           "approximation of GELU: gelu_new or gelu_pytorch_tanh)");
  r.require("scale_attn_weights", true, true, "llmpi scales attention scores by 1/sqrt(head_dim)");
  r.require("scale_attn_by_inverse_layer_idx", false, false, "not implemented");
  r.require("add_cross_attention", false, false, "a decoder-only model has no cross-attention");
  m.tied_embeddings = r.flag("tie_word_embeddings", true);
}

void read_llama(const Reader& r, ModelConfig& m) {
  m.arch = Arch::llama;
  m.d_model = r.integer("hidden_size");
  m.d_ff = r.integer("intermediate_size");
  m.n_layer = r.integer("num_hidden_layers");
  m.n_head = r.integer("num_attention_heads");
  m.n_kv_head = r.has("num_key_value_heads") ? r.integer("num_key_value_heads") : m.n_head;
  m.max_seq_len = r.integer("max_position_embeddings");
  m.norm_eps = r.number("rms_norm_eps", 1e-6);
  m.rope_theta = r.number("rope_theta", 10000.0);
  if (r.has("head_dim") && r.integer("head_dim") * m.n_head != m.d_model)
    r.fail("head_dim", std::to_string(r.integer("head_dim")) + " is not hidden_size / "
           "num_attention_heads = " + std::to_string(m.d_model / m.n_head) +
           " (llmpi derives the head dim from them)");
  const std::string act = r.text("hidden_act", "silu");
  if (act != "silu") r.fail("hidden_act", "\"" + act + "\" is not supported (llmpi's Llama MLP is SwiGLU: silu)");
  // transformers' RoPE rotates only head_dim · partial_rotary_factor dims when it is set.
  if (r.has("partial_rotary_factor") && r.j["partial_rotary_factor"] != 1.0)
    r.fail("partial_rotary_factor", r.j["partial_rotary_factor"].dump() +
           " is not supported (llmpi rotates every dimension of a head)");
  if (r.has("rope_scaling")) r.fail("rope_scaling", r.j["rope_scaling"].dump() + " is not supported (llmpi implements plain RoPE)");
  if (r.has("rope_parameters")) {  // newer transformers: {"rope_type": ..., "rope_theta": ...}
    const Json& p = r.j["rope_parameters"];
    const bool plain = p.is_object() && (!p.contains("rope_type") ||
                                         (p["rope_type"].is_string() && p["rope_type"] == "default"));
    if (!plain) r.fail("rope_parameters", p.dump() + " is not supported (llmpi implements plain RoPE)");
    if (p.contains("partial_rotary_factor") && p["partial_rotary_factor"] != 1.0)
      r.fail("rope_parameters.partial_rotary_factor", p["partial_rotary_factor"].dump() +
             " is not supported (llmpi rotates every dimension of a head)");
    if (p.contains("rope_theta")) {
      const Json& t = p["rope_theta"];
      if (!t.is_number() || !(t.get<double>() > 0))
        r.fail("rope_parameters.rope_theta", "expected a positive number, got " + t.dump());
      m.rope_theta = t.get<double>();
    }
  }
  r.require("attention_bias", false, false, "llmpi's Llama has no attention biases");
  r.require("mlp_bias", false, false, "llmpi's Llama has no MLP biases");
  m.tied_embeddings = r.flag("tie_word_embeddings", false);
}

}  // namespace

std::string hf_config_json(const HfModelMeta& meta) {
  const ModelConfig& m = meta.model;
  OJson j;
  if (m.arch == Arch::gpt2) {
    j["architectures"] = {"GPT2LMHeadModel"};
    j["model_type"] = "gpt2";
    j["vocab_size"] = m.vocab_size;
    j["n_positions"] = m.max_seq_len;
    j["n_embd"] = m.d_model;
    j["n_layer"] = m.n_layer;
    j["n_head"] = m.n_head;
    j["n_inner"] = m.d_ff;
    j["activation_function"] = "gelu_new";
    j["layer_norm_epsilon"] = m.norm_eps;
    j["initializer_range"] = m.init_std;
    j["resid_pdrop"] = 0.0;
    j["embd_pdrop"] = 0.0;
    j["attn_pdrop"] = 0.0;
    j["scale_attn_weights"] = true;
    j["scale_attn_by_inverse_layer_idx"] = false;
    j["reorder_and_upcast_attn"] = false;
  } else {
    j["architectures"] = {"LlamaForCausalLM"};
    j["model_type"] = "llama";
    j["vocab_size"] = m.vocab_size;
    j["hidden_size"] = m.d_model;
    j["intermediate_size"] = m.d_ff;
    j["num_hidden_layers"] = m.n_layer;
    j["num_attention_heads"] = m.n_head;
    j["num_key_value_heads"] = m.kv_heads();
    j["head_dim"] = m.head_dim();
    j["hidden_act"] = "silu";
    j["max_position_embeddings"] = m.max_seq_len;
    j["rms_norm_eps"] = m.norm_eps;
    j["rope_theta"] = m.rope_theta;
    j["rope_scaling"] = nullptr;
    j["attention_bias"] = false;
    j["attention_dropout"] = 0.0;
    j["mlp_bias"] = false;
    j["pretraining_tp"] = 1;
    j["initializer_range"] = m.init_std;
  }
  j["tie_word_embeddings"] = m.tied_embeddings;
  token_ids(j, meta);
  j["use_cache"] = true;
  j["torch_dtype"] = meta.torch_dtype;
  return j.dump(2) + "\n";
}

std::string hf_generation_config_json(const HfModelMeta& meta) {
  OJson j;
  token_ids(j, meta);
  j["do_sample"] = true;
  j["temperature"] = 0.8;
  j["top_p"] = 0.95;
  j["max_length"] = meta.model.max_seq_len;
  return j.dump(2) + "\n";
}

HfModelMeta read_hf_config(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "config.json").string();
  Json j;
  try {
    j = Json::parse(read_text_file(file));
  } catch (const Json::exception& e) {
    user_error(file, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) user_error(file, ": expected a JSON object");
  const Reader r{j, file};
  HfModelMeta meta;
  std::string arch = r.text("model_type", "");
  if (r.has("architectures")) {
    const Json& a = j["architectures"];
    if (!a.is_array() || a.size() != 1 || !a[0].is_string())
      r.fail("architectures", "expected one architecture name, got " + a.dump());
    const std::string name = a[0].get<std::string>();
    if (name == "GPT2LMHeadModel") arch = "gpt2";
    else if (name == "LlamaForCausalLM") arch = "llama";
    else r.fail("architectures", "\"" + name + "\" is not supported (llmpi imports GPT2LMHeadModel and LlamaForCausalLM)");
  }
  // Quantized weights (GPTQ, AWQ, bitsandbytes, fp8, ...) mean something else than their
  // tensors' values: refused by name rather than by a missing or unknown tensor later.
  if (r.has("quantization_config")) {
    const Json& q = j["quantization_config"];
    const std::string method = q.is_object() && q.contains("quant_method") && q["quant_method"].is_string()
                                   ? " (quant_method \"" + q["quant_method"].get<std::string>() + "\")" : "";
    r.fail("quantization_config", "a quantized model" + method + " is not supported; import the "
           "unquantized (F32, BF16 or F16) model");
  }
  if (arch == "gpt2") read_gpt2(r, meta.model);
  else if (arch == "llama") read_llama(r, meta.model);
  else r.fail("model_type", "\"" + arch + "\" is not supported (expected gpt2 or llama)");
  meta.model.vocab_size = r.integer("vocab_size");
  meta.model.init_std = r.number("initializer_range", 0.02);
  meta.torch_dtype = r.text("torch_dtype", r.text("dtype", "float32"));
  meta.bos_token_id = r.token("bos_token_id");
  meta.eos_token_id = r.token("eos_token_id");
  try {
    validate_model_config(meta.model);
  } catch (const UserError& e) {
    user_error(file, ": the model it describes is inconsistent: ", e.what());
  }
  return meta;
}

}  // namespace llmpi
