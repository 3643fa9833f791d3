// llmpi_overlap_progress: does a non-blocking all-reduce progress behind compute? Open MPI
// moves a non-blocking collective only while the process is inside some MPI call (no
// progress thread by default), so the engine's GradReducer tests its requests between
// blocks of the backward. This measures that strategy against the alternatives, per message
// size S (f32 all-reduce over all ranks of the job) and compute length C:
//   alone       the blocking all-reduce by itself
//   serial      compute C, then the blocking all-reduce (the unoverlapped engine)
//   no polling  MPI_Iallreduce, compute C without any MPI call, wait
//   polled      MPI_Iallreduce, compute C in --slices pieces with a test after each, wait
// and reports each strategy's exposed communication = its time − the compute alone (median
// of --reps, the slowest rank's). Every all-reduce result is checked (exit 1 if wrong).
// Usage: mpiexec -n 2 llmpi_overlap_progress [--compute-ms 20] [--slices 8] [--reps 7]
//          [--min-bytes 65536] [--max-bytes 16777216] [--factor 4]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>  // builds its App

#include "bench/perfmodel/tool_io.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/runtime.h"
#include "parallel/mpi_collectives.h"

namespace llmpi {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Options {
  double compute_ms = 20;
  int64_t slices = 8, reps = 7, min_bytes = 65536, max_bytes = int64_t{16} << 20, factor = 4;
};

// Fixed work (no MPI): `iters` passes of a multiply-add over a small array (stays in cache).
float work(std::vector<float>& a, int64_t iters) {
  for (int64_t k = 0; k < iters; ++k)
    for (float& x : a) x = x * 0.999f + 0.001f;
  return a[0];
}

// Passes of work() that take about `ms` on this rank, agreed over the job (the largest).
int64_t calibrate(std::vector<float>& a, double ms, MpiCollectives& world) {
  int64_t iters = 1;
  for (;;) {
    double s = 1e30;  // the fastest of 3: a rank descheduled meanwhile must not shorten C
    for (int k = 0; k < 3; ++k) {
      const auto t0 = Clock::now();
      work(a, iters);
      s = std::min(s, since(t0));
    }
    if (s > 0.02 || iters > (int64_t{1} << 30)) {
      const double n = std::max(1.0, std::round(double(iters) * ms * 1e-3 / s));
      return int64_t(world.all_reduce_value(n, ReduceOp::max));
    }
    iters *= 2;
  }
}

enum Strategy { alone, serial, no_poll, polled, kStrategies };

int run(int argc, char** argv) {
  Runtime rt(argc, argv);
  Options o;
  CLI::App app{"Overlap of a non-blocking MPI all-reduce with compute, by progress strategy.",
               "llmpi_overlap_progress"};
  add_value(app, "--compute-ms", o.compute_ms, "MS", "compute per trial (default 20)")->check(at_least(0.1));
  add_value(app, "--slices", o.slices, "N", "pieces of the polled compute (default 8)")->check(at_least(1));
  add_value(app, "--reps", o.reps, "N", "trials per point (default 7)")->check(at_least(1));
  add_value(app, "--min-bytes", o.min_bytes, "N", "smallest tensor (default 64 KiB)")->check(at_least(4));
  add_value(app, "--max-bytes", o.max_bytes, "N", "largest tensor (default 16 MiB)")->check(at_least(4));
  add_value(app, "--factor", o.factor, "N", "size step (default 4)")->check(at_least(2));
  if (!perf::parse_args(app, argc, argv)) return 0;
  Communicator comm = Communicator::dup(MPI_COMM_WORLD, "world");
  MpiCollectives world(comm);
  const int p = world.size(), r = world.rank();
  std::vector<float> scratch(4096, 1.0f);
  const int64_t iters = calibrate(scratch, o.compute_ms, world);
  const int64_t slice = std::max<int64_t>(1, iters / o.slices);
  auto compute = [&](bool poll, Request* req) {
    for (int64_t done = 0; done < iters; done += slice) {
      work(scratch, std::min(slice, iters - done));
      if (poll && req) req->test();
    }
  };
  // The compute alone (the baseline every exposed time is measured against).
  std::vector<double> base;
  for (int64_t k = 0; k < o.reps; ++k) {
    world.barrier();
    const auto t0 = Clock::now();
    compute(false, nullptr);
    base.push_back(world.all_reduce_value(since(t0), ReduceOp::max));
  }
  std::sort(base.begin(), base.end());
  const double c = base[base.size() / 2];
  if (r == 0)
    std::printf("%d ranks; compute %.2f ms (median of %lld, %lld work passes, polled in %lld slices)\n"
                "| bytes | alone ms | exposed ms: serial | no polling | polled |\n|---|---|---|---|---|\n",
                p, 1e3 * c, (long long)o.reps, (long long)iters, (long long)o.slices);
  int bad = 0;
  for (int64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= o.factor) {
    const int64_t n = bytes / 4;
    std::vector<float> buf(static_cast<size_t>(n));
    const Tensor t{buf.data(), Shape{n}, DType::f32, Device::host};
    double med[kStrategies];
    for (int s = 0; s < kStrategies; ++s) {
      std::vector<double> times;
      for (int64_t k = 0; k < o.reps; ++k) {
        std::fill(buf.begin(), buf.end(), float(r + 1));
        world.barrier();
        const auto t0 = Clock::now();
        if (s == alone) {
          world.all_reduce(t);
        } else if (s == serial) {
          compute(false, nullptr);
          world.all_reduce(t);
        } else {
          Request req = world.iall_reduce(t);
          compute(s == polled, &req);
          req.wait();
        }
        times.push_back(world.all_reduce_value(since(t0), ReduceOp::max));
        bad += buf.front() != float(p * (p + 1) / 2) || buf.back() != float(p * (p + 1) / 2);
      }
      std::sort(times.begin(), times.end());
      med[s] = times[times.size() / 2] - (s == alone ? 0.0 : c);
    }
    if (r == 0)
      std::printf("| %lld | %.3f | %.3f | %.3f | %.3f |\n", (long long)bytes, 1e3 * med[alone],
                  1e3 * med[serial], 1e3 * med[no_poll], 1e3 * med[polled]);
  }
  bad = int(world.all_reduce_value(double(bad)));
  if (bad) {
    if (r == 0) std::fprintf(stderr, "llmpi_overlap_progress: %d wrong all-reduce results\n", bad);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace llmpi

int main(int argc, char** argv) {
  return llmpi::perf::tool_main("llmpi_overlap_progress", llmpi::run, argc, argv);
}
