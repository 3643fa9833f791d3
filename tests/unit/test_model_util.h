#pragma once
// Helpers shared by the model tests (test_model_*.cpp): tiny configurations of both
// architectures, host <-> backend transfers, random parameter values, token batches.
// The host backend's memory is plain host memory, but every transfer here still goes
// through Backend::copy so that the helpers also hold for a device backend.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/rng.h"
#include "model/model_config.h"
#include "model/param_store.h"

namespace llmpi::testing {

// V=37, L=2, C=16, Hq=4, Hkv=4 (gpt2) / 2 (llama), F=32, max T=8.
inline ModelConfig tiny_config(Arch arch) {
  ModelConfig c;
  c.arch = arch;
  c.vocab_size = 37;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = arch == Arch::gpt2 ? 4 : 2;
  c.d_model = 16;
  c.d_ff = 32;
  c.max_seq_len = 8;
  c.rope_theta = 10000.0;
  c.norm_eps = 1e-5;
  c.tied_embeddings = arch == Arch::gpt2;
  return c;
}

// A complete config text (config/config.h) whose model is tiny_config(arch), with n_layer
// and d_model changeable (files whose stored config declares another model).
inline std::string tiny_config_toml(Arch arch, int64_t n_layer = 2, int64_t d_model = 16,
                                    int64_t vocab_size = 37) {
  const ModelConfig c = tiny_config(arch);
  return "[model]\narch = \"" + std::string(arch_name(arch)) + "\"\nvocab_size = " +
         std::to_string(vocab_size) + "\nn_layer = " + std::to_string(n_layer) +
         "\nn_head = " + std::to_string(c.n_head) + "\nn_kv_head = " + std::to_string(c.n_kv_head) +
         "\nd_model = " + std::to_string(d_model) + "\nd_ff = " + std::to_string(c.d_ff) +
         "\nmax_seq_len = " + std::to_string(c.max_seq_len) +
         "\n[train]\nsteps = 1\nbatch_size = 1\nseq_len = 8\n[data]\ntrain = \"x.bin\"\n";
}

inline std::vector<double> to_host(Backend& be, const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  be.copy(host_tensor(v.data(), t.shape, DType::f64), t);
  be.synchronize();
  return v;
}

inline void from_host(Backend& be, const Tensor& t, std::vector<double> v) {
  EXPECT_EQ(static_cast<int64_t>(v.size()), t.numel());
  be.copy(t, host_tensor(v.data(), t.shape, DType::f64));
  be.synchronize();
}

inline Buffer upload_i32(Backend& be, std::vector<int32_t> v) {
  const Shape s{static_cast<int64_t>(v.size())};
  Buffer b = be.alloc(s, DType::i32);
  be.copy(b, host_tensor(v.data(), s, DType::i32));
  be.synchronize();
  return b;
}

// n values of std·N(0,1) (+ mean) from a named stream.
inline std::vector<double> normal_values(int64_t n, uint64_t seed, const std::string& stream,
                                         double std = 1.0, double mean = 0.0) {
  std::vector<double> v(static_cast<size_t>(n));
  const uint64_t k = rng_key(seed, stream);
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = mean + std * rng_normal(k, i);
  return v;
}

// Gives every parameter generic random values (gains around 1, biases nonzero), so that a
// wrong bias, gain or offset changes the result (the model init alone would hide them).
inline void randomize_params(Backend& be, const ParamStore& store, uint64_t seed,
                             double std = 0.3) {
  for (const ParamInfo& p : store.params()) {
    const bool gain = p.init == InitKind::ones;
    from_host(be, store.master(p.name),
              normal_values(p.numel(), seed, p.name, gain ? 0.2 : std, gain ? 1.0 : 0.0));
  }
}

// Copies the values of every parameter of `dst` from the parameter of the same name in src.
inline void copy_params_by_name(Backend& be, const ParamStore& dst, const ParamStore& src) {
  for (const ParamInfo& p : dst.params()) be.copy(dst.master(p.name), src.master(p.name));
  be.synchronize();
}

// B·T token ids in [0, V) and targets (the next token), with `ignored` targets set to -1.
struct TokenBatch {
  std::vector<int32_t> ids, targets;
};
inline TokenBatch random_batch(int64_t B, int64_t T, int64_t V, uint64_t seed,
                               std::vector<int64_t> ignored = {}) {
  TokenBatch b;
  const uint64_t k = rng_key(seed, "tokens");
  std::vector<int32_t> seq(static_cast<size_t>(B * (T + 1)));
  for (size_t i = 0; i < seq.size(); ++i)
    seq[i] = static_cast<int32_t>(rng_bits(k, i) % static_cast<uint64_t>(V));
  for (int64_t s = 0; s < B; ++s)
    for (int64_t t = 0; t < T; ++t) {
      b.ids.push_back(seq[static_cast<size_t>(s * (T + 1) + t)]);
      b.targets.push_back(seq[static_cast<size_t>(s * (T + 1) + t + 1)]);
    }
  for (int64_t n : ignored) b.targets[static_cast<size_t>(n)] = -1;
  return b;
}

}  // namespace llmpi::testing
