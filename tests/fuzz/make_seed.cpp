// Writes the fuzzer's seed: a small valid checkpoint with the tensors the fuzz target loads
// (the same shapes as tests/unit/test_checkpoint_util.h), values in closed form.
#include <mpi.h>

#include <cstdio>

#include "io/checkpoint.h"
#include "io/hdf5.h"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  llmpi::h5::silence_errors();
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seed OUT.h5\n");
    return 2;
  }
  const std::vector<std::pair<std::string, std::vector<int64_t>>> specs = {
      {"embed.tokens", {6, 5}}, {"final_norm.weight", {7}}, {"layers.0.w", {3, 4, 5}},
      {"layers.0.x", {2, 3, 2, 3}}};
  std::vector<std::vector<float>> store;
  store.reserve(12);
  llmpi::CheckpointSlabs slabs;
  for (int g = 0; g < 3; ++g)
    for (const auto& [name, shape] : specs) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      store.emplace_back(size_t(n));
      for (int64_t i = 0; i < n; ++i) store.back()[size_t(i)] = float(g + 1) * 0.01f * float(i);
      llmpi::TensorSlab s;
      s.name = name;
      s.global_shape = shape;
      s.data = store.back().data();
      (g == 0 ? slabs.params : g == 1 ? slabs.m : slabs.v).push_back(s);
    }
  llmpi::CheckpointMeta meta;
  meta.step = 3;
  meta.layout = llmpi::Layout{};
  meta.config_toml = "[train]\nsteps = 3\n";
  meta.data.global_batch = 2;
  meta.data.steps = {2, 3};
  meta.data.step_samples = {2, 3, 4, 5};
  llmpi::save_checkpoint(argv[1], MPI_COMM_NULL, slabs, meta);
  MPI_Finalize();
  return 0;
}
