// llmpi_collective_bench: time per call of each collective kind and message size over all
// ranks of the job, through the project's own Collectives — MpiCollectives for host tensors,
// NcclCollectives for device tensors (CUDA builds, --device cuda), and for point-to-point on
// CUDA the StagedP2p path the pipeline uses — so the numbers are those the engine sees.
// Kinds: all_reduce (sum), reduce_scatter, all_gather, broadcast (root 0) over the whole
// job; p2p = one-way time of a blocking send/recv ping-pong between ranks 0 and 1 (half the
// round trip). Sizes: the FULL tensor in bytes (f32), from --min-bytes to --max-bytes by
// --factor. Per size: one checked call (values derived from the ranks: a wrong result ends
// the run with exit status 1), then --reps timed batches of k back-to-back calls between
// barriers (k chosen so a batch lasts ~--batch-ms); a batch's time is the slowest rank's,
// the reported time the median batch / k. Prints a table with the α-β fit per kind
// (bench/perfmodel/comm_model.h) and writes the points as JSON (--json) for llmpi_perfmodel.
// Usage: mpiexec -n 2 llmpi_collective_bench [--device host|cuda] [--min-bytes 4]
//          [--max-bytes 67108864] [--factor 4] [--reps 7] [--batch-ms 20] [--json FILE]
// (--help lists the options.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>  // builds its App

#include "backend/backend.h"
#include "bench/perfmodel/comm_model.h"
#include "bench/perfmodel/tool_io.h"
#include "cli/options.h"
#include "cli/backend_option.h"
#include "core/error.h"
#include "core/runtime.h"
#include "parallel/communicator.h"
#include "parallel/mpi_collectives.h"
#if defined(LLMPI_HAVE_CUDA)
#include "parallel/nccl_collectives.h"
#include "parallel/staged_p2p.h"
#endif

namespace llmpi {
namespace {

using Clock = std::chrono::steady_clock;
using perf::Coll;

struct Options {
  std::string device = "host", json;
  int64_t min_bytes = 4, max_bytes = int64_t{64} << 20, factor = 4;
  int64_t reps = 7;
  double batch_ms = 20;
};

// The group under test: its collectives on the benchmark's device, host collectives for
// barriers and the slowest-rank reduction, and the backend that owns the buffers.
struct Group {
  Collectives* coll = nullptr;  // collectives and (MPI) p2p
  Collectives* p2p = nullptr;   // point-to-point (StagedP2p on CUDA)
  MpiCollectives* host = nullptr;
  Backend* be = nullptr;
};

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

std::vector<float> to_host(Backend& be, const Tensor& t) {
  std::vector<float> h(size_t(t.numel()));
  be.copy(Tensor{h.data(), Shape{t.numel()}, DType::f32, Device::host}, t);
  be.synchronize();
  return h;
}

void fill_value(Backend& be, const Tensor& t, double v) {
  be.fill(t, v);
  be.synchronize();
}

// One call of `kind` on buffers sized for `elems` (full tensor) elements.
struct Bufs {
  Buffer full, part;
};

void run_once(Group& g, Coll kind, Bufs& b, int64_t elems) {
  const int p = g.coll->size(), r = g.coll->rank();
  const Tensor full = b.full.tensor().slice(0, Shape{elems});
  const Tensor part = b.part.tensor().slice(0, Shape{elems / p});
  switch (kind) {
    case Coll::all_reduce: g.coll->all_reduce(full); break;
    case Coll::reduce_scatter: g.coll->reduce_scatter(part, full.slice(0, Shape{(elems / p) * p})); break;
    case Coll::all_gather: g.coll->all_gather(full.slice(0, Shape{(elems / p) * p}), part); break;
    case Coll::broadcast: g.coll->broadcast(full, 0); break;
    case Coll::p2p:
      if (r == 0) {
        g.p2p->send(full, 1, 7);
        g.p2p->recv(full, 1, 8);
      } else if (r == 1) {
        g.p2p->recv(full, 0, 7);
        g.p2p->send(full, 0, 8);
      }
      break;
  }
}

// Checks one call's result against values derived from the ranks; returns "" or the problem.
std::string check_once(Group& g, Coll kind, Bufs& b, int64_t elems) {
  Backend& be = *g.be;
  const int p = g.coll->size(), r = g.coll->rank();
  const int64_t c = elems / p;
  const Tensor full = b.full.tensor().slice(0, Shape{elems});
  const Tensor part = b.part.tensor().slice(0, Shape{c});
  double expect = 0;
  std::vector<float> got;
  switch (kind) {
    case Coll::all_reduce:
      fill_value(be, full, r + 1);
      run_once(g, kind, b, elems);
      got = to_host(be, full), expect = p * (p + 1) / 2.0;
      break;
    case Coll::reduce_scatter:
      if (c == 0) return "";
      fill_value(be, full, r + 1);
      run_once(g, kind, b, elems);
      got = to_host(be, part), expect = p * (p + 1) / 2.0;
      break;
    case Coll::all_gather: {
      if (c == 0) return "";
      fill_value(be, part, r + 1);
      run_once(g, kind, b, elems);
      got = to_host(be, full.slice(0, Shape{c * p}));
      for (int64_t i = 0; i < c * p; ++i)
        if (got[size_t(i)] != float(i / c + 1))
          return "all_gather: element " + std::to_string(i) + " is " + std::to_string(got[size_t(i)]);
      return "";
    }
    case Coll::broadcast:
      fill_value(be, full, r == 0 ? 42.0 : -1.0);
      run_once(g, kind, b, elems);
      got = to_host(be, full), expect = 42.0;
      break;
    case Coll::p2p:
      fill_value(be, full, r == 0 ? 5.0 : 0.0);
      run_once(g, kind, b, elems);  // rank 1 echoes what it received
      if (r > 1) return "";
      got = to_host(be, full), expect = 5.0;
      break;
  }
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != float(expect))
      return std::string(perf::coll_name(kind)) + ": element " + std::to_string(i) + " is " +
             std::to_string(got[i]) + ", expected " + std::to_string(expect);
  return "";
}

// Seconds per call: median over reps of the slowest rank's batch / k.
double time_calls(Group& g, Coll kind, Bufs& b, int64_t elems, const Options& o) {
  auto batch = [&](int k) {
    g.host->barrier();
    const double t0 = now_s();
    for (int i = 0; i < k; ++i) run_once(g, kind, b, elems);
    g.be->synchronize();
    return g.host->all_reduce_value(now_s() - t0, ReduceOp::max);
  };
  run_once(g, kind, b, elems);  // warm-up
  const double one = batch(1);
  const int k = int(std::clamp(o.batch_ms * 1e-3 / std::max(one, 1e-9), 1.0, 1000.0));
  std::vector<double> per;
  for (int i = 0; i < o.reps; ++i) per.push_back(batch(k) / k);
  std::sort(per.begin(), per.end());
  const size_t n = per.size();
  const double med = n % 2 ? per[n / 2] : 0.5 * (per[n / 2 - 1] + per[n / 2]);
  return kind == Coll::p2p ? med / 2 : med;  // one way of the ping-pong
}

int run(int argc, char** argv) {
  Runtime rt(argc, argv);
  Options o;
  CLI::App app{"Time per call of each collective kind and message size over all ranks of the job, "
               "through the project's Collectives (MPI; NCCL with --device cuda).",
               "llmpi_collective_bench"};
  add_value(app, "--device", o.device, "host|cuda", "where the tensors live (cuda: NCCL)")
      ->check(one_of({"host", "cuda"}));
  add_value(app, "--min-bytes", o.min_bytes, "N", "smallest full tensor (default 4)")->check(at_least(4));
  add_value(app, "--max-bytes", o.max_bytes, "N", "largest full tensor (default 64 MiB)")->check(at_least(4));
  add_value(app, "--factor", o.factor, "N", "size step (default 4)")->check(at_least(2));
  add_value(app, "--reps", o.reps, "N", "timed batches per size (default 7)")->check(at_least(1));
  add_value(app, "--batch-ms", o.batch_ms, "MS", "target length of a batch (default 20)")
      ->check(in_range(0, true, 1e6, false));
  add_value(app, "--json", o.json, "FILE", "write the points and fits for llmpi_perfmodel");
  if (!perf::parse_args(app, argc, argv)) return 0;
  if (o.max_bytes < o.min_bytes) user_error("llmpi_collective_bench: --max-bytes is below --min-bytes");
  if (rt.world_size() < 2) user_error("llmpi_collective_bench: needs at least 2 ranks (mpiexec -n 2)");

  Communicator world = Communicator::dup(MPI_COMM_WORLD, "bench");
  MpiCollectives host(world);
  std::unique_ptr<Backend> be = make_backend_option(o.device, "llmpi_collective_bench");
  Group g{&host, &host, &host, be.get()};
#if defined(LLMPI_HAVE_CUDA)
  std::unique_ptr<NcclCollectives> nccl;
  std::unique_ptr<StagedP2p> staged;
  if (be->device() == Device::cuda) {
    nccl = std::make_unique<NcclCollectives>(world, static_cast<cudaStream_t>(be->native_stream()));
    staged = std::make_unique<StagedP2p>(*nccl, host, *be);
    g.coll = nccl.get();
    g.p2p = staged.get();
  }
#endif
  const int p = rt.world_size();
  const int64_t max_elems = o.max_bytes / 4;
  Bufs b{be->alloc(Shape{max_elems}, DType::f32), be->alloc(Shape{std::max<int64_t>(max_elems / p, 1)}, DType::f32)};

  perf::CommTable table;
  char src[200];
  std::snprintf(src, sizeof src, "llmpi_collective_bench, %s, %d ranks", o.device.c_str(), p);
  table.source = src;
  table.group = p;
  if (rt.world_rank() == 0)
    std::printf("%-15s %12s %12s %10s\n", "collective", "bytes", "us/call", "GB/s");
  for (Coll kind : perf::kColls) {
    std::vector<perf::CommPoint>& pts = table.points[kind];
    for (int64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= o.factor) {
      const int64_t elems = std::max<int64_t>(bytes / 4, 1);
      const bool chunked = kind == Coll::reduce_scatter || kind == Coll::all_gather;
      if (chunked && elems < p) continue;  // no whole chunk per rank
      const std::string bad = check_once(g, kind, b, elems);
      const int failed = int(host.all_reduce_value(double(!bad.empty()), ReduceOp::max));
      if (failed) {
        if (!bad.empty()) std::fprintf(stderr, "rank %d: wrong result: %s (%lld bytes)\n", rt.world_rank(), bad.c_str(), (long long)bytes);
        return 1;
      }
      const double s = time_calls(g, kind, b, elems, o);
      const double full_bytes = double(chunked ? (elems / p) * p : elems) * 4;
      pts.push_back({full_bytes, s});
      if (rt.world_rank() == 0)
        std::printf("%-15s %12.0f %12.2f %10.3f\n", perf::coll_name(kind), full_bytes, s * 1e6,
                    full_bytes / s / 1e9);
    }
  }
  if (rt.world_rank() == 0) {
    std::printf("\nα-β fit per kind (t = α + β·bytes, least squares on relative error):\n");
    std::printf("%-15s %10s %14s %12s\n", "collective", "α (us)", "1/β (GB/s)", "max rel err");
    for (const auto& [kind, pts] : table.points) {
      const perf::AlphaBeta f = perf::fit_alpha_beta(pts);
      std::printf("%-15s %10.2f %14.3f %11.0f%%\n", perf::coll_name(kind), f.alpha * 1e6,
                  f.beta > 0 ? 1e-9 / f.beta : 0.0, f.max_rel * 100);
    }
    if (!o.json.empty()) {
      perf::write_text(o.json, perf::to_json(table), "llmpi_collective_bench");
      std::printf("wrote %s\n", o.json.c_str());
    }
  }
  return 0;
}

}  // namespace
}  // namespace llmpi

int main(int argc, char** argv) {
  return llmpi::perf::tool_main("llmpi_collective_bench", llmpi::run, argc, argv);
}
