#pragma once
// config.json and generation_config.json of Hugging Face's GPT2LMHeadModel and
// LlamaForCausalLM ↔ llmpi's ModelConfig.
//   gpt2:  n_embd, n_layer, n_head, n_positions, n_inner (4·n_embd when null), vocab_size,
//          activation_function "gelu_new" (llmpi's tanh GELU; "gelu_pytorch_tanh" is the same
//          function), layer_norm_epsilon, tie_word_embeddings.
//   llama: hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
//          num_key_value_heads, head_dim (= hidden_size / num_attention_heads), rms_norm_eps,
//          rope_theta, tie_word_embeddings, max_position_embeddings, vocab_size, hidden_act
//          "silu", no rope_scaling, no attention/MLP biases.
// Reading refuses (UserError naming file and key) what llmpi does not compute the same way:
// another architecture, another activation, rope scaling, biases in Llama, a head_dim that is
// not hidden_size / heads, a partial_rotary_factor, cross-attention, unscaled attention,
// quantized weights (quantization_config). Unknown keys are ignored.
#include <cstdint>
#include <string>

#include "model/model_config.h"

namespace llmpi {

struct HfModelMeta {
  ModelConfig model;          // vocab_size = the exported (real) vocabulary
  std::string torch_dtype = "float32";
  int64_t bos_token_id = -1;  // -1: not set
  int64_t eos_token_id = -1;
};

std::string hf_config_json(const HfModelMeta& m);
std::string hf_generation_config_json(const HfModelMeta& m);

// Reads DIR/config.json (or a config.json path).
HfModelMeta read_hf_config(const std::string& path);

}  // namespace llmpi
