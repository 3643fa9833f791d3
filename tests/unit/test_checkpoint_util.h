#pragma once
// Shared by the checkpoint tests: a small synthetic model state whose every value is a closed
// form of (tensor, group, global index), so a test can build any rank's slab of it and check
// a load without keeping a reference copy.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/checkpoint.h"

namespace llmpi::testing {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Shapes chosen so that flat shards cut rows: [6, 5], [7], [3, 4, 5], [2, 3, 2, 3].
inline std::vector<TensorSpec> ckpt_specs() {
  return {{"embed.tokens", {6, 5}}, {"final_norm.weight", {7}}, {"layers.0.w", {3, 4, 5}},
          {"layers.0.x", {2, 3, 2, 3}}};
}

// group 0 = params, 1 = m, 2 = v.
inline float ckpt_value(const std::string& name, int group, int64_t g) {
  const double r = rng_normal(rng_key(uint64_t(11 + group), name), uint64_t(g));
  return group == 2 ? float(r * r) : float(r);
}

// Every tensor whole (one rank's view of an unsharded model) with its data in `store`.
struct WholeState {
  std::vector<std::vector<float>> store;
  CheckpointSlabs slabs;
};

inline WholeState whole_state(int group_count = 3,
                              const std::vector<TensorSpec>& specs = ckpt_specs()) {
  WholeState w;
  w.store.reserve(specs.size() * 3);
  for (int grp = 0; grp < group_count; ++grp)
    for (const TensorSpec& t : specs) {
      std::vector<float> v(size_t(t.numel()));
      for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = ckpt_value(t.name, grp, i);
      w.store.push_back(std::move(v));
      TensorSlab s;
      s.name = t.name;
      s.global_shape = t.shape;
      s.data = w.store.back().data();
      (grp == 0 ? w.slabs.params : grp == 1 ? w.slabs.m : w.slabs.v).push_back(s);
    }
  return w;
}

inline CheckpointMeta ckpt_meta(int64_t step) {
  CheckpointMeta m;
  m.step = step;
  m.tokens_seen = step * 4 * 16;
  m.config_toml = "[train]\nsteps = 100\n";
  m.layout = Layout{.micro_batches = 2};
  m.optimizer = {step, 0.9, 0.95, 1e-8, 0.1};
  m.data.seed = 1234;
  m.data.global_batch = 4;
  m.data.samples_consumed = step * 4;
  for (int64_t s = std::max<int64_t>(1, step - 2); s <= step; ++s) {
    m.data.steps.push_back(s);
    for (int64_t j = 0; j < 4; ++j) m.data.step_samples.push_back((s - 1) * 4 + j);
  }
  return m;
}

inline std::filesystem::path ckpt_temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() /
           ("llmpi_ckpt_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace llmpi::testing
