// Checkpoints on one rank: flat-range box decomposition (exhaustive on small shapes),
// save → load round trip of params, moments and metadata (incl. the data mapping), loading
// under another decomposition (flat ZeRO-style ranges), atomic write (no .tmp left, a
// leftover .tmp is never a candidate), integrity (flipped byte, truncation, missing header),
// and discovery with fallback from corrupt, truncated and partial files.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/checkpoint_integrity.h"
#include "io/hdf5.h"
#include "jobs/checkpoint_dir.h"
#include "test_checkpoint_util.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

// Flips one byte of a file in place.
void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(std::streamoff(offset));
  char c = 0;
  f.read(&c, 1);
  c = char(c ^ 0x5A);
  f.seekp(std::streamoff(offset));
  f.write(&c, 1);
}

// Loads `path` into fresh whole-tensor buffers and checks every value against the closed form.
void expect_loads_exactly(const std::string& path) {
  WholeState w = whole_state();
  for (auto& v : w.store) std::fill(v.begin(), v.end(), -7.0f);
  load_checkpoint(path, MPI_COMM_NULL, w.slabs);
  const auto specs = ckpt_specs();
  for (size_t k = 0; k < w.store.size(); ++k) {
    const TensorSpec& t = specs[k % specs.size()];
    for (int64_t i = 0; i < t.numel(); ++i)
      ASSERT_EQ(w.store[k][size_t(i)], ckpt_value(t.name, int(k / specs.size()), i))
          << t.name << " group " << k / specs.size() << " index " << i;
  }
}

}  // namespace

TEST(CheckpointBoxes, FlatRangesBecomeFewDisjointBoxesInRowMajorOrder) {
  const std::vector<std::vector<int64_t>> shapes = {{7}, {4, 5}, {3, 4, 5}, {2, 3, 2, 3}};
  for (const auto& shape : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<int64_t> stride(shape.size(), 1);
    for (int i = int(shape.size()) - 2; i >= 0; --i) stride[i] = stride[i + 1] * shape[i + 1];
    for (int64_t begin = 0; begin <= n; ++begin)
      for (int64_t count = 0; begin + count <= n; ++count) {
        const auto boxes = flat_range_boxes(shape, begin, count);
        ASSERT_LE(boxes.size(), 2 * (shape.size() - 1) + 1);
        // Enumerate the boxes' elements in order: they must be exactly begin, begin+1, ...
        int64_t next = begin;
        for (const Box& b : boxes) {
          ASSERT_EQ(b.start.size(), shape.size());
          std::vector<int64_t> idx(shape.size(), 0);
          int64_t box_n = 1;
          for (int64_t c : b.count) box_n *= c;
          ASSERT_GT(box_n, 0);
          for (int64_t e = 0; e < box_n; ++e) {
            int64_t g = 0;
            for (size_t d = 0; d < shape.size(); ++d) {
              ASSERT_LE(b.start[d] + b.count[d], shape[d]);
              g += (b.start[d] + idx[d]) * stride[d];
            }
            ASSERT_EQ(g, next) << "shape rank " << shape.size() << " range " << begin << "+"
                               << count;
            ++next;
            for (int d = int(shape.size()) - 1; d >= 0; --d) {
              if (++idx[d] < b.count[d]) break;
              idx[d] = 0;
            }
          }
        }
        ASSERT_EQ(next, begin + count);
      }
  }
  // A matrix range that cuts two rows is exactly: partial first row, full rows, partial last.
  const auto b = flat_range_boxes({4, 5}, 3, 12);  // [3, 15): row 0 cols 3-4, rows 1-2, none
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].start, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(b[1].count, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(flat_range_boxes({4, 5}, 3, 14).size(), 3u);
}

TEST(Checkpoint, RoundTripValuesMomentsAndMetadata) {
  const fs::path dir = ckpt_temp_dir("roundtrip");
  const std::string path = (dir / "step_00000012.h5").string();
  WholeState w = whole_state();
  const CheckpointMeta meta = ckpt_meta(12);
  save_checkpoint(path, MPI_COMM_NULL, w.slabs, meta);
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(verify_checkpoint(path, MPI_COMM_NULL), "");

  const CheckpointMeta got = read_checkpoint_meta(path);
  EXPECT_EQ(got.step, 12);
  EXPECT_EQ(got.tokens_seen, meta.tokens_seen);
  EXPECT_EQ(got.config_toml, meta.config_toml);
  EXPECT_EQ(got.layout, meta.layout);
  EXPECT_EQ(got.optimizer.step_count, 12);
  EXPECT_EQ(got.optimizer.beta2, 0.95);
  EXPECT_EQ(got.optimizer.weight_decay, 0.1);
  EXPECT_EQ(got.data.seed, 1234u);
  EXPECT_EQ(got.data.samples_consumed, 48);
  EXPECT_EQ(got.data.global_batch, 4);
  EXPECT_EQ(got.data.steps, (std::vector<int64_t>{10, 11, 12}));
  EXPECT_EQ(got.data.step_samples, meta.data.step_samples);
  EXPECT_EQ(got.format_version, kFormatVersion);
  EXPECT_GT(got.created_unix, 1.6e9);
  expect_loads_exactly(path);
  fs::remove_all(dir);
}

TEST(Checkpoint, LoadsUnderFlatRangeDecompositionOnOneRank) {
  // One rank reading a flat range per tensor that starts mid-row and is the whole tensor
  // only for the owner check: read [0, n) as a flat range and compare with the boxes.
  const fs::path dir = ckpt_temp_dir("flat");
  const std::string path = (dir / "c.h5").string();
  WholeState w = whole_state();
  save_checkpoint(path, MPI_COMM_NULL, w.slabs, ckpt_meta(3));
  h5::Id file = h5::open_file(path, MPI_COMM_NULL);
  h5::Id params = h5::open_group(file, "params", path);
  for (const TensorSpec& t : ckpt_specs()) {
    for (int64_t begin : {int64_t(0), int64_t(1), t.numel() / 2 + 1}) {
      const int64_t count = t.numel() - begin - (begin ? 1 : 0);
      std::vector<float> buf(size_t(count), -1.0f);
      TensorSlab s;
      s.name = t.name;
      s.global_shape = t.shape;
      s.flat_offset = begin;
      s.flat_count = count;
      s.data = buf.data();
      std::vector<TensorSlab> one{s};
      read_tensors(params, MPI_COMM_NULL, one, path, /*verify=*/false);
      for (int64_t i = 0; i < count; ++i)
        ASSERT_EQ(buf[size_t(i)], ckpt_value(t.name, 0, begin + i)) << t.name << " @" << begin;
    }
  }
  fs::remove_all(dir);
}

TEST(Checkpoint, ModelFileIsNotACheckpointAndNamesAreChecked) {
  const fs::path dir = ckpt_temp_dir("names");
  const std::string path = (dir / "c.h5").string();
  WholeState w = whole_state();
  save_checkpoint(path, MPI_COMM_NULL, w.slabs, ckpt_meta(5));
  // Loading a tensor that the file does not hold, or with another shape, names it.
  WholeState other = whole_state();
  other.slabs.params[1].global_shape = {8};
  try {
    load_checkpoint(path, MPI_COMM_NULL, other.slabs);
    FAIL() << "a shape mismatch was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("final_norm.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("has shape [7]"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Checkpoint, IntegrityRejectsFlippedByteTruncationAndMissingHeader) {
  const fs::path dir = ckpt_temp_dir("integrity");
  const std::string path = (dir / "c.h5").string();
  WholeState w = whole_state();
  save_checkpoint(path, MPI_COMM_NULL, w.slabs, ckpt_meta(5));
  const uint64_t size = fs::file_size(path);

  const std::string flipped = (dir / "flipped.h5").string();
  fs::copy_file(path, flipped);
  flip_byte(flipped, size - 9);  // somewhere in the HDF5 payload
  EXPECT_NE(verify_checkpoint(flipped, MPI_COMM_NULL).find("digest"), std::string::npos);
  EXPECT_THROW(load_checkpoint(flipped, MPI_COMM_NULL, w.slabs), UserError);

  const std::string cut = (dir / "cut.h5").string();
  fs::copy_file(path, cut);
  fs::resize_file(cut, size / 2);
  EXPECT_NE(verify_checkpoint(cut, MPI_COMM_NULL).find("truncated"), std::string::npos);
  try {
    read_checkpoint_meta(cut);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(cut), std::string::npos) << e.what();
  }

  // A partial file: an HDF5 file whose header was never stamped (a crash before the stamp).
  const std::string partial = (dir / "partial.h5").string();
  { h5::Id f = h5::create_file(partial, MPI_COMM_NULL, kIntegrityBlock); }
  EXPECT_NE(verify_checkpoint(partial, MPI_COMM_NULL).find("no llmpi checkpoint header"),
            std::string::npos);
  EXPECT_NE(verify_checkpoint((dir / "missing.h5").string(), MPI_COMM_NULL).find("cannot be opened"),
            std::string::npos);
  // A directory (--resume DIR) was called "truncated: 4096 bytes"; a FIFO blocked open() for
  // ever, deaf to the stop signal.
  const fs::path sub = dir / "step_00000009.h5";
  fs::create_directories(sub);
  EXPECT_NE(verify_checkpoint(sub.string(), MPI_COMM_NULL).find("is a directory; expected a checkpoint file"),
            std::string::npos);
  const std::string fifo = (dir / "fifo.h5").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(verify_checkpoint(fifo, MPI_COMM_NULL).find("is not a regular file"), std::string::npos);
  // The untouched original still verifies and loads.
  EXPECT_EQ(verify_checkpoint(path, MPI_COMM_NULL), "");
  expect_loads_exactly(path);
  fs::remove_all(dir);
}

TEST(Checkpoint, TensorChecksumCatchesDataThatDiffersFromTheWriter) {
  // Rewrite one value through HDF5 and re-stamp the integrity header: the file is intact as
  // bytes but its data no longer matches the checksum the writer computed from memory.
  const fs::path dir = ckpt_temp_dir("checksum");
  const std::string path = (dir / "c.h5").string();
  WholeState w = whole_state();
  save_checkpoint(path, MPI_COMM_NULL, w.slabs, ckpt_meta(5));
  {
    h5::Id f = h5::open_file(path, MPI_COMM_NULL, /*writable=*/true);
    h5::Id d(H5Dopen2(f, "optimizer/v/layers.0.w", H5P_DEFAULT), H5Dclose);
    ASSERT_TRUE(d.valid());
    const float x = 3.0f;
    const hsize_t at[1][3] = {{1, 2, 3}};
    h5::Id fs_(H5Dget_space(d), H5Sclose);
    H5Sselect_elements(fs_, H5S_SELECT_SET, 1, &at[0][0]);
    const hsize_t one = 1;
    h5::Id ms(H5Screate_simple(1, &one, nullptr), H5Sclose);
    ASSERT_GE(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs_, H5P_DEFAULT, &x), 0);
  }
  stamp_integrity(path, MPI_COMM_NULL);
  const std::string why = verify_checkpoint(path, MPI_COMM_NULL);
  EXPECT_NE(why.find("optimizer/v/layers.0.w fails its checksum"), std::string::npos) << why;
  EXPECT_EQ(verify_checkpoint(path, MPI_COMM_NULL, /*tensors=*/false), "");
  try {
    load_checkpoint(path, MPI_COMM_NULL, w.slabs);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.w' fails its checksum"), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

// The optimizer state and data mapping a resume continues with, edited in h5py (the integrity
// header re-stamped, so HDF5 parses the edit): out-of-range values are refused by name. A
// step_count of -6 reached AdamW as an internal error ("step -6 is not 1-based"), a NaN beta1
// trained on NaN, a negative sample index was recorded as consumed.
TEST(Checkpoint, OptimizerStateAndDataMappingOutOfRangeAreRefused) {
  const fs::path dir = ckpt_temp_dir("opt_range");
  const std::string good = (dir / "good.h5").string();
  WholeState w = whole_state();
  save_checkpoint(good, MPI_COMM_NULL, w.slabs, ckpt_meta(5));
  EXPECT_EQ(read_checkpoint_meta(good).optimizer.step_count, 5);
  struct Edit {
    const char* group;
    const char* attr;
    double value;
    bool integer;
    std::string want;
  };
  const std::vector<Edit> edits = {
      {"optimizer", "step_count", -6, true, "/optimizer attribute 'step_count' = -6 is outside 0..5"},
      {"optimizer", "step_count", 6, true, "/optimizer attribute 'step_count' = 6 is outside 0..5"},
      {"optimizer", "beta1", std::nan(""), false, "/optimizer attribute 'beta1' = nan is out of range"},
      {"optimizer", "beta2", 1.0, false, "/optimizer attribute 'beta2' = 1 is out of range"},
      {"optimizer", "eps", -1.0, false, "/optimizer attribute 'eps' = -1 is out of range"},
      {"optimizer", "weight_decay", INFINITY, false, "/optimizer attribute 'weight_decay' = inf is out of range"},
  };
  int k = 0;
  for (const Edit& e : edits) {
    const std::string path = (dir / ("bad" + std::to_string(k++) + ".h5")).string();
    fs::copy_file(good, path);
    {
      h5::Id f = h5::open_file(path, MPI_COMM_NULL, /*writable=*/true);
      h5::Id g = h5::open_group(f, e.group, path);
      if (e.integer)
        h5::write_attr(g, e.attr, int64_t(e.value), path);
      else
        h5::write_attr(g, e.attr, e.value, path);
    }
    stamp_integrity(path, MPI_COMM_NULL);
    try {
      read_checkpoint_meta(path);
      ADD_FAILURE() << e.attr << " = " << e.value << " accepted";
    } catch (const UserError& x) {
      EXPECT_NE(std::string(x.what()).find(path + ": " + e.want), std::string::npos) << x.what();
    }
    EXPECT_NE(verify_checkpoint(path, MPI_COMM_NULL, false).find(e.want), std::string::npos);
    EXPECT_THROW(load_checkpoint(path, MPI_COMM_NULL, w.slabs), UserError);
  }
  // A negative sample index in the data mapping, a step outside 1..step.
  for (const char* what : {"step_samples", "steps"}) {
    const std::string path = (dir / (std::string(what) + ".h5")).string();
    fs::copy_file(good, path);
    {
      h5::Id f = h5::open_file(path, MPI_COMM_NULL, /*writable=*/true);
      h5::Id d(H5Dopen2(f, (std::string("data/") + what).c_str(), H5P_DEFAULT), H5Dclose);
      ASSERT_TRUE(d.valid());
      const int64_t x = std::string(what) == "steps" ? 99 : -3;
      const hsize_t at[2] = {0, 0};
      h5::Id sel(H5Dget_space(d), H5Sclose);
      H5Sselect_elements(sel, H5S_SELECT_SET, 1, at);
      const hsize_t one = 1;
      h5::Id ms(H5Screate_simple(1, &one, nullptr), H5Sclose);
      ASSERT_GE(H5Dwrite(d, H5T_NATIVE_INT64, ms, sel, H5P_DEFAULT, &x), 0);
    }
    stamp_integrity(path, MPI_COMM_NULL);
    const std::string why = verify_checkpoint(path, MPI_COMM_NULL, false);
    EXPECT_NE(why.find(std::string(what) == "steps" ? "data/steps holds step 99, outside 1..5"
                                                    : "data/step_samples holds a negative sample index -3"),
              std::string::npos)
        << why;
  }
  fs::remove_all(dir);
}

// A negative AdamW second moment (edited, its checksum recomputed) is refused at load by
// name: resumed, sqrt(v) was NaN and the run stopped on "6 spike skips/rollbacks".
TEST(Checkpoint, NegativeSecondMomentIsRefused) {
  const fs::path dir = ckpt_temp_dir("negative_v");
  const std::string path = (dir / "c.h5").string();
  WholeState w = whole_state();
  const size_t nt = ckpt_specs().size();
  w.store[2 * nt + 1][3] = -0.5f;  // group 2 (v), second tensor
  save_checkpoint(path, MPI_COMM_NULL, w.slabs, ckpt_meta(5));  // its checksum matches
  try {
    load_checkpoint(path, MPI_COMM_NULL, w.slabs);
    FAIL() << "a negative second moment loaded";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": tensor 'optimizer/v/" + ckpt_specs()[1].name +
                                         "' holds 1 negative value(s)"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

TEST(CheckpointDir, DiscoveryFallsBackFromCorruptTruncatedAndPartialFiles) {
  const fs::path run = ckpt_temp_dir("discovery");
  fs::create_directories(checkpoints_dir(run.string()));
  WholeState w = whole_state();
  for (int64_t step : {10, 20, 30, 40}) {
    save_checkpoint(checkpoint_path(run.string(), step), MPI_COMM_NULL, w.slabs, ckpt_meta(step));
    write_latest(run.string(), step);
  }
  EXPECT_EQ(read_latest(run.string()).value(), "step_00000040.h5");
  ASSERT_EQ(list_checkpoints(run.string()).size(), 4u);
  // 40: a flipped byte; 30: truncated (a killed write); 20 fine; and a later .tmp left over.
  flip_byte(checkpoint_path(run.string(), 40), fs::file_size(checkpoint_path(run.string(), 40)) / 2);
  fs::resize_file(checkpoint_path(run.string(), 30), 3000);
  fs::copy_file(checkpoint_path(run.string(), 20), checkpoint_path(run.string(), 50) + ".tmp");
  std::vector<std::string> logged;
  Discovery d = find_latest_valid(run.string(), MPI_COMM_NULL, true,
                                  [&](const std::string& m) { logged.push_back(m); });
  ASSERT_TRUE(d.found.has_value());
  EXPECT_EQ(d.found->step, 20);
  ASSERT_EQ(d.rejected.size(), 2u);
  EXPECT_NE(d.rejected[0].find("step_00000040.h5 rejected: is corrupt"), std::string::npos)
      << d.rejected[0];
  EXPECT_NE(d.rejected[0].find("falling back"), std::string::npos);
  EXPECT_NE(d.rejected[1].find("step_00000030.h5 rejected: is truncated"), std::string::npos)
      << d.rejected[1];
  EXPECT_EQ(logged, d.rejected);
  // The leftover .tmp is no candidate and is cleaned.
  const auto removed = clean_temporaries(run.string());
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_NE(removed[0].find("step_00000050.h5.tmp"), std::string::npos);
  // A partial file under a final name (header never stamped) is rejected too.
  fs::remove(checkpoint_path(run.string(), 20));
  { h5::Id f = h5::create_file(checkpoint_path(run.string(), 20), MPI_COMM_NULL, kIntegrityBlock); }
  d = find_latest_valid(run.string(), MPI_COMM_NULL);
  EXPECT_EQ(d.found->step, 10);
  EXPECT_EQ(d.rejected.size(), 3u);
  // Nothing valid at all: no checkpoint found, every file rejected, none crashes.
  fs::remove(checkpoint_path(run.string(), 10));
  d = find_latest_valid(run.string(), MPI_COMM_NULL);
  EXPECT_FALSE(d.found.has_value());
  EXPECT_NE(d.rejected.back().find("no older checkpoint"), std::string::npos);
  fs::remove_all(run);
}

TEST(CheckpointDir, NamesAndLatestPointer) {
  EXPECT_EQ(checkpoint_filename(123), "step_00000123.h5");
  EXPECT_EQ(parse_checkpoint_step("step_00000123.h5").value(), 123);
  EXPECT_EQ(parse_checkpoint_step("step_1234567890.h5").value(), 1234567890);
  EXPECT_FALSE(parse_checkpoint_step("step_00000123.h5.tmp"));
  EXPECT_FALSE(parse_checkpoint_step("step_.h5"));
  EXPECT_FALSE(parse_checkpoint_step("step_12a.h5"));
  const fs::path run = ckpt_temp_dir("latest");
  EXPECT_FALSE(read_latest(run.string()));
  fs::create_directories(checkpoints_dir(run.string()));
  write_latest(run.string(), 7);
  write_latest(run.string(), 9);
  EXPECT_EQ(read_latest(run.string()).value(), "step_00000009.h5");
  EXPECT_FALSE(fs::exists(fs::path(checkpoints_dir(run.string())) / "latest.tmp"));
  fs::remove_all(run);
}
