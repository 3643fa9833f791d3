#pragma once
// Layout equivalence harness for the multi-rank training tests (tests/mpi/train_*.N.cpp).
// Every rank trains the 1-rank reference itself (on MPI_COMM_SELF, same seed and data, the
// same global batch as M·dp micro-batches of B rows) and then the layout under test on
// MPI_COMM_WORLD. Over every step the losses and gradient norms must agree within 1e-5
// relative, and every parameter slab this rank holds must equal the reference's elements at
// the slab's global coordinates within 1e-5 (‖Δ‖₂/‖p‖₂ per tensor).
// Rounding-dominated elements: AdamW moves an element by lr·m̂/(√v̂+ε) ≈ ±lr whatever the
// size of its gradient, so an element whose fp32 gradient is itself rounding residue (a sum
// that cancels to within a few ulps of its terms) moves in a direction that the summation
// order decides. Another layout sums in another order (tp all-reduces partial products,
// micro-batches and dp ranks add partial sums), so it may move such an element the other way.
// The reference runs step by step and marks every element whose gradient at some step is
// below 1e-6 of its tensor's largest (~8 ulps); those are held to the AdamW bound (at most
// 2·Σ lr apart), must be rare, and are excluded from the 1e-5 norm. Every marked element is
// printed. docs/parallelism.md ("Rounding-dominated elements") shows the one case seen.
// Shapes are tiny.toml's structure (GPT-2 and Llama) at a size that keeps a step in
// milliseconds: V=64, C=32, 4 heads (2 kv heads for Llama), 4 layers, T=16.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <sstream>
#include <string>

#include "backend/backend.h"
#include "config/config.h"
#include "core/rng.h"
#include "data/token_shard.h"
#include "io/model_file.h"
#include "model/param_layout.h"
#include "train/trainer.h"

namespace llmpi::testing {

namespace fs = std::filesystem;

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// A corpus with learnable structure, written by rank 0 into a directory shared by the job.
inline fs::path shared_corpus(const std::string& name) {
  int pid = world_rank() == 0 ? int(::getpid()) : 0;
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  const fs::path d = fs::temp_directory_path() / ("llmpi_mpi_" + name + "_" + std::to_string(pid));
  if (world_rank() == 0) {
    fs::remove_all(d);
    fs::create_directories(d);
    const uint64_t key = rng_key(11, "corpus");
    std::vector<uint32_t> toks;
    uint32_t t = 1;
    for (int i = 0; i < 12000; ++i) {
      toks.push_back(t);
      t = rng_uniform(key, uint64_t(i)) < 0.85 ? (t * 5 + 1) % 61 : uint32_t(i % 61);
    }
    write_token_shard((d / "train.bin").string(), toks, 64);
    // Fine-tuning data (objective = "sft"): the same stream cut into documents of 5..16
    // tokens, the loss mask on the second half of each.
    TokenShardWriter w((d / "sft.bin").string(), 2, ShardContent::documents_with_mask);
    for (size_t at = 0, k = 0; at + 16 <= toks.size(); ++k) {
      const size_t len = 5 + size_t(rng_uniform(key, 1000000 + k) * 12);
      std::vector<uint8_t> mask(len, 0);
      std::fill(mask.begin() + long(len / 2), mask.end(), uint8_t(1));
      w.append_document(std::span<const uint32_t>(toks.data() + at, len), mask);
      at += len;
    }
    w.commit();
    // Preference pairs (objective = "dpo"): two adjacent documents of 4..8 tokens sharing a
    // 2-token prompt, the answers in the loss; the chosen one follows the stream.
    TokenShardWriter p((d / "dpo.bin").string(), 2, ShardContent::documents_with_mask);
    for (size_t at = 0, k = 0; at + 24 <= toks.size() && k < 300; ++k) {
      const size_t len = 4 + size_t(rng_uniform(key, 2000000 + k) * 5);
      for (int chosen = 1; chosen >= 0; --chosen) {
        std::vector<uint32_t> doc(toks.begin() + long(at), toks.begin() + long(at + len));
        if (!chosen)
          for (size_t i = 2; i < len; ++i) doc[i] = uint32_t(rng_bits(key, 3000000 + k * 16 + i) % 61);
        std::vector<uint8_t> mask(len, 1);
        mask[0] = mask[1] = 0;
        p.append_document(doc, mask);
      }
      at += len;
    }
    p.commit();
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return d;
}

struct LayoutCase {
  std::string arch = "gpt2";
  int tp = 1, pp = 1, dp = 1, zero = 0;
  int micro = 1;  // micro-batches per dp rank
  bool sp = false;
  int virtual_stages = 1;
  std::string recompute = "none";  // the layout's train.recompute (the reference keeps none)
  int steps = 20;
  int seq_len = 16;  // T, for the layout and the reference (≤ max_seq_len = 16)
  int batch = 2;     // B, sequences per micro-batch, for the layout and the reference
  std::string objective = "lm";  // "sft": sft.bin (documents + loss mask), rows per packing;
                                 // "dpo": dpo.bin (preference pairs), [dpo] beta = 1
  bool packing = true;
  // [lora] rank (0: none): adapters on every module of the arch beside the frozen seeded base;
  // the parameters compared are then the adapters. base_dtype: [lora] base_dtype.
  int lora = 0;
  std::string base_dtype = "auto";
};

inline std::string lora_targets(const std::string& arch) {
  return arch == "llama" ? R"(["q", "k", "v", "o", "gate", "up", "down", "head"])"
                         : R"(["q", "k", "v", "o", "up", "down", "head"])";
}

inline Config case_config(const fs::path& d, const LayoutCase& c, bool reference) {
  std::ostringstream t;
  t << "[model]\narch = \"" << c.arch << "\"\nvocab_size = 64\nn_layer = 4\nn_head = 4\n"
    << (c.arch == "llama" ? "n_kv_head = 2\nd_ff = 64\n" : "") << "d_model = 32\nmax_seq_len = 16\n"
    << "[train]\nsteps = " << c.steps << "\nbatch_size = " << c.batch << "\nseq_len = " << c.seq_len << "\nlr = 3e-3\nmin_lr = 3e-4\n"
    << "warmup_steps = 3\nlog_every = 100\ngrad_clip = 1.0\n"
    << "recompute = \"" << (reference ? std::string("none") : c.recompute) << "\"\n"
    << "objective = \"" << c.objective << "\"\npacking = " << (c.packing ? "true" : "false")
    << "\n[data]\ntrain = \""
    << (d / (c.objective == "lm" ? "train.bin" : c.objective + ".bin")).string()
    << "\"\n" << (c.objective == "dpo" ? "[dpo]\nbeta = 1.0\n" : "") << "[parallel]\n";
  std::ostringstream lora;
  if (c.lora > 0)
    lora << "[lora]\nrank = " << c.lora << "\nalpha = " << 2 * c.lora << "\ntarget_modules = "
         << lora_targets(c.arch) << "\n" << (c.base_dtype != "auto" ? "base_dtype = \"" + c.base_dtype + "\"\n" : "");
  if (reference)
    t << "micro_batches = " << c.micro * c.dp << "\n";
  else
    t << "tp = " << c.tp << "\npp = " << c.pp << "\ndp = " << c.dp << "\nzero_stage = " << c.zero
      << "\nmicro_batches = " << c.micro << "\nsequence_parallel = " << (c.sp ? "true" : "false")
      << "\nvirtual_stages = " << c.virtual_stages << "\n";
  // The reference runs on each rank alone (its own directory); the layout writes one file.
  t << "[run]\ndir = \""
    << (d / (reference ? "ref_" + std::to_string(world_rank()) : std::string("run"))).string()
    << "\"\n" << lora.str();
  return parse_config(t.str(), "layout_case.toml");
}

inline std::string describe(const LayoutCase& c) {
  std::ostringstream s;
  s << c.arch << " tp" << c.tp << " pp" << c.pp << " dp" << c.dp << " zero" << c.zero << " M"
    << c.micro << (c.sp ? " sp" : "") << (c.virtual_stages > 1 ? " interleaved" : "")
    << (c.recompute != "none" ? " recompute=" + c.recompute : "")
    << (c.seq_len != 16 ? " T" + std::to_string(c.seq_len) : "")
    << (c.batch != 2 ? " B" + std::to_string(c.batch) : "")
    << (c.objective != "lm" ? " " + c.objective + (c.packing ? " packed" : " unpacked") : "")
    << (c.lora ? " lora" + std::to_string(c.lora) : "")
    << (c.base_dtype != "auto" ? " base " + c.base_dtype : "");
  return s.str();
}

constexpr double kParamRtol = 1e-5;
// A non-zero gradient element below this fraction of its tensor's largest is rounding
// residue in fp32 (exact zeros, e.g. embedding rows of absent tokens, are exact in any order).
constexpr double kRoundingFloor = 1e-6;

// Per parameter of the reference (full tensors): 1 where the element is rounding-dominated.
using ElementMask = std::map<std::string, std::vector<char>>;

// Marks the rounding-dominated elements of the reference's gradients after one step.
template <class T>
void mark_rounding_dominated_as(const ParamStore& ref, ElementMask& mask) {
  for (const ParamInfo& p : ref.params()) {
    const T* g = ref.grad(p.name).template ptr<T>();
    std::vector<char>& m = mask[p.name];
    m.resize(size_t(p.numel()), 0);
    T big = 0;
    for (int64_t i = 0; i < p.numel(); ++i) big = std::max(big, std::abs(g[i]));
    for (int64_t i = 0; i < p.numel(); ++i)
      if (g[i] != 0 && std::abs(g[i]) <= kRoundingFloor * big) m[size_t(i)] = 1;
  }
}

inline void mark_rounding_dominated(const ParamStore& ref, ElementMask& mask) {
  if (ref.master_dtype() == DType::f64)
    mark_rounding_dominated_as<double>(ref, mask);
  else
    mark_rounding_dominated_as<float>(ref, mask);
}

// Per-tensor comparison of reference elements a[gi] with b[i]; marked elements are held to
// the AdamW drift bound instead of the norm.
struct TensorDiff {
  double num = 0.0, den = 0.0, worst = 0.0, scale = 0.0;
  int64_t marked = 0;
  double marked_worst = 0.0;
  void add(double a, double b, bool rounding_dominated) {
    const double d = a - b;
    scale = std::max(scale, std::abs(a));
    if (rounding_dominated) {
      ++marked;
      marked_worst = std::max(marked_worst, std::abs(d));
      return;
    }
    worst = std::max(worst, std::abs(d));
    num += d * d;
    den += a * a;
  }
};

inline bool close(double a, double b, double rel = 1e-5) {
  return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)) + 1e-12;
}

// One pass of a case: the 1-rank reference trained step by step (its rounding-dominated
// elements marked after every step), then the layout. master: f32, or f64 for the exact pass.
struct CasePass {
  std::unique_ptr<Trainer> ref, lay;
  TrainSummary rs, ls;
  ElementMask mask;
  double drift_bound = 0.0;  // 2·Σ lr: how far two AdamW trajectories can take one element
};

inline CasePass run_pass(const fs::path& d, const LayoutCase& c, Backend& be, DType master) {
  CasePass r;
  std::ostringstream log;
  Config rc = case_config(d, c, true), lc = case_config(d, c, false);
  rc.train.master_dtype = lc.train.master_dtype = master;
  // DPO: every run computes its own reference log-probs (no cache of an earlier pass or case).
  MPI_Barrier(MPI_COMM_WORLD);
  fs::remove(fs::path(rc.run.dir) / "reference_logprobs.h5");
  if (world_rank() == 0) fs::remove(fs::path(lc.run.dir) / "reference_logprobs.h5");
  MPI_Barrier(MPI_COMM_WORLD);
  r.ref = std::make_unique<Trainer>(rc, be, MPI_COMM_SELF, log);
  double lr_sum = 0.0;
  for (int s = 1; s <= c.steps; ++s) {
    const TrainSummary one =
        r.ref->run(RunOptions{.write_model = false, .checkpoints = false, .stop_after = s});
    if (one.steps.size() != 1) throw std::runtime_error("reference step " + std::to_string(s));
    r.rs.steps.push_back(one.steps[0]);
    lr_sum += one.steps[0].lr;
    mark_rounding_dominated(r.ref->params(), r.mask);
  }
  r.drift_bound = 2.0 * lr_sum * 1.01;
  r.lay = std::make_unique<Trainer>(lc, be, MPI_COMM_WORLD, log);
  // f32: every layout writes its model file collectively (ranks of different pipeline stages
  // and tensor-parallel slabs included); it is read back as the plain global model.
  r.ls = r.lay->run(RunOptions{.write_model = master == DType::f32, .checkpoints = false});
  return r;
}

inline void expect_steps_match(const CasePass& r, const LayoutCase& c, double rel) {
  ASSERT_EQ(r.rs.steps.size(), size_t(c.steps));
  ASSERT_EQ(r.ls.steps.size(), size_t(c.steps));
  for (size_t i = 0; i < r.rs.steps.size(); ++i) {
    EXPECT_TRUE(close(r.rs.steps[i].loss, r.ls.steps[i].loss, rel))
        << "step " << i + 1 << " loss " << r.rs.steps[i].loss << " vs " << r.ls.steps[i].loss;
    EXPECT_TRUE(close(r.rs.steps[i].grad_norm, r.ls.steps[i].grad_norm, rel))
        << "step " << i + 1 << " grad norm " << r.rs.steps[i].grad_norm << " vs "
        << r.ls.steps[i].grad_norm;
  }
  // (Adapters beside a random frozen base learn slowly: their gradients are checked in f64 by
  // tests/unit/test_model_gradcheck.cpp instead.)
  if (c.lora > 0) return;
  if (c.objective == "dpo") {  // from log 2, over pairs that change every step: a mean
    double tail = 0;
    for (size_t i = r.ls.steps.size() - 4; i < r.ls.steps.size(); ++i) tail += r.ls.steps[i].loss / 4;
    EXPECT_LT(tail, r.ls.steps.front().loss - 0.1) << "the layout did not learn";
  } else {
    EXPECT_LT(r.ls.steps.back().loss, r.ls.steps.front().loss - 0.3) << "the layout did not learn";
  }
}

// Per tensor of this rank's slabs: the layout's parameters against the reference's elements
// at the slabs' global coordinates.
template <class T>
std::vector<std::pair<std::string, TensorDiff>> param_diffs(const CasePass& r) {
  std::vector<std::pair<std::string, TensorDiff>> out;
  const ParamStore& full = r.ref->params();
  const ParamStore& mine = r.lay->params();
  for (const ParamInfo& p : mine.params()) {
    const T* a = full.master(p.name).template ptr<T>();
    const T* b = mine.master(p.name).template ptr<T>();
    const std::vector<char>& m = r.mask.at(p.name);
    const Shape& g = p.global_shape;
    const int64_t rows = p.local_shape.ndim >= 2 ? p.local_shape[0] : 1;
    const int64_t cols = p.local_shape.numel() / rows;
    const int64_t gcols = g.numel() / (g.ndim >= 2 ? g[0] : 1);
    TensorDiff t;
    for (int64_t row = 0; row < rows; ++row)
      for (int64_t k = 0; k < cols; ++k) {
        const int64_t gi = p.local_shape.ndim >= 2
                               ? (p.local_start[0] + row) * gcols + p.local_start[1] + k
                               : p.local_start[0] + k;
        t.add(double(a[gi]), double(b[row * cols + k]), m[size_t(gi)] != 0);
      }
    out.emplace_back(p.name, t);
  }
  return out;
}

// Checks one tensor's difference at relative tolerance `rel` (‖Δ‖₂/‖p‖₂ over the elements
// that are not rounding-dominated; those within the AdamW drift bound).
inline void expect_tensor_close(const std::string& what, const std::string& name,
                                const TensorDiff& t, double rel, double drift_bound) {
  // The attention key bias has an exactly zero gradient (softmax over keys is invariant to
  // adding q·b_k to every score), so its trajectory is rounding noise that AdamW scales up to
  // the order of lr: it must stay negligible on both runs, not equal.
  if (name.ends_with("attn.k.bias")) {
    EXPECT_LE(t.scale, 1e-4) << what << name;
    EXPECT_LE(std::max(t.worst, t.marked_worst), 2e-4) << what << name;
    return;
  }
  EXPECT_LE(std::sqrt(t.num), rel * std::sqrt(t.den))
      << what << name << ": max |Δ| " << t.worst << " at max |p| " << t.scale;
  EXPECT_LE(t.marked_worst, drift_bound) << what << name << ": rounding-dominated elements";
}

// Runs the reference and the layout, and checks losses, norms and final parameters.
//   fp32 pass: losses and gradient norms within 1e-5 at every step; final parameters within
//     1e-5 per tensor, and the layout's model file likewise.
//   If a rounding-dominated element came out on different sides in the two fp32 runs (|Δ|
//     above 1e-5 of its tensor's largest element), or a tensor's fp32 runs parted by more
//     than 1e-5 (AdamW's per-element scaling amplifies rounding on CPUs whose kernels round
//     otherwise), the fp32 trajectories were separated by rounding, not by the layout: the
//     parameters are then held to 1e-5 in an f64 pass of the same case (master weights,
//     gradients and moments in f64; every step's loss and norm within 1e-9), and the fp32
//     deviation is reported, bounded by kSplitRtol.
constexpr double kSplitRtol = 3e-4;

inline void expect_layout_matches(const fs::path& d, const LayoutCase& c) {
  SCOPED_TRACE(describe(c));
  auto be = make_host_backend();
  const CasePass r = run_pass(d, c, *be, DType::f32);
  expect_steps_match(r, c, 1e-5);
  const auto diffs = param_diffs<float>(r);
  int split = 0;
  for (const auto& [name, t] : diffs) {
    if (name.ends_with("attn.k.bias")) continue;
    if (t.marked_worst > kParamRtol * t.scale) {
      split = 1;
      std::printf("rank %d: %s: rounding-dominated element(s) split the fp32 runs by %.3g\n",
                  world_rank(), name.c_str(), t.marked_worst);
    } else if (std::sqrt(t.num) > kParamRtol * std::sqrt(t.den)) {
      // Small gradients above the rounding floor can still part the fp32 runs: AdamW divides
      // each by its own √v, and which rounding the matrix kernels make depends on the CPU's
      // vector ISA (OpenBLAS picks them at run time) and on the shapes each layout multiplies.
      split = 1;
      std::printf("rank %d: %s: the fp32 runs parted by %.3g relative (rounding)\n",
                  world_rank(), name.c_str(), std::sqrt(t.num / t.den));
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, &split, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  const double rel = split ? kSplitRtol : kParamRtol;
  double worst_rel = 0.0;
  for (const auto& [name, t] : diffs) {
    expect_tensor_close("", name, t, rel, r.drift_bound);
    if (!name.ends_with("attn.k.bias") && t.den > 0)
      worst_rel = std::max(worst_rel, std::sqrt(t.num / t.den));
  }
  int64_t marked = 0, total = 0;
  for (const ParamInfo& p : r.ref->params().params()) {
    if (p.name.ends_with("attn.k.bias")) continue;
    total += p.numel();
    for (char x : r.mask.at(p.name)) marked += x;
  }
  // The mechanism must stay an exception: at most one element in 10^3 may be marked.
  EXPECT_LE(marked * 1000, total) << marked << " of " << total << " elements rounding-dominated";

  // The layout's model file, read serially on rank 0 into the 1-rank model's parameter set
  // (checksums verified), equals the 1-rank run's parameters.
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) {
    const Config rc = case_config(d, c, true);
    const ModelConfig& mc = rc.model;
    ParamStore loaded(*be,
                      c.lora ? adapter_params(mc, rc.lora.spec(), StageRange::full(mc))
                             : transformer_params(mc, StageRange::full(mc)),
                      DType::f32);
    load_model_params(r.ls.model_path, MPI_COMM_NULL, *be, loaded, /*verify=*/true);
    const ParamStore& full = r.ref->params();
    for (const ParamInfo& p : full.params()) {
      const float* a = full.master(p.name).ptr<float>();
      const float* b = loaded.master(p.name).ptr<float>();
      const std::vector<char>& m = r.mask.at(p.name);
      TensorDiff t;
      for (int64_t i = 0; i < p.numel(); ++i) t.add(a[i], b[i], m[size_t(i)] != 0);
      expect_tensor_close("model file: ", p.name, t, rel, r.drift_bound);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (!split) return;

  std::printf("rank %d: %s: fp32 parameters within %.2g (rounding split); f64 pass\n",
              world_rank(), describe(c).c_str(), worst_rel);
  const CasePass x = run_pass(d, c, *be, DType::f64);
  expect_steps_match(x, c, 1e-9);
  double worst64 = 0.0;
  for (const auto& [name, t] : param_diffs<double>(x)) {
    expect_tensor_close("f64: ", name, t, kParamRtol, x.drift_bound);
    if (!name.ends_with("attn.k.bias") && t.den > 0)
      worst64 = std::max(worst64, std::sqrt(t.num / t.den));
  }
  std::printf("rank %d: %s: f64 parameters within %.2g\n", world_rank(), describe(c).c_str(),
              worst64);
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace llmpi::testing
