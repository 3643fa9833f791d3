// Single-core timing of the host backend's hot non-GEMM ops: causal attention forward and
// backward and GELU forward and backward, f32, through the public Backend API (so argument
// checks are included, as in training). Shapes: the CPU demo (configs/tiny.toml: B=8, T=128,
// Hq=Hkv=4, D=32, GELU over B·T×4·128) and the same at T=512. Each op is called twice to warm
// up, then repeated until 1 s or 200 calls (at least 7); prints the medians of wall time and
// of this thread's CPU time in ms. On a shared machine the CPU time is the steadier figure:
// the wall time of a call longer than a scheduler slice includes other processes' turns
// (Kokkos Serial and OpenBLAS with one thread run in the calling thread). No assertions:
// correctness is tests/unit/test_host_ops.cpp's job. Built and run by bench/host_ops.sh
// against an existing build dir, with OPENBLAS_NUM_THREADS=1 unless set.
#include <Kokkos_Core.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <vector>

#include "backend/backend.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  double wall_ms, cpu_ms;  // medians
  int reps;
};

double thread_cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Timing time_op(const std::function<void()>& op) {
  op();
  op();
  std::vector<double> wall, cpu;
  const auto start = Clock::now();
  while (wall.size() < 200 &&
         (wall.size() < 7 || Clock::now() - start < std::chrono::seconds(1))) {
    const auto t0 = Clock::now();
    const double c0 = thread_cpu_ms();
    op();
    cpu.push_back(thread_cpu_ms() - c0);
    wall.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return {median(wall), median(cpu), static_cast<int>(wall.size())};
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
  std::printf("%-20s %-28s wall %9.3f ms   cpu %9.3f ms   (medians of %d)\n", op, shape,
              t.wall_ms, t.cpu_ms, t.reps);
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
        time_op([&] { be.attention_forward(out, lse, qkv, B, T, Hq, Hkv, D, {}); }));
  print("attention_backward", shape,
        time_op([&] { be.attention_backward(dqkv, dout, qkv, out, lse, B, T, Hq, Hkv, D, {}); }));
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
