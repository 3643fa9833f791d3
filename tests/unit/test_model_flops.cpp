// MFU's two halves: the model FLOPs per token (model/model_flops.h) in closed form for a
// Llama shape with grouped-query attention, and the GPU peak table (backend/peak_flops.h) by
// the names CUDA reports; the host backend knows no peak (its logbook MFU is not measured).
#include <gtest/gtest.h>

#include "backend/backend.h"
#include "backend/peak_flops.h"
#include "model/model_flops.h"

using namespace llmpi;

TEST(ModelFlops, LlamaWithGroupedQueryAttentionInClosedForm) {
  ModelConfig m;
  m.arch = Arch::llama;
  m.vocab_size = 100, m.n_layer = 3, m.n_head = 4, m.n_kv_head = 2, m.d_model = 32, m.d_ff = 48;
  m.max_seq_len = 64;
  const double C = 32, D = 8, L = 3, F = 48, V = 100, T = 64;
  const double qkv = C * (4 + 2 * 2) * D, out = C * 4 * D, mlp = 3 * C * F;
  EXPECT_DOUBLE_EQ(model_flops_per_token(m, 64), 6 * (L * (qkv + out + mlp) + C * V) + 6 * L * T * C);
}

// LoRA: the frozen base's weights cost 4 per token (no weight gradient), each adapter weight
// 6 — adapters of rank 2 on q (32 → 32) and down (48 → 32) in each of 3 layers, on the head
// (32 → 100) once; attention is unchanged.
TEST(ModelFlops, LoraCountsTheFrozenBaseWithoutWeightGradients) {
  ModelConfig m;
  m.arch = Arch::llama;
  m.vocab_size = 100, m.n_layer = 3, m.n_head = 4, m.n_kv_head = 2, m.d_model = 32, m.d_ff = 48;
  m.max_seq_len = 64;
  const double C = 32, D = 8, L = 3, F = 48, V = 100, T = 64, r = 2;
  const double qkv = C * (4 + 2 * 2) * D, out = C * 4 * D, mlp = 3 * C * F;
  const double adapters = L * (r * (C + 4 * D) + r * (F + C)) + r * (C + V);
  LoraSpec lora;
  lora.rank = 2;
  lora.targets = {"q", "down", "head"};
  EXPECT_DOUBLE_EQ(model_flops_per_token(m, 64, lora),
                   4 * (L * (qkv + out + mlp) + C * V) + 6 * adapters + 6 * L * T * C);
  EXPECT_LT(model_flops_per_token(m, 64, lora), model_flops_per_token(m, 64));
}

TEST(PeakFlops, TableOfDeviceNames) {
  EXPECT_EQ(gpu_peak_bf16_flops("NVIDIA H100 80GB HBM3"), 989.4e12);
  EXPECT_EQ(gpu_peak_bf16_flops("NVIDIA H100 PCIe"), 756e12);
  EXPECT_EQ(gpu_peak_bf16_flops("NVIDIA H100 NVL"), 835e12);
  EXPECT_EQ(gpu_peak_bf16_flops("NVIDIA H200"), 989.4e12);
  EXPECT_EQ(gpu_peak_bf16_flops("NVIDIA GH200 480GB"), 989.4e12);
  EXPECT_EQ(gpu_peak_bf16_flops("NVIDIA A100-SXM4-80GB"), 312e12);
  EXPECT_EQ(gpu_peak_bf16_flops("NVIDIA GeForce RTX 4090"), 0.0);
  EXPECT_EQ(gpu_peak_bf16_flops(""), 0.0);
  EXPECT_EQ(make_host_backend()->peak_flops(), 0.0);
}
