// Checkpoint resharding on 4 ranks: a known global state (values in closed form of tensor,
// group and global index) is saved under each of five decompositions — row split, column
// split, flat ZeRO ranges that cut rows, a 2-way row split with replicas (owner = false),
// one rank holding everything (a pipeline stage), and tp = 2 column shards each split into
// flat ZeRO ranges over dp = 2 — and every file is loaded under every
// decomposition. Values must equal the closed form on every rank (replicas included), and
// every stored checksum must equal the one of the same state saved by a single rank.
// Also: a 4-rank async save equals the sync one, and collective discovery falls back.
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/checkpoint_async.h"
#include "io/hdf5.h"
#include "io/tensor_file.h"
#include "jobs/checkpoint_dir.h"
#include "../unit/test_checkpoint_util.h"

namespace llmpi {
namespace {

namespace fs = std::filesystem;
using testing::ckpt_specs;
using testing::ckpt_value;
using testing::TensorSpec;

enum class Split { rows, cols, flat, replicas, one_rank, tp_zero };
const Split kSplits[] = {Split::rows,     Split::cols,     Split::flat,
                         Split::replicas, Split::one_rank, Split::tp_zero};
const char* name_of(Split s) {
  switch (s) {
    case Split::rows: return "rows";
    case Split::cols: return "cols";
    case Split::flat: return "flat";
    case Split::replicas: return "replicas";
    case Split::one_rank: return "one_rank";
    case Split::tp_zero: return "tp_zero";
  }
  return "?";
}

int rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// [lo, hi) of n split into `parts` nearly equal pieces (the first ones one larger).
std::pair<int64_t, int64_t> part(int64_t n, int parts, int i) {
  const int64_t base = n / parts, extra = n % parts;
  const int64_t lo = i * base + std::min<int64_t>(i, extra);
  return {lo, lo + base + (i < extra ? 1 : 0)};
}

// This rank's slab of `t` under `split` (data not set).
TensorSlab slab_of(const TensorSpec& t, Split split, int r) {
  TensorSlab s;
  s.name = t.name;
  s.global_shape = t.shape;
  const size_t nd = t.shape.size();
  s.offset.assign(nd, 0);
  s.local_shape = t.shape;
  auto cut = [&](size_t dim, int parts, int i) {
    const auto [lo, hi] = part(t.shape[dim], parts, i);
    s.offset[dim] = lo;
    s.local_shape[dim] = hi - lo;
  };
  switch (split) {
    case Split::rows: cut(0, 4, r); break;
    case Split::cols: cut(nd - 1, 4, r); break;
    case Split::flat: {
      const auto [lo, hi] = part(t.numel(), 4, r);
      s.flat_offset = lo;
      s.flat_count = hi - lo;
      break;
    }
    case Split::replicas:  // ranks 0, 1 own halves; 2, 3 hold replicas of them
      cut(0, 2, r % 2);
      s.owner = r < 2;
      break;
    case Split::one_rank:
      if (r != 3) s.local_shape[0] = 0;
      break;
    case Split::tp_zero: {  // tp = 2 column shards, each flat-split over dp = 2 (ZeRO)
      cut(nd - 1, 2, r % 2);
      int64_t box = 1;
      for (int64_t d : s.local_shape) box *= d;
      const auto [lo, hi] = part(box, 2, r / 2);
      s.flat_offset = lo;
      s.flat_count = hi - lo;
      break;
    }
  }
  return s;
}

// Global row-major index of each local element of a slab, in storage order.
std::vector<int64_t> global_indices(const TensorSlab& s) {
  std::vector<int64_t> out;
  if (s.local_numel() == 0) return out;
  const size_t nd = s.global_shape.size();
  for (const Box& b : slab_boxes(s)) {
    int64_t n = 1;
    for (int64_t c : b.count) n *= c;
    std::vector<int64_t> idx(nd, 0);
    for (int64_t e = 0; e < n; ++e) {
      int64_t g = 0;
      for (size_t d = 0; d < nd; ++d) g = g * s.global_shape[d] + b.start[d] + idx[d];
      out.push_back(g);
      for (int d = int(nd) - 1; d >= 0; --d) {
        if (++idx[d] < b.count[d]) break;
        idx[d] = 0;
      }
    }
  }
  return out;
}

struct RankState {
  std::vector<std::vector<float>> store;
  CheckpointSlabs slabs;
};

// This rank's state under `split`; filled with the closed form, or with -1 for a load.
RankState state_of(Split split, bool fill) {
  RankState st;
  const auto specs = ckpt_specs();
  st.store.reserve(3 * specs.size());
  for (int grp = 0; grp < 3; ++grp)
    for (const TensorSpec& t : specs) {
      TensorSlab s = slab_of(t, split, rank());
      std::vector<float> v(size_t(s.local_numel()), -1.0f);
      if (fill) {
        const auto g = global_indices(s);
        for (size_t i = 0; i < g.size(); ++i) v[i] = ckpt_value(t.name, grp, g[i]);
      }
      st.store.push_back(std::move(v));
      s.data = st.store.back().data();
      (grp == 0 ? st.slabs.params : grp == 1 ? st.slabs.m : st.slabs.v).push_back(s);
    }
  return st;
}

void expect_closed_form(const RankState& st, const std::string& what) {
  const std::vector<TensorSlab>* groups[3] = {&st.slabs.params, &st.slabs.m, &st.slabs.v};
  for (int grp = 0; grp < 3; ++grp)
    for (const TensorSlab& s : *groups[grp]) {
      const auto g = global_indices(s);
      for (size_t i = 0; i < g.size(); ++i)
        ASSERT_EQ(s.data[i], ckpt_value(s.name, grp, g[i]))
            << what << ": rank " << rank() << " " << s.name << " group " << grp << " @" << g[i];
    }
}

std::vector<uint64_t> stored_checksums(const std::string& path) {
  std::vector<uint64_t> out;
  h5::Id f = h5::open_file(path, MPI_COMM_NULL);
  for (const char* g : {"params", "optimizer/m", "optimizer/v"}) {
    h5::Id grp = h5::open_group(f, g, path);
    for (const TensorEntry& e : list_tensors(grp, path)) out.push_back(e.stored_checksum);
  }
  return out;
}

fs::path shared_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("llmpi_ckpt_mpi_" + name);
  int pid = rank() == 0 ? int(::getpid()) : 0;
  MPI_Bcast(&pid, 1, MPI_INT, 0, MPI_COMM_WORLD);
  d += "_" + std::to_string(pid);
  if (rank() == 0) {
    fs::remove_all(d);
    fs::create_directories(d);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return d;
}

}  // namespace

TEST(CheckpointReshard, EveryDecompositionLoadsEveryOther) {
  const fs::path dir = shared_dir("reshard");
  const CheckpointMeta meta = testing::ckpt_meta(30);
  // Reference: the whole state saved by one rank alone.
  const std::string ref = (dir / "single.h5").string();
  if (rank() == 0) {
    testing::WholeState w = testing::whole_state();
    save_checkpoint(ref, MPI_COMM_NULL, w.slabs, meta);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const std::vector<uint64_t> ref_sums = stored_checksums(ref);
  for (Split save : kSplits) {
    const std::string path = (dir / (std::string(name_of(save)) + ".h5")).string();
    RankState st = state_of(save, true);
    save_checkpoint(path, MPI_COMM_WORLD, st.slabs, meta);
    EXPECT_EQ(verify_checkpoint(path, MPI_COMM_WORLD), "") << name_of(save);
    EXPECT_EQ(stored_checksums(path), ref_sums) << "saved as " << name_of(save);
    for (Split load : kSplits) {
      RankState got = state_of(load, false);
      const CheckpointMeta m = load_checkpoint(path, MPI_COMM_WORLD, got.slabs);
      EXPECT_EQ(m.step, 30);
      EXPECT_EQ(m.data.step_samples, meta.data.step_samples);
      expect_closed_form(got, std::string("saved as ") + name_of(save) + ", loaded as " +
                                  name_of(load));
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) fs::remove_all(dir);
}

TEST(CheckpointReshard, AsyncOnFourRanksEqualsSync) {
  const fs::path dir = shared_dir("async");
  int level = 0;
  MPI_Query_thread(&level);
  RankState st = state_of(Split::flat, true);
  const CheckpointMeta meta = testing::ckpt_meta(8);
  const std::string a = (dir / "sync.h5").string(), b = (dir / "async.h5").string();
  save_checkpoint(a, MPI_COMM_WORLD, st.slabs, meta);
  {
    AsyncCheckpointer saver(MPI_COMM_WORLD, level);
    EXPECT_TRUE(saver.is_async());
    saver.save(b, st.slabs, meta);
    // A training collective on the caller's communicator while the save runs.
    int one = 1, sum = 0;
    MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    EXPECT_EQ(sum, 4);
    for (auto& v : st.store) std::fill(v.begin(), v.end(), 0.0f);
    saver.wait();
  }
  EXPECT_EQ(stored_checksums(a), stored_checksums(b));
  RankState got = state_of(Split::rows, false);
  load_checkpoint(b, MPI_COMM_WORLD, got.slabs);
  expect_closed_form(got, "async");
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) fs::remove_all(dir);
}

TEST(CheckpointReshard, CollectiveDiscoveryFallsBack) {
  const fs::path run = shared_dir("discovery");
  if (rank() == 0) fs::create_directories(checkpoints_dir(run.string()));
  MPI_Barrier(MPI_COMM_WORLD);
  RankState st = state_of(Split::cols, true);
  for (int64_t step : {5, 10})
    save_checkpoint(checkpoint_path(run.string(), step), MPI_COMM_WORLD, st.slabs,
                    testing::ckpt_meta(step));
  if (rank() == 0) fs::resize_file(checkpoint_path(run.string(), 10), 4000);  // killed write
  MPI_Barrier(MPI_COMM_WORLD);
  const Discovery d = find_latest_valid(run.string(), MPI_COMM_WORLD);
  ASSERT_TRUE(d.found.has_value());
  EXPECT_EQ(d.found->step, 5);
  ASSERT_EQ(d.rejected.size(), 1u);
  EXPECT_NE(d.rejected[0].find("truncated"), std::string::npos) << d.rejected[0];
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank() == 0) fs::remove_all(run);
}

}  // namespace llmpi
