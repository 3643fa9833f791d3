#pragma once
// Fixtures of the CUDA model tests (test_cuda_model.cpp, test_cuda_graphs.cpp): small model
// shapes that still take the real kernels, learnable synthetic batches, and a tensor read
// back as f64.
#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "core/rng.h"
#include "model/model_config.h"

namespace llmpi::cuda_test {

inline std::vector<double> read(Backend& be, const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  be.copy(host_tensor(v.data(), t.shape, DType::f64), t);
  be.synchronize();
  return v;
}

// Small shapes that still exercise the real kernels: T a multiple of 64 (cuDNN's forward
// may take it), head_dim 16, GQA 4:2 for Llama.
inline ModelConfig small_config(Arch arch) {
  ModelConfig c;
  c.arch = arch;
  c.vocab_size = 128;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = arch == Arch::gpt2 ? 4 : 2;
  c.d_model = 64;
  c.d_ff = arch == Arch::gpt2 ? 256 : 176;
  c.max_seq_len = 64;
  c.tied_embeddings = arch == Arch::gpt2;
  return c;
}

// Learnable synthetic tokens: next = (5·cur + 3 + small noise) mod V, the noise drawn from
// (seed, step, position), so every batch differs but both backends see the same ones.
inline void synthetic_batch(std::vector<int32_t>& ids, std::vector<int32_t>& targets,
                            int64_t B, int64_t T, int64_t V, uint64_t step) {
  ids.assign(static_cast<size_t>(B * T), 0);
  targets.assign(static_cast<size_t>(B * T), 0);
  const uint64_t key = rng_key(17, "cuda_model_batches");
  for (int64_t b = 0; b < B; ++b) {
    auto draw = [&](int64_t t) {
      return static_cast<int64_t>(std::fabs(rng_normal(key, (step * B + b) * (T + 1) + t)) * 3);
    };
    int64_t cur = draw(0) * 7 % V;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t next = (5 * cur + 3 + draw(t + 1)) % V;
      ids[b * T + t] = static_cast<int32_t>(cur);
      targets[b * T + t] = static_cast<int32_t>(next);
      cur = next;
    }
  }
}

}  // namespace llmpi::cuda_test
