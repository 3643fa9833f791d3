#pragma once
// The shape of a decoder-only transformer. Two families share one code path:
//   gpt2:  LayerNorm (with bias), tanh-GELU MLP, learned positions, biases, tied embeddings.
//   llama: RMSNorm, SwiGLU MLP, RoPE, grouped-query attention, untied head, no biases.
#include <cstdint>
#include <string>

namespace llmpi {

enum class Arch : uint8_t { gpt2, llama };

// Activation recomputation: what each block keeps per micro-batch for backward (see block.h
// and docs/model.md). It changes memory and time, never the result: every mode gives bitwise
// the same loss and gradients. Set from the config key [train] recompute.
enum class Recompute : uint8_t {
  none,       // keep every activation
  selective,  // drop the norm outputs and statistics and the MLP activation; recompute them
  full,       // keep each block's input only; recompute the block before its backward
};

struct ModelConfig {
  Arch arch = Arch::gpt2;
  int64_t vocab_size = 0;   // V
  int64_t n_layer = 0;      // L
  int64_t n_head = 0;       // Hq, query heads
  int64_t n_kv_head = 0;    // Hkv; == n_head for GPT-2 (multi-head attention)
  int64_t d_model = 0;      // C
  int64_t d_ff = 0;         // F, MLP hidden width (4C for GPT-2)
  int64_t max_seq_len = 0;  // longest T (size of GPT-2's position table)
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  double init_std = 0.02;
  bool tied_embeddings = true;  // GPT-2: head weight is the token embedding
  Recompute recompute = Recompute::none;  // not a shape: read from [train] recompute

  int64_t head_dim() const { return d_model / n_head; }  // D
  int64_t kv_heads() const { return n_kv_head > 0 ? n_kv_head : n_head; }  // Hkv (0 → Hq)
  int64_t qkv_dim() const { return (n_head + 2 * kv_heads()) * head_dim(); }  // packed q|k|v
  bool has_bias() const { return arch == Arch::gpt2; }
  bool learned_positions() const { return arch == Arch::gpt2; }

  bool operator==(const ModelConfig&) const = default;
};

const char* arch_name(Arch a);
const char* recompute_name(Recompute r);

}  // namespace llmpi
