// Checkpoint I/O benchmark: a GPT-2 124M-shaped state (params + AdamW m + v, f32: ~1.5 GB per
// file) sharded ZeRO-style (each rank a flat 1/P range of every tensor, ranges cut rows),
// saved and loaded collectively. Reports per rank count: save bandwidth (with and without the
// re-read that verifies tensor checksums), load bandwidth (digest + read + checksums), and
// the training stall of an async save (snapshot to host memory) while the caller keeps
// computing. Run under mpiexec with 1, 2, 4 ranks: bench/checkpoint_io.sh.
//   usage: bench_checkpoint_io DIR [--layers N] [--repeat R]
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/runtime.h"
#include "io/checkpoint.h"
#include "io/checkpoint_async.h"

namespace {

using llmpi::TensorSlab;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
};

std::vector<Spec> gpt2_specs(int layers) {
  const int64_t C = 768, V = 50304, T = 1024;
  std::vector<Spec> s = {{"embed.tokens", {V, C}}, {"embed.positions", {T, C}}};
  for (int l = 0; l < layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    s.push_back({p + "ln1.weight", {C}});
    s.push_back({p + "ln1.bias", {C}});
    s.push_back({p + "attn.qkv.weight", {3 * C, C}});
    s.push_back({p + "attn.qkv.bias", {3 * C}});
    s.push_back({p + "attn.proj.weight", {C, C}});
    s.push_back({p + "attn.proj.bias", {C}});
    s.push_back({p + "ln2.weight", {C}});
    s.push_back({p + "ln2.bias", {C}});
    s.push_back({p + "mlp.fc.weight", {4 * C, C}});
    s.push_back({p + "mlp.fc.bias", {4 * C}});
    s.push_back({p + "mlp.proj.weight", {C, 4 * C}});
    s.push_back({p + "mlp.proj.bias", {C}});
  }
  s.push_back({"final_norm.weight", {C}});
  s.push_back({"final_norm.bias", {C}});
  return s;
}

struct State {
  std::vector<std::vector<float>> store;
  llmpi::CheckpointSlabs slabs;
  int64_t global_elems = 0;
};

State make_state(const std::vector<Spec>& specs, int rank, int size) {
  State st;
  st.store.reserve(3 * specs.size());
  for (int g = 0; g < 3; ++g)
    for (const Spec& sp : specs) {
      int64_t n = 1;
      for (int64_t d : sp.shape) n *= d;
      st.global_elems += n;
      const int64_t share = (n + size - 1) / size;
      const int64_t lo = std::min(n, share * rank), hi = std::min(n, lo + share);
      st.store.emplace_back(size_t(hi - lo));
      for (int64_t i = lo; i < hi; ++i)
        st.store.back()[size_t(i - lo)] = float(std::sin(0.001 * double(i) + g));
      TensorSlab s;
      s.name = sp.name;
      s.global_shape = sp.shape;
      s.flat_offset = lo;
      s.flat_count = hi - lo;
      s.data = st.store.back().data();
      (g == 0 ? st.slabs.params : g == 1 ? st.slabs.m : st.slabs.v).push_back(s);
    }
  return st;
}

double max_over_ranks(double t) {
  double m = 0;
  MPI_Allreduce(&t, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  llmpi::Runtime rt(argc, argv);
  if (argc < 2) {
    if (rt.world_rank() == 0) std::fprintf(stderr, "usage: bench_checkpoint_io DIR [--layers N] [--repeat R]\n");
    return 2;
  }
  const std::string dir = argv[1];
  int layers = 12, repeat = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--layers")) layers = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::atoi(argv[i + 1]);
  }
  const int rank = rt.world_rank(), size = rt.world_size();
  if (rank == 0) std::filesystem::create_directories(dir);
  MPI_Barrier(MPI_COMM_WORLD);
  State st = make_state(gpt2_specs(layers), rank, size);
  const double gb = double(st.global_elems) * 4 / 1e9;
  llmpi::CheckpointMeta meta;
  meta.step = 100;
  meta.layout = llmpi::Layout{.dp = size, .zero_stage = 3};
  const std::string path = dir + "/bench.h5";

  double best_save = 1e30, best_save_nv = 1e30, best_load = 1e30, first_stall = 0, max_stall = 0,
         write_s = 0;
  // One saver for the run, as in training: its snapshot buffers are reused after the first save.
  llmpi::AsyncCheckpointer saver(MPI_COMM_WORLD, rt.thread_level());
  for (int r = 0; r < repeat; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    llmpi::save_checkpoint(path, MPI_COMM_WORLD, st.slabs, meta);
    best_save = std::min(best_save, max_over_ranks(now() - t0));

    MPI_Barrier(MPI_COMM_WORLD);
    t0 = now();
    llmpi::save_checkpoint(path, MPI_COMM_WORLD, st.slabs, meta, {.verify_tensors = false});
    best_save_nv = std::min(best_save_nv, max_over_ranks(now() - t0));

    MPI_Barrier(MPI_COMM_WORLD);
    t0 = now();
    llmpi::load_checkpoint(path, MPI_COMM_WORLD, st.slabs);
    best_load = std::min(best_load, max_over_ranks(now() - t0));

    // Async: the stall is the time save() blocks; the caller then "trains" (busy loop with an
    // all-reduce per iteration on its own communicator) until the write finishes.
    MPI_Barrier(MPI_COMM_WORLD);
    saver.save(path, st.slabs, meta);
    const double stall = saver.stats().last_stall_s;
    volatile double acc = 0;
    int busy = 1, steps = 0;
    while (busy) {
      for (int i = 0; i < 200000; ++i) acc = acc + std::sqrt(double(i));
      int mine = saver.busy() ? 1 : 0;
      MPI_Allreduce(&mine, &busy, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
      ++steps;
    }
    saver.wait();
    const double worst = max_over_ranks(stall);
    if (r == 0) first_stall = worst;
    else max_stall = std::max(max_stall, worst);
    write_s = max_over_ranks(saver.stats().last_write_s);
  }
  if (rank == 0) {
    std::printf(
        "ranks=%d  state=%.2f GB (%lld params x3)  save %.2f GB/s (%.2f s, verified)  "
        "save %.2f GB/s (%.2f s, digest+structure only)  load %.2f GB/s (%.2f s)  "
        "async stall %.3f s first save, %.3f s later saves (background write %.2f s)\n",
        size, gb, (long long)(st.global_elems / 3), gb / best_save, best_save, gb / best_save_nv,
        best_save_nv, gb / best_load, best_load, first_stall, max_stall, write_s);
    std::filesystem::remove(path);
  }
  return 0;
}
