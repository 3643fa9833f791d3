// llmpi_gpu_bench: training throughput of our model on ONE GPU (CUDA backend: bf16 compute,
// f32 master weights, gradients and AdamW state), for the shapes of bench/torch_reference.py:
//   gpt2-124m       B=32, T=1024, V=50257 (run padded to 50304, a multiple of 64, for
//                   aligned cuBLASLt products; FLOPs are counted with the real 50257)
//   tinyllama-1.1b  B=8,  T=2048, GQA 32:4, SwiGLU, RoPE, V=32000
// One step = zero grads, forward, loss, backward, global-norm clip at 1.0, fused AdamW that
// also writes the bf16 compute weights. Random uniform tokens. Warm-up, then ≥ 20 timed steps
// (CUDA events on the backend's stream; a step includes its two host read-backs: the loss
// and the gradient norm). Prints ONE JSON line with the keys of torch_reference.py
// (tokens/s of the median step, MFU = tokens/s · flops_per_token / 989.4e12, peak memory =
// the stream-ordered pool's high-water mark, launch → first finished step).
// --profile adds one step through a timing decorator of the backend: CUDA events around
// every op, summed per op kind and shape, each against its floors — FLOPs over the measured
// bf16 matrix rate, bytes moved (its tensors' sizes) over the measured copy bandwidth.
// --graph replays each step's forward (with the zeroing of the gradients) and backward as two
// CUDA graphs captured after warm-up (Backend::record): what graphs save where launches dominate.
// The loss and gradient-norm read-backs and AdamW stay outside (they read back or upload).
// tiny is configs/tiny.toml's model (1M parameters, 8 × 128 tokens): launch-bound.
// The fused kernels follow LLMPI_FUSED (docs/cuda.md); the JSON line says which were on.
// Usage: llmpi_gpu_bench --config gpt2-124m|tinyllama-1.1b|tiny [--steps 20] [--warmup 5]
//                        [--profile] [--recompute none|selective|full] [--graph]
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_op_clock.h"
#include "backend/timing_backend.h"
#include "core/error.h"
#include "core/float16.h"
#include "core/rng.h"
#include "model/model_flops.h"
#include "model/param_layout.h"
#include "model/transformer.h"
#include "optim/adamw.h"

namespace llmpi {
namespace {

constexpr double kH100Bf16Dense = 989.4e12;

// Seconds since this process was launched (Linux /proc), as torch_reference.py measures.
double process_age_s() {
  std::ifstream st("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string field;
  for (int i = 0; i < 20; ++i) rest >> field;  // fields 3..22; 22 = starttime (ticks)
  const double start = std::stod(field) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream up("/proc/uptime");
  double uptime = 0;
  up >> uptime;
  return uptime - start;
}

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw InternalError(std::string(what) + ": " + cudaGetErrorString(e));
}

struct BenchShape {
  std::string name;
  ModelConfig cfg;     // what runs (vocab possibly padded)
  int64_t real_vocab;  // what FLOPs are counted with
  int64_t B, T;
  double lr;

  // model/model_flops.h, with the vocabulary the model really has (not the padded one).
  double flops_per_token() const {
    ModelConfig real = cfg;
    real.vocab_size = real_vocab;
    return model_flops_per_token(real, T);
  }
};

BenchShape shape_of(const std::string& name) {
  BenchShape s;
  s.name = name;
  ModelConfig& c = s.cfg;
  if (name == "gpt2-124m") {
    c.arch = Arch::gpt2;
    s.real_vocab = 50257;
    c.vocab_size = 50304;
    c.n_layer = 12, c.n_head = 12, c.n_kv_head = 12, c.d_model = 768, c.d_ff = 3072;
    c.max_seq_len = 1024, c.tied_embeddings = true;
    s.B = 32, s.T = 1024, s.lr = 6e-4;
  } else if (name == "tinyllama-1.1b") {
    c.arch = Arch::llama;
    s.real_vocab = c.vocab_size = 32000;
    c.n_layer = 22, c.n_head = 32, c.n_kv_head = 4, c.d_model = 2048, c.d_ff = 5632;
    c.max_seq_len = 2048, c.tied_embeddings = false;
    s.B = 8, s.T = 2048, s.lr = 4e-4;
  } else if (name == "tiny") {
    c.arch = Arch::gpt2;
    s.real_vocab = c.vocab_size = 2048;
    c.n_layer = 4, c.n_head = 4, c.n_kv_head = 4, c.d_model = 128, c.d_ff = 512;
    c.max_seq_len = 128, c.tied_embeddings = true;
    s.B = 8, s.T = 128, s.lr = 3e-3;
  } else {
    throw UserError("--config: expected gpt2-124m, tinyllama-1.1b or tiny, got '" + name + "'");
  }
  return s;
}

// ---- one training run ----------------------------------------------------------------------

struct Trainee {
  Backend& be;
  ParamStore store;
  Transformer model;
  Activations acts;
  Workspace ws;
  Buffer ids, targets;
  AdamW opt;  // betas 0.9 / 0.95, eps 1e-8, weight decay 0.1 (not on gains and biases)

  Trainee(Backend& b, const BenchShape& s)
      : be(b),
        store(b, transformer_params(s.cfg, StageRange::full(s.cfg)), DType::f32),
        model(s.cfg, StageRange::full(s.cfg), store),
        acts(model.alloc_activations(b, s.B, s.T)),
        ws(model.alloc_workspace(b, s.B, s.T)),
        ids(b.alloc(Shape{s.B * s.T}, DType::i32)),
        targets(b.alloc(Shape{s.B * s.T}, DType::i32)),
        opt(b, store, AdamWOptions{}) {}

  int64_t count = 0;  // counted targets of the last step (the backward graph's loss scale)
  std::unique_ptr<RecordedWork> fwd_graph, bwd_graph;

  // One optimizer step on backend `on` (the CUDA backend or its timing decorator), through
  // the captured graphs once capture_graphs() ran. Returns (mean loss, gradient norm).
  std::pair<double, double> train_step(Backend& on, double lr) {
    if (fwd_graph) {
      fwd_graph->replay();
    } else {
      store.zero_grads(on);
      model.forward(on, acts, ids);
    }
    const LossSum l = model.loss(on, acts, targets);
    if (bwd_graph) {
      if (l.count != count) throw InternalError("the captured backward assumes a fixed target count");
      bwd_graph->replay();
    } else {
      model.backward_loss(on, acts, ws, ids, targets, 1.0 / static_cast<double>(l.count));
    }
    count = l.count;
    const Tensor g = store.grads();
    const double norm = std::sqrt(on.sum_squares(std::span<const Tensor>(&g, 1)));
    opt.step(on, lr, norm > 1.0 ? 1.0 / norm : 1.0);
    return {l.sum / static_cast<double>(l.count), norm};
  }

  // Records the step's forward (with zero_grads) and backward as graphs (after a step ran, so
  // that plans, workspaces and `count` exist).
  void capture_graphs() {
    fwd_graph = be.record([&] {
      store.zero_grads(be);
      model.forward(be, acts, ids);
    });
    bwd_graph = be.record([&] {
      model.backward_loss(be, acts, ws, ids, targets, 1.0 / static_cast<double>(count));
    });
    if (!fwd_graph || !bwd_graph) throw InternalError("--graph: the backend cannot record");
  }
};

// Uniform random bf16 in [-1, 1) into a device tensor of n elements.
void fill_random_bf16(const Tensor& t, int64_t n, uint64_t seed) {
  const uint64_t key = rng_key(seed, "bench_floor");
  std::vector<uint16_t> host(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    host[size_t(i)] = f32_to_bf16(static_cast<float>(2.0 * rng_uniform(key, uint64_t(i)) - 1.0));
  cuda_ok(cudaMemcpy(t.data, host.data(), host.size() * sizeof(uint16_t), cudaMemcpyHostToDevice),
          "upload");
}

// Measured floors: bf16 GEMM rate (8192³ through linear_forward) and device copy bandwidth.
// The product's operands are random: constant ones barely toggle the tensor cores' inputs and
// run ~12 % faster at a fraction of the power (docs/performance.md, "power limit").
std::pair<double, double> measure_floors(Backend& be, cudaStream_t st) {
  const int64_t n = 8192;
  Buffer a = be.alloc(Shape{n, n}, DType::bf16), w = be.alloc(Shape{n, n}, DType::bf16),
         o = be.alloc(Shape{n, n}, DType::bf16);
  fill_random_bf16(a, n * n, 1);
  fill_random_bf16(w, n * n, 2);
  const int64_t cn = int64_t{1} << 29;  // 1 GiB of bf16
  Buffer src = be.alloc(Shape{cn}, DType::bf16), dst = be.alloc(Shape{cn}, DType::bf16);
  be.fill(src, 1.0);
  cudaEvent_t e0, e1;
  cuda_ok(cudaEventCreate(&e0), "event");
  cuda_ok(cudaEventCreate(&e1), "event");
  auto time_ms = [&](auto&& f, int reps) {
    f();
    cuda_ok(cudaEventRecord(e0, st), "record");
    for (int i = 0; i < reps; ++i) f();
    cuda_ok(cudaEventRecord(e1, st), "record");
    cuda_ok(cudaEventSynchronize(e1), "sync");
    float ms = 0;
    cuda_ok(cudaEventElapsedTime(&ms, e0, e1), "elapsed");
    return static_cast<double>(ms) / reps;
  };
  const double mm_ms = time_ms([&] { be.linear_forward(o, a, w, Tensor{}); }, 10);
  const double cp_ms = time_ms([&] { be.copy(dst, src); }, 10);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return {2.0 * n * n * n / (mm_ms * 1e-3), 2.0 * 2 * cn / (cp_ms * 1e-3)};
}

void print_profile(std::span<const OpRecord> records, double flop_rate, double bandwidth,
                   double step_ms) {
  const std::vector<OpSummary> rows = summarize_ops(records);
  double total = 0;
  for (const OpSummary& s : rows) total += s.ms;
  std::fprintf(stderr,
               "per-op time of one step (CUDA events; floors: %.0f TFLOP/s bf16 GEMM, %.0f GB/s "
               "copy; a step %.1f ms, ops sum %.1f ms)\n",
               flop_rate / 1e12, bandwidth / 1e9, step_ms, total);
  std::fprintf(stderr, "%-36s %6s %9s %6s %10s %10s %7s\n", "op", "calls", "ms", "share",
               "flop floor", "byte floor", "eff");
  for (const OpSummary& s : rows) {
    const double ff = s.flops / flop_rate * 1e3, bf = s.bytes / bandwidth * 1e3;
    std::fprintf(stderr, "%-36s %6d %9.3f %5.1f%% %10.3f %10.3f %6.0f%%\n", s.label.c_str(),
                 s.calls, s.ms, 100 * s.ms / total, ff, bf, 100 * std::max(ff, bf) / s.ms);
  }
}

int run(int argc, char** argv) {
  const double age0 = process_age_s();
  const auto t0 = std::chrono::steady_clock::now();
  auto since_launch = [&] {
    return age0 + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::string config = "gpt2-124m";
  int steps = 20, warmup = 5;
  bool profile = false, graph = false;
  Recompute recompute = Recompute::none;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UserError(a + ": expected a value");
      return argv[++i];
    };
    if (a == "--config") config = value();
    else if (a == "--steps") steps = std::stoi(value());
    else if (a == "--warmup") warmup = std::stoi(value());
    else if (a == "--profile") profile = true;
    else if (a == "--graph") graph = true;
    else if (a == "--recompute") {
      const std::string r = value();
      if (r == "none") recompute = Recompute::none;
      else if (r == "selective") recompute = Recompute::selective;
      else if (r == "full") recompute = Recompute::full;
      else throw UserError("--recompute: expected none, selective or full, got '" + r + "'");
    }
    else throw UserError("unknown argument '" + a + "' (expected --config, --steps, --warmup, --profile, --recompute, --graph)");
  }
  if (steps < 1 || warmup < 0) throw UserError("--steps must be >= 1 and --warmup >= 0");
  if (graph && warmup < 2)
    throw UserError("--graph needs --warmup >= 2 (the first graph replay is the last warm-up step)");
  BenchShape s = shape_of(config);
  s.cfg.recompute = recompute;
  if (cuda_device_count() == 0) throw UserError("no GPU");

  auto be_ptr = make_cuda_backend();
  Backend& be = *be_ptr;
  cudaStream_t stream = dynamic_cast<CudaBackend&>(be).stream();
  Trainee tr(be, s);
  tr.store.init(be, 1234);
  {  // random uniform tokens; targets are the ids shifted by one
    std::vector<int32_t> ids(static_cast<size_t>(s.B * s.T + 1));
    const uint64_t key = rng_key(99, "bench_tokens");
    for (size_t i = 0; i < ids.size(); ++i)
      ids[i] = static_cast<int32_t>(rng_bits(key, i) % static_cast<uint64_t>(s.real_vocab));
    Tensor h;
    h.data = ids.data();
    h.shape = Shape{s.B * s.T};
    h.dtype = DType::i32;
    h.device = Device::host;
    be.copy(tr.ids, h);
    h.data = ids.data() + 1;
    be.copy(tr.targets, h);
    be.synchronize();
  }
  std::vector<double> losses, norms;
  auto [l0, n0] = tr.train_step(be, s.lr);
  be.synchronize();
  const double first_step_s = since_launch();
  losses.push_back(l0);
  // Every run takes max(warmup, 1) + steps optimizer steps, so that with and without --graph
  // the runs train alike (LLMPI_DETERMINISTIC=1: the same loss_last bits).
  for (int i = 1; i < warmup - (graph ? 1 : 0); ++i) tr.train_step(be, s.lr);
  if (graph) {
    tr.capture_graphs();
    tr.train_step(be, s.lr);  // the first replay (graph upload): the last warm-up step
  }

  std::vector<cudaEvent_t> ev(static_cast<size_t>(steps) + 1);
  for (auto& e : ev) cuda_ok(cudaEventCreate(&e), "cudaEventCreate");
  cuda_ok(cudaEventRecord(ev[0], stream), "record");
  std::vector<double> step_ms;
  for (int i = 0; i < steps; ++i) {
    auto [l, n] = tr.train_step(be, s.lr);
    cuda_ok(cudaEventRecord(ev[static_cast<size_t>(i) + 1], stream), "record");
    losses.push_back(l);
    norms.push_back(n);
  }
  be.synchronize();
  for (int i = 0; i < steps; ++i) {
    float ms = 0;
    cuda_ok(cudaEventElapsedTime(&ms, ev[static_cast<size_t>(i)], ev[static_cast<size_t>(i) + 1]), "elapsed");
    step_ms.push_back(ms);
  }
  for (auto& e : ev) cudaEventDestroy(e);
  std::vector<double> sorted = step_ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = steps % 2 ? sorted[steps / 2] : 0.5 * (sorted[steps / 2 - 1] + sorted[steps / 2]);

  cudaMemPool_t pool;
  cuda_ok(cudaDeviceGetDefaultMemPool(&pool, 0), "pool");
  uint64_t used_high = 0, reserved_high = 0;
  cuda_ok(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &used_high), "pool attr");
  cuda_ok(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemHigh, &reserved_high), "pool attr");
  size_t free_b = 0, total_b = 0;
  cuda_ok(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDeviceProperties(&prop, 0), "props");

  const CudaFusions& f = dynamic_cast<CudaBackend&>(be).options().fused;
  std::string fused;
  for (const auto& [on, name] : {std::pair{f.norm, "norm"}, std::pair{f.gelu, "gelu"},
                               std::pair{f.swiglu, "swiglu"}})
    if (on) fused += (fused.empty() ? "" : ",") + std::string(name);
  if (fused.empty()) fused = "none";
  const double tokens = static_cast<double>(s.B * s.T);
  const double tok_s = tokens / (median * 1e-3);
  std::printf(
      "{\"bench\": \"llmpi\", \"config\": \"%s\", \"card\": \"%s\", \"precision\": \"bf16 compute, "
      "f32 master/grads/adamw\", \"recompute\": \"%s\", \"fused\": \"%s\", \"graph\": %s, "
      "\"vocab_run\": %lld, \"vocab_flops\": %lld, \"batch\": %lld, "
      "\"seq_len\": %lld, \"params\": %lld, \"flops_per_token\": %.0f, \"warmup_steps\": %d, "
      "\"timed_steps\": %d, \"median_step_ms\": %.3f, \"min_step_ms\": %.3f, \"max_step_ms\": "
      "%.3f, \"tokens_per_s\": %.1f, \"mfu\": %.4f, \"peak_mem_gib\": %.3f, "
      "\"peak_reserved_gib\": %.3f, \"device_used_gib\": %.3f, \"launch_to_first_step_s\": %.2f, "
      "\"loss_first\": %.4f, \"loss_last\": %.4f, \"ln_vocab\": %.4f, \"grad_norm_last\": %.4f}\n",
      s.name.c_str(), prop.name, recompute_name(s.cfg.recompute), fused.c_str(),
      graph ? "true" : "false",
      static_cast<long long>(s.cfg.vocab_size),
      static_cast<long long>(s.real_vocab), static_cast<long long>(s.B),
      static_cast<long long>(s.T), static_cast<long long>(tr.store.numel()), s.flops_per_token(),
      warmup, steps, median, sorted.front(), sorted.back(), tok_s,
      tok_s * s.flops_per_token() / kH100Bf16Dense, used_high / 1073741824.0,
      reserved_high / 1073741824.0, (total_b - free_b) / 1073741824.0, first_step_s,
      losses.front(), losses.back(), std::log(static_cast<double>(s.real_vocab)), norms.back());
  std::fflush(stdout);

  if (profile) {
    tr.fwd_graph.reset();  // the profiled step runs op by op
    tr.bwd_graph.reset();
    CudaOpClock clock(be);
    TimingBackend tb(be, clock);
    tr.train_step(tb, s.lr);
    const std::vector<OpRecord> records = tb.records();
    // The floors are measured after the step (their ~2.4 GiB are not in the peak above).
    const auto [rate, bw] = measure_floors(be, stream);
    print_profile(records, rate, bw, median);
  }
  return 0;
}

}  // namespace
}  // namespace llmpi

int main(int argc, char** argv) {
  try {
    return llmpi::run(argc, argv);
  } catch (const llmpi::UserError& e) {
    std::fprintf(stderr, "llmpi_gpu_bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmpi_gpu_bench: internal error: %s\n", e.what());
    return 1;
  }
}
