#pragma once
// Model FLOPs per trained token, forward and backward (the numerator of MFU): each weight of
// a matrix product costs 2 FLOPs per token forward and 4 backward, and causal attention's
// score and value products cost 6 · L · T · C per token (half of the 12 · L · T · C of full
// attention):
//   flops/token = 6 · (L · (C·(H + 2·KV)·D + C·H·D + k·C·F) + C·V) + 6 · L · T · C
// with k = 2 matrices in the GELU MLP (gpt2), 3 in SwiGLU (llama); the embedding lookup
// costs nothing, the tied or separate head C·V counts once. Norms, activations and the
// optimizer are not counted (MFU's convention).
// A LoRA run (lora enabled): the frozen base's weights cost 4 per token (forward, and the
// input gradient; no weight gradient), each adapter weight 6 (model/lora_targets.h: a branch
// of rank r beside an O × I map has r · (I + O) of them); attention is unchanged. An NF4
// base's dequantisation is not counted.
#include <cstdint>

#include "model/lora_targets.h"
#include "model/model_config.h"

namespace llmpi {

double model_flops_per_token(const ModelConfig& m, int64_t seq_len, const LoraSpec& lora = {});

}  // namespace llmpi
