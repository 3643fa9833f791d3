#pragma once
// Which Hugging Face tensor is made of which llmpi parameters, and how (docs/interop.md):
//   HF = transpose?(concat_rows(params...))[first `rows` rows]
// GPT-2 (GPT2LMHeadModel, names under "transformer."): Conv1D weights are stored [in, out],
// so every matrix is transposed; c_attn is q, k, v stacked ([C, 3C] after the transpose), its
// bias q, k, v biases concatenated; wte is embed.tokens; lm_head.weight only when untied.
// Llama (LlamaForCausalLM, names under "model."): nn.Linear [out, in] like llmpi, so plain
// copies; q/k/v/o, gate/up/down separately; lm_head.weight only when untied. RoPE needs no
// q/k permutation: llmpi rotates the pairs (i, i + D/2), HF Llama's rotate_half convention.
// Vocabulary rows: the token embedding and the head keep their first `vocab_rows` rows (the
// real vocabulary; llmpi may pad its table). Import reverses each rule exactly.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace llmpi {

struct HfTensorMap {
  std::string hf_name;
  std::vector<int64_t> hf_shape;
  std::vector<std::string> params;  // llmpi names, stacked by rows in this order
  bool transpose = false;
  int64_t rows = -1;                // rows kept (-1: all)
};

// The tensors of an HF checkpoint of `m`, in the order they are written. `vocab_rows` <=
// m.vocab_size; `gpt2_prefix` is "transformer." (what transformers writes) or "" (some
// published GPT-2 files).
std::vector<HfTensorMap> hf_tensor_map(const ModelConfig& m, int64_t vocab_rows,
                                       const std::string& gpt2_prefix = "transformer.");

// A global llmpi parameter: its values (row-major) and its 1-D or 2-D shape.
struct GlobalTensor {
  std::span<const float> values;
  std::vector<int64_t> shape;
};

// Export direction: the HF tensor's values from the parameters.
std::vector<float> hf_values(const HfTensorMap& map,
                             const std::function<GlobalTensor(const std::string&)>& param);

// Import direction: splits the HF tensor's values into its parameters; `put(name, values)`
// receives each parameter's global values, row-major in the llmpi shape `shape_of(name)`.
void split_hf_values(const HfTensorMap& map, std::span<const float> hf,
                     const std::function<std::vector<int64_t>(const std::string&)>& shape_of,
                     const std::function<void(const std::string&, std::vector<float>)>& put);

// Tensors a published checkpoint may carry that are not parameters (GPT-2's causal-mask
// buffers attn.bias / attn.masked_bias, Llama's rotary_emb.inv_freq); import skips them.
bool hf_ignorable_buffer(const std::string& hf_name);

}  // namespace llmpi
