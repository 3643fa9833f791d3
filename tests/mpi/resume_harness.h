#pragma once
// Resume harness for the multi-rank checkpoint tests (tests/mpi/resume_*.N.cpp), on
// train_equivalence.h's corpus and shapes (Llama: V=64, C=32, 4 heads, 2 kv heads, 4 layers,
// T=16), with a global batch of G = B·M·dp = 16 samples kept equal across layouts (the data
// order continues only under the same G).
//   bitwise: 2K steps straight vs K steps, a new trainer resuming from run.dir, K steps on
//     the same layout → EXPECT_EQ on every loss, gradient norm and parameter element.
//   reshard: the source layout trains 2K steps straight (checkpoints at K and 2K); a target
//     layout resumes from the source's step-K file and trains K steps. Losses match the
//     straight run within 1e-5, its step-2K checkpoint's parameters and moments (read as
//     plain global tensors) match per tensor within the matrix tolerance, and its data
//     mapping (steps K+1..2K and their sample indices) equals the straight run's exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "io/checkpoint.h"
#include "jobs/checkpoint_dir.h"
#include "model/param_layout.h"
#include "train_equivalence.h"

namespace llmpi::testing {

struct ResumeLayout {
  int tp = 1, pp = 1, dp = 1, zero = 0;
  int virtual_stages = 1;
  bool self = false;  // one rank on MPI_COMM_SELF (every rank runs its own copy)
  int micro() const { return 8 / dp; }  // B = 2: G = 2 · micro · dp = 16
  std::string name() const {
    if (self) return "self";
    return "tp" + std::to_string(tp) + "pp" + std::to_string(pp) + "dp" + std::to_string(dp) +
           "z" + std::to_string(zero) + (virtual_stages > 1 ? "i" : "");
  }
};

inline constexpr int kHalf = 4;  // K: steps before and after the save

inline Config resume_config(const fs::path& d, const ResumeLayout& l, const std::string& run) {
  std::ostringstream t;
  t << "[model]\narch = \"llama\"\nvocab_size = 64\nn_layer = 4\nn_head = 4\nn_kv_head = 2\n"
    << "d_ff = 64\nd_model = 32\nmax_seq_len = 16\n"
    << "[train]\nsteps = " << 2 * kHalf << "\nbatch_size = 2\nseq_len = 16\nlr = 3e-3\n"
    << "min_lr = 3e-4\nwarmup_steps = 3\nlog_every = 100\ngrad_clip = 1.0\n"
    << "[data]\ntrain = \"" << (d / "train.bin").string() << "\"\n[parallel]\n"
    << "micro_batches = " << l.micro() << "\n";
  if (!l.self)
    t << "tp = " << l.tp << "\npp = " << l.pp << "\ndp = " << l.dp << "\nzero_stage = " << l.zero
      << "\nvirtual_stages = " << l.virtual_stages << "\n";
  t << "[checkpoint]\nevery = " << kHalf << "\nkeep_last = 4\n[run]\ndir = \""
    << (d / (l.self ? run + "_" + std::to_string(world_rank()) : run)).string() << "\"\n";
  return parse_config(t.str(), "resume_case.toml");
}

inline MPI_Comm comm_of(const ResumeLayout& l) { return l.self ? MPI_COMM_SELF : MPI_COMM_WORLD; }

inline RunOptions ckpt_only(int64_t stop_after = -1) {
  RunOptions o;
  o.write_model = false;
  o.stop_after = stop_after;
  return o;
}

inline std::vector<float> local_params(Trainer& t) {
  const Tensor& m = t.params().master();
  return std::vector<float>(m.ptr<float>(), m.ptr<float>() + m.numel());
}

inline void expect_bitwise_resume(const fs::path& d, const ResumeLayout& l) {
  SCOPED_TRACE("bitwise resume on " + l.name());
  auto be = make_host_backend();
  std::ostringstream log;
  Trainer straight(resume_config(d, l, "straight_" + l.name()), *be, comm_of(l), log);
  const TrainSummary full = straight.run(ckpt_only());
  TrainSummary first;
  {
    Trainer a(resume_config(d, l, "split_" + l.name()), *be, comm_of(l), log);
    first = a.run(ckpt_only(kHalf));
  }
  Trainer b(resume_config(d, l, "split_" + l.name()), *be, comm_of(l), log);
  const std::optional<ResumePoint> p = b.resume_latest();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step, kHalf);
  const TrainSummary second = b.run(ckpt_only());
  ASSERT_EQ(full.steps.size(), size_t(2 * kHalf));
  ASSERT_EQ(first.steps.size(), size_t(kHalf));
  ASSERT_EQ(second.steps.size(), size_t(kHalf));
  for (size_t i = 0; i < full.steps.size(); ++i) {
    const StepRecord& r = i < size_t(kHalf) ? first.steps[i] : second.steps[i - kHalf];
    EXPECT_EQ(r.step, full.steps[i].step);
    EXPECT_EQ(r.loss, full.steps[i].loss) << "step " << i + 1;
    EXPECT_EQ(r.grad_norm, full.steps[i].grad_norm) << "step " << i + 1;
  }
  const std::vector<float> w0 = local_params(straight), w1 = local_params(b);
  ASSERT_EQ(w0.size(), w1.size());
  size_t differ = 0;
  for (size_t i = 0; i < w0.size(); ++i) differ += w0[i] != w1[i];
  EXPECT_EQ(differ, 0u) << "of " << w0.size() << " parameter elements";
  MPI_Barrier(MPI_COMM_WORLD);
}

// Every tensor of a checkpoint group read whole on this process alone.
struct GlobalState {
  std::vector<std::vector<float>> data;
  CheckpointSlabs slabs;
  CheckpointMeta meta;
};

inline GlobalState read_global(const std::string& path) {
  GlobalState g;
  const ModelConfig mc = resume_config("/", ResumeLayout{.self = true}, "x").model;
  const std::vector<ParamInfo> ps = transformer_params(mc, StageRange::full(mc));
  g.data.reserve(3 * ps.size());
  for (int grp = 0; grp < 3; ++grp)
    for (const ParamInfo& p : ps) {
      g.data.emplace_back(size_t(p.global_shape.numel()));
      TensorSlab s;
      s.name = p.name;
      for (int k = 0; k < p.global_shape.ndim; ++k) s.global_shape.push_back(p.global_shape[k]);
      s.data = g.data.back().data();
      (grp == 0 ? g.slabs.params : grp == 1 ? g.slabs.m : g.slabs.v).push_back(s);
    }
  g.meta = load_checkpoint(path, MPI_COMM_NULL, g.slabs);
  return g;
}

// Per-tensor ‖a − b‖₂ ≤ rtol ‖a‖₂ over one slab group.
inline void expect_slabs_close(const std::vector<TensorSlab>& a, const std::vector<TensorSlab>& b,
                               const std::string& group, double rtol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t t = 0; t < a.size(); ++t) {
    double num = 0, den = 0;
    const int64_t n = a[t].global_numel();
    for (int64_t i = 0; i < n; ++i) {
      const double x = a[t].data[i], y = b[t].data[i];
      num += (x - y) * (x - y);
      den += x * x;
    }
    EXPECT_LE(std::sqrt(num), rtol * std::sqrt(den) + 1e-12) << group << "/" << a[t].name;
  }
}

// `source` trains 2K steps straight (once per directory); `target` resumes from its
// step-K checkpoint and continues K steps.
inline void expect_reshard(const fs::path& d, const ResumeLayout& source, const ResumeLayout& target) {
  SCOPED_TRACE("reshard " + source.name() + " -> " + target.name());
  auto be = make_host_backend();
  std::ostringstream log;
  const std::string src_run = "source_" + source.name();
  const std::string src_dir = (d / src_run).string();
  static std::map<std::string, TrainSummary> trained;  // one straight run per source dir
  if (!trained.count(src_dir)) {
    Trainer s(resume_config(d, source, src_run), *be, comm_of(source), log);
    trained[src_dir] = s.run(ckpt_only());
  }
  const TrainSummary& full = trained.at(src_dir);
  const std::string tgt_run = "target_" + source.name() + "_" + target.name();
  Trainer t(resume_config(d, target, tgt_run), *be, comm_of(target), log);
  const ResumePoint p = t.resume(checkpoint_path(src_dir, kHalf));
  EXPECT_EQ(p.step, kHalf);
  const TrainSummary cont = t.run(ckpt_only());
  ASSERT_EQ(cont.steps.size(), size_t(kHalf));
  for (size_t i = 0; i < cont.steps.size(); ++i) {
    const StepRecord& ref = full.steps[size_t(kHalf) + i];
    EXPECT_EQ(cont.steps[i].step, ref.step);
    EXPECT_TRUE(close(cont.steps[i].loss, ref.loss))
        << "step " << ref.step << " loss " << cont.steps[i].loss << " vs " << ref.loss;
    EXPECT_TRUE(close(cont.steps[i].grad_norm, ref.grad_norm))
        << "step " << ref.step << " grad norm " << cont.steps[i].grad_norm << " vs " << ref.grad_norm;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  // The final checkpoints as plain global tensors (rank 0; each self-run rank its own).
  if (target.self || world_rank() == 0) {
    const GlobalState a = read_global(checkpoint_path(src_dir, 2 * kHalf));
    const std::string tgt_dir =
        resume_config(d, target, tgt_run).run.dir;  // the per-rank directory for self runs
    const GlobalState b = read_global(checkpoint_path(tgt_dir, 2 * kHalf));
    expect_slabs_close(a.slabs.params, b.slabs.params, "params", 1e-5);
    expect_slabs_close(a.slabs.m, b.slabs.m, "m", 1e-4);
    expect_slabs_close(a.slabs.v, b.slabs.v, "v", 1e-4);
    EXPECT_EQ(b.meta.optimizer.step_count, 2 * kHalf);
    EXPECT_EQ(b.meta.data.samples_consumed, a.meta.data.samples_consumed);
    EXPECT_EQ(b.meta.data.steps, a.meta.data.steps);  // K+1 .. 2K
    EXPECT_EQ(b.meta.data.step_samples, a.meta.data.step_samples);
    ASSERT_EQ(b.meta.data.steps.size(), size_t(kHalf));
    EXPECT_EQ(b.meta.data.steps.front(), kHalf + 1);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace llmpi::testing
