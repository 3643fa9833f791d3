// Single-core timing of the host backend's hot non-GEMM ops: causal attention forward and
// backward and GELU forward and backward, f32, through the public Backend API (so argument
// checks are included, as in training). Shapes: the CPU demo (configs/tiny.toml: B=8, T=128,
// Hq=Hkv=4, D=32, GELU over B·T×4·128) and the same at T=512. Each op is called twice to warm
// up, then repeated until 1 s or 200 calls (at least 7); prints median and min in ms.
// No assertions: correctness is tests/unit/test_host_ops.cpp's job. Built by
// bench/host_ops.sh against an existing build dir; OPENBLAS_NUM_THREADS=1 is recommended.
#include <Kokkos_Core.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "backend/backend.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  double median_ms, min_ms;
  int reps;
};

Timing time_op(const std::function<void()>& op) {
  op();
  op();
  std::vector<double> ms;
  const auto start = Clock::now();
  while (ms.size() < 200 &&
         (ms.size() < 7 || Clock::now() - start < std::chrono::seconds(1))) {
    const auto t0 = Clock::now();
    op();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms.front(), static_cast<int>(ms.size())};
}

// Uniform values in [-a, a) from a fixed-seed generator (the values only set the softmax's
// spread; a = 2 gives scores of a few units, as in a trained model).
void fill_uniform(const llmpi::Tensor& t, uint64_t seed, float a) {
  float* p = t.ptr<float>();
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;  // xorshift64
    p[i] = a * (2.f * static_cast<float>(s >> 40) / static_cast<float>(1 << 24) - 1.f);
  }
}

void print(const char* op, const char* shape, const Timing& t) {
  std::printf("%-20s %-28s median %9.3f ms   min %9.3f ms   (%d reps)\n", op, shape,
              t.median_ms, t.min_ms, t.reps);
}

void bench_attention(llmpi::Backend& be, int64_t B, int64_t T, int64_t Hq, int64_t Hkv,
                     int64_t D) {
  using llmpi::DType;
  const int64_t W = (Hq + 2 * Hkv) * D;
  llmpi::Buffer qkv = be.alloc({B, T, W}, DType::f32), dqkv = be.alloc({B, T, W}, DType::f32);
  llmpi::Buffer out = be.alloc({B, T, Hq * D}, DType::f32);
  llmpi::Buffer dout = be.alloc({B, T, Hq * D}, DType::f32);
  llmpi::Buffer lse = be.alloc({B, Hq, T}, DType::f32);
  fill_uniform(qkv, 1, 2.f);
  fill_uniform(dout, 2, 1.f);
  char shape[64];
  std::snprintf(shape, sizeof shape, "B=%ld T=%ld Hq=%ld Hkv=%ld D=%ld", long(B), long(T),
                long(Hq), long(Hkv), long(D));
  print("attention_forward", shape,
        time_op([&] { be.attention_forward(out, lse, qkv, B, T, Hq, Hkv, D); }));
  print("attention_backward", shape,
        time_op([&] { be.attention_backward(dqkv, dout, qkv, out, lse, B, T, Hq, Hkv, D); }));
}

void bench_gelu(llmpi::Backend& be, int64_t N, int64_t F) {
  using llmpi::DType;
  llmpi::Buffer in = be.alloc({N, F}, DType::f32), out = be.alloc({N, F}, DType::f32);
  llmpi::Buffer dout = be.alloc({N, F}, DType::f32), din = be.alloc({N, F}, DType::f32);
  fill_uniform(in, 3, 3.f);
  fill_uniform(dout, 4, 1.f);
  char shape[64];
  std::snprintf(shape, sizeof shape, "N=%ld F=%ld", long(N), long(F));
  print("gelu_forward", shape, time_op([&] { be.gelu_forward(out, in); }));
  print("gelu_backward", shape, time_op([&] { be.gelu_backward(din, dout, in); }));
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  auto be = llmpi::make_host_backend();
  bench_attention(*be, 8, 128, 4, 4, 32);
  bench_attention(*be, 8, 512, 4, 4, 32);
  bench_gelu(*be, 8 * 128, 4 * 128);
  bench_gelu(*be, 8 * 512, 4 * 128);
  return 0;
}
