// model_flops_per_token (model_flops.h).
#include "model/model_flops.h"

namespace llmpi {

double model_flops_per_token(const ModelConfig& m, int64_t T, const LoraSpec& lora) {
  const double C = double(m.d_model), D = double(m.head_dim());
  const double qkv = C * double(m.n_head + 2 * m.kv_heads()) * D, out = C * double(m.n_head) * D;
  const double mlp = double(m.arch == Arch::llama ? 3 : 2) * C * double(m.d_ff);
  const double matmul = double(m.n_layer) * (qkv + out + mlp) + C * double(m.vocab_size);
  const double attention = 6.0 * double(m.n_layer) * double(T) * C;
  if (!lora.enabled()) return 6.0 * matmul + attention;
  double adapters = 0.0;
  for (const ParamInfo& p : adapter_params(m, lora, StageRange::full(m))) adapters += double(p.global_shape.numel());
  return 4.0 * matmul + 6.0 * adapters + attention;
}

}  // namespace llmpi
