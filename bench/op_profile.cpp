// llmpi_op_profile: the profile mode of the engine — one rank runs the training step of a
// config (ParallelEngine on a TimingBackend over the host or CUDA backend: zero_grads, one
// micro-batch forward, loss and backward, the gradient norm, AdamW) and reports every op's
// time, per phase and per layer (bench/perfmodel/op_profile.h), with its FLOP and byte
// floors. The JSON (--json) is the compute input of the performance model (llmpi_perfmodel,
// docs/scaling.md). The layout is forced to one rank (tp = pp = dp = 1, ZeRO 0, one
// micro-batch of train.batch_size sequences, no recomputation): the model derives sharded,
// pipelined and recomputing layouts from these per-op times.
// Tokens are uniform random ids (no data files needed). Warm-up steps first, then --steps
// profiled steps; each row's time is its median over the profiled steps. Also measured: the
// backend's copy bandwidth into warm buffers and the fill bandwidth of freshly allocated
// ones (the ZeRO-2/3 units path allocates and zero-fills buffers every micro-batch).
// Usage: llmpi_op_profile CONFIG [--set section.key=value ...] [--backend host|cuda]
//          [--steps 5] [--warmup 2] [--json FILE]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>  // builds its App

#include "backend/backend.h"
#include "backend/timing_backend.h"
#include "bench/perfmodel/op_profile.h"
#include "bench/perfmodel/tool_io.h"
#include "cli/options.h"
#include "cli/backend_option.h"
#include "config/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "parallel/engine.h"
#include "parallel/topology.h"
#if defined(LLMPI_HAVE_CUDA)
#include "backend/cuda/cuda_op_clock.h"
#endif

namespace llmpi {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// GB/s of `op` on an n-element f32 buffer (bytes of the buffer per second), median of 9.
template <class F>
double bandwidth_gbs(Backend& be, int64_t n, F&& op) {
  std::vector<double> t;
  op(n);  // warm-up
  for (int i = 0; i < 9; ++i) {
    be.synchronize();
    const auto t0 = Clock::now();
    op(n);
    be.synchronize();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return 4.0 * double(n) / median(t) / 1e9;
}

void print_report(const perf::OpProfile& p) {
  const double L = double(p.model.n_layer);
  std::printf("profile: %s, %s, B=%lld T=%lld, %lld parameters, step %.3f ms (median), ops %.3f ms\n",
              p.source.c_str(), p.device.c_str(), (long long)p.B, (long long)p.T,
              (long long)p.params, p.step_ms, p.total_ms());
  std::printf("per phase (ms per step): embedding fwd %.3f bwd %.3f | blocks fwd %.3f bwd %.3f "
              "(per layer %.3f / %.3f) | head+loss fwd %.3f bwd %.3f | step %.3f\n",
              p.phase_ms(perf::Phase::embed_fwd), p.phase_ms(perf::Phase::embed_bwd),
              p.phase_ms(perf::Phase::block_fwd), p.phase_ms(perf::Phase::block_bwd),
              p.phase_ms(perf::Phase::block_fwd) / L, p.phase_ms(perf::Phase::block_bwd) / L,
              p.phase_ms(perf::Phase::head_fwd), p.phase_ms(perf::Phase::head_bwd),
              p.phase_ms(perf::Phase::step));
  std::printf("bandwidth: copy %.2f GB/s, fresh allocation + fill %.2f GB/s\n", p.copy_gbs, p.fresh_gbs);
  std::printf("%-10s %-24s %-10s %-9s %6s %10s %11s %11s\n", "phase", "op", "class", "role",
              "calls", "ms", "GFLOP/s", "GB/s");
  std::vector<perf::ProfileRow> rows = p.rows;
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
  for (const perf::ProfileRow& r : rows)
    std::printf("%-10s %-24s %-10s %-9s %6lld %10.3f %11.2f %11.2f\n", perf::phase_name(r.phase),
                (r.op + (r.shape.empty() ? "" : " " + r.shape)).c_str(), perf::class_name(r.cls),
                perf::role_name(r.role), (long long)r.calls, r.ms,
                r.ms > 0 ? r.flops / r.ms / 1e6 : 0.0, r.ms > 0 ? r.bytes / r.ms / 1e6 : 0.0);
}

int run(int argc, char** argv) {
  Runtime rt(argc, argv);
  std::string config, backend = "host", json;
  std::vector<std::string> overrides;
  int64_t steps = 5, warmup = 2;
  CLI::App app{"The profile mode: one rank runs the engine's training step of CONFIG and reports "
               "every op's time per phase and per layer (the performance model's compute input).",
               "llmpi_op_profile"};
  add_value(app, "CONFIG", config, "CONFIG", "the TOML config")->required();
  add_list(app, "--set", overrides, "KEY=VALUE", "override one config key (repeatable)");
  add_value(app, "--backend", backend, "host|cuda", "backend to profile (default host)")
      ->check(one_of({"host", "cuda"}));
  add_value(app, "--steps", steps, "N", "profiled steps (default 5)")->check(at_least(1));
  add_value(app, "--warmup", warmup, "N", "warm-up steps first (default 2)")->check(at_least(0));
  add_value(app, "--json", json, "FILE", "write the profile for llmpi_perfmodel");
  if (!perf::parse_args(app, argc, argv)) return 0;
  if (rt.world_size() != 1) user_error("llmpi_op_profile: runs on one rank (started with ", rt.world_size(), ")");
  // One rank, one micro-batch, no recomputation: the model derives the rest.
  for (const char* o : {"parallel.tp=1", "parallel.pp=1", "parallel.dp=1", "parallel.zero_stage=0",
                        "parallel.micro_batches=1", "parallel.sequence_parallel=false",
                        "parallel.virtual_stages=1", "parallel.stage_layers=[]", "train.recompute=\"none\""})
    overrides.push_back(o);
  const Config cfg = load_config(config, overrides);
  Topology topo(cfg, MPI_COMM_WORLD);
  std::unique_ptr<Backend> be = make_backend_option(backend, "llmpi_op_profile");
  std::unique_ptr<OpClock> clock;
#if defined(LLMPI_HAVE_CUDA)
  if (be->device() == Device::cuda) clock = std::make_unique<CudaOpClock>(*be);
#endif
  if (!clock) clock = std::make_unique<HostOpClock>(*be);
  TimingBackend tb(*be, *clock);
  ParallelEngine engine(cfg, topo, tb);

  const int64_t N = cfg.train.batch_size * cfg.train.seq_len;
  std::vector<int32_t> tokens(size_t(N + 1));
  const uint64_t key = rng_key(cfg.train.seed, "op_profile_tokens");
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = int32_t(rng_bits(key, i) % uint64_t(cfg.model.vocab_size));
  const std::span<const int32_t> ids(tokens.data(), size_t(N)), targets(tokens.data() + 1, size_t(N));
  std::fprintf(stderr, "llmpi_op_profile: %lld warm-up + %lld profiled steps of %s on %s\n",
               (long long)warmup, (long long)steps, config.c_str(), be->name());
  for (int64_t s = 0; s < warmup; ++s) engine.step(ids, targets, 1e-4);
  std::vector<std::vector<perf::ProfileRow>> per_step;
  std::vector<double> step_ms;
  for (int64_t s = 0; s < steps; ++s) {
    tb.clear();
    be->synchronize();
    const auto t0 = Clock::now();
    engine.step(ids, targets, 1e-4);
    be->synchronize();
    step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    const std::vector<OpRecord> rec = tb.records();
    per_step.push_back(perf::classify(rec, cfg.model));
  }
  perf::OpProfile p;
  p.source = std::string("llmpi_op_profile ") + config + " on " + be->name();
  p.device = be->device() == Device::cuda ? "cuda" : "host";
  p.model = cfg.model;
  p.B = cfg.train.batch_size;
  p.T = cfg.train.seq_len;
  p.params = engine.global_param_count();
  p.step_ms = median(step_ms);
  p.rows = perf::median_rows(per_step);
  // 4 MiB buffers: the size of a ZeRO unit of the host configs (on a GPU, allocation comes
  // from the stream-ordered pool at any size).
  const int64_t n = int64_t{1} << 20;
  Buffer src = be->alloc(Shape{n}, DType::f32), dst = be->alloc(Shape{n}, DType::f32);
  be->fill(src, 1.0);
  p.copy_gbs = bandwidth_gbs(*be, n, [&](int64_t) { be->copy(dst, src); });
  p.fresh_gbs = bandwidth_gbs(*be, n, [&](int64_t) {
    Buffer b = be->alloc(Shape{n}, DType::f32);
    be->fill(b, 0.0);
    be->synchronize();
  });
  print_report(p);
  if (!json.empty()) {
    perf::write_text(json, perf::to_json(p), "llmpi_op_profile");
    std::printf("wrote %s\n", json.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace llmpi

int main(int argc, char** argv) {
  return llmpi::perf::tool_main("llmpi_op_profile", llmpi::run, argc, argv);
}
