// Async saves: the file written by the background thread from a snapshot is identical to a
// synchronous save (every dataset, every checksum, every attribute but the wall-clock time),
// the caller's buffers may change right after save() returns, stall statistics are kept,
// and a failed background save is reported by wait().
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/checkpoint_async.h"
#include "io/hdf5.h"
#include "io/tensor_file.h"
#include "test_checkpoint_util.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

int thread_level() {
  int level = 0;
  MPI_Query_thread(&level);
  return level;
}

// Every dataset's values and checksum attribute, and the metadata, of both files agree.
void expect_same_content(const std::string& a, const std::string& b) {
  const CheckpointMeta ma = read_checkpoint_meta(a), mb = read_checkpoint_meta(b);
  EXPECT_EQ(ma.step, mb.step);
  EXPECT_EQ(ma.tokens_seen, mb.tokens_seen);
  EXPECT_EQ(ma.config_toml, mb.config_toml);
  EXPECT_EQ(ma.layout, mb.layout);
  EXPECT_EQ(ma.optimizer.step_count, mb.optimizer.step_count);
  EXPECT_EQ(ma.data.steps, mb.data.steps);
  EXPECT_EQ(ma.data.step_samples, mb.data.step_samples);
  h5::Id fa = h5::open_file(a, MPI_COMM_NULL), fb = h5::open_file(b, MPI_COMM_NULL);
  for (const char* g : {"params", "optimizer/m", "optimizer/v"}) {
    h5::Id ga = h5::open_group(fa, g, a), gb = h5::open_group(fb, g, b);
    const auto ea = list_tensors(ga, a), eb = list_tensors(gb, b);
    ASSERT_EQ(ea.size(), eb.size());
    for (size_t i = 0; i < ea.size(); ++i) {
      EXPECT_EQ(ea[i].name, eb[i].name);
      EXPECT_EQ(ea[i].shape, eb[i].shape);
      EXPECT_EQ(ea[i].stored_checksum, eb[i].stored_checksum) << g << "/" << ea[i].name;
      EXPECT_EQ(compute_checksum(ga, ea[i].name, a), compute_checksum(gb, eb[i].name, b));
    }
  }
}

}  // namespace

TEST(CheckpointAsync, AsyncSaveEqualsSyncSave) {
  const fs::path dir = ckpt_temp_dir("async");
  WholeState w = whole_state();
  const CheckpointMeta meta = ckpt_meta(20);
  const std::string sync_path = (dir / "sync.h5").string(), async_path = (dir / "async.h5").string();
  save_checkpoint(sync_path, MPI_COMM_WORLD, w.slabs, meta);

  AsyncCheckpointer saver(MPI_COMM_WORLD, thread_level());
  EXPECT_TRUE(saver.is_async()) << "MPI_THREAD_MULTIPLE was not granted";
  bool done = false;
  saver.save(async_path, w.slabs, meta, [&] { done = true; });
  // Training continues: the live buffers change while the snapshot is being written.
  for (auto& v : w.store) std::fill(v.begin(), v.end(), 42.0f);
  saver.wait();
  EXPECT_TRUE(done);
  EXPECT_FALSE(saver.busy());
  EXPECT_EQ(verify_checkpoint(async_path, MPI_COMM_NULL), "");
  expect_same_content(sync_path, async_path);
  const AsyncSaveStats st = saver.stats();
  EXPECT_EQ(st.saves, 1);
  EXPECT_GE(st.last_stall_s, 0.0);
  EXPECT_GT(st.last_write_s, 0.0);
  fs::remove_all(dir);
}

TEST(CheckpointAsync, SynchronousFallbackWritesTheSameFile) {
  const fs::path dir = ckpt_temp_dir("async_sync");
  WholeState w = whole_state();
  const CheckpointMeta meta = ckpt_meta(4);
  std::string warned;
  // A thread level below MULTIPLE: saves are synchronous, with a warning.
  AsyncCheckpointer saver(MPI_COMM_WORLD, MPI_THREAD_SERIALIZED, true,
                          [&](const std::string& m) { warned = m; });
  EXPECT_FALSE(saver.is_async());
  EXPECT_NE(warned.find("synchronously"), std::string::npos) << warned;
  saver.save((dir / "a.h5").string(), w.slabs, meta);
  EXPECT_FALSE(saver.busy());
  save_checkpoint((dir / "b.h5").string(), MPI_COMM_NULL, w.slabs, meta);
  expect_same_content((dir / "a.h5").string(), (dir / "b.h5").string());
  fs::remove_all(dir);
}

TEST(CheckpointAsync, BackgroundFailureIsReportedByWait) {
  const fs::path dir = ckpt_temp_dir("async_fail");
  WholeState w = whole_state();
  AsyncCheckpointer saver(MPI_COMM_WORLD, thread_level());
  saver.save((dir / "no_such_dir" / "c.h5").string(), w.slabs, ckpt_meta(1));
  EXPECT_THROW(saver.wait(), UserError);
  // The saver is usable again afterwards.
  saver.save((dir / "c.h5").string(), w.slabs, ckpt_meta(1));
  EXPECT_NO_THROW(saver.wait());
  EXPECT_EQ(verify_checkpoint((dir / "c.h5").string(), MPI_COMM_NULL), "");
  fs::remove_all(dir);
}
