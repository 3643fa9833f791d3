// Corruption-proof reading, deterministically (the libFuzzer target in tests/fuzz/ explores
// further). 300 mutated copies of a small checkpoint — single and multi-byte flips spread over
// the whole file and truncations at many offsets — each either loads with exactly the saved
// content and metadata or is rejected with UserError; none crashes or reads out of bounds
// (run under ASan in tests/fuzz/run.sh). A second set re-stamps the integrity header after
// mutating, so the HDF5 parser and our structure checks see the damage themselves.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "io/checkpoint_integrity.h"
#include "test_checkpoint_util.h"

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

std::vector<char> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}
void write_all(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

// Mutant k of `orig`: k < 200 flips 1–4 bytes (every fourth one in the first 4 KiB, where
// HDF5 keeps its superblock and object headers), k >= 200 truncates.
std::vector<char> mutant(const std::vector<char>& orig, int k) {
  std::vector<char> b = orig;
  const uint64_t key = rng_key(2024, "mutant");
  if (k >= 200) {
    b.resize(size_t(rng_bits(key, uint64_t(k)) % orig.size()));
    return b;
  }
  const int flips = 1 + int(rng_bits(key, uint64_t(k) + 1000) % 4);
  const uint64_t span = (k % 4 == 0) ? std::min<uint64_t>(4096, orig.size()) : orig.size();
  for (int j = 0; j < flips; ++j) {
    const uint64_t r = rng_bits(key, uint64_t(k) * 16 + uint64_t(j) + 5000);
    b[size_t(r % span)] ^= char(1 + (r >> 32) % 255);
  }
  return b;
}

enum class Outcome { identical, rejected };

// Loads `path`; identical content and metadata → identical, UserError → rejected. Anything
// else (different values accepted, another exception) fails the test.
Outcome load_outcome(const std::string& path, const CheckpointMeta& want, bool require_meta) {
  WholeState w = whole_state();
  for (auto& v : w.store) std::fill(v.begin(), v.end(), 0.0f);
  const std::string why = verify_checkpoint(path, MPI_COMM_NULL);
  try {
    const CheckpointMeta got = load_checkpoint(path, MPI_COMM_NULL, w.slabs);
    EXPECT_EQ(why, "") << "verify rejects what load accepts: " << path;
    if (require_meta) {
      EXPECT_EQ(got.step, want.step);
      EXPECT_EQ(got.config_toml, want.config_toml);
      EXPECT_EQ(got.data.step_samples, want.data.step_samples);
      EXPECT_EQ(got.optimizer.beta1, want.optimizer.beta1);
    }
    const auto specs = ckpt_specs();
    for (size_t k = 0; k < w.store.size(); ++k) {
      const TensorSpec& t = specs[k % specs.size()];
      for (int64_t i = 0; i < t.numel(); ++i)
        if (w.store[k][size_t(i)] != ckpt_value(t.name, int(k / specs.size()), i)) {
          ADD_FAILURE() << path << ": loaded a wrong value of " << t.name;
          return Outcome::rejected;
        }
    }
    return Outcome::identical;
  } catch (const UserError& e) {
    EXPECT_FALSE(std::string(e.what()).empty());
    return Outcome::rejected;
  }
}

}  // namespace

TEST(CheckpointMutation, EveryMutantLoadsIdenticallyOrIsRejected) {
  const fs::path dir = ckpt_temp_dir("mutation");
  const std::string path = (dir / "c.h5").string();
  WholeState w = whole_state();
  const CheckpointMeta meta = ckpt_meta(9);
  save_checkpoint(path, MPI_COMM_NULL, w.slabs, meta);
  const std::vector<char> orig = read_all(path);
  int identical = 0, rejected = 0;
  const std::string m = (dir / "m.h5").string();
  for (int k = 0; k < 300; ++k) {
    write_all(m, mutant(orig, k));
    (load_outcome(m, meta, true) == Outcome::identical ? identical : rejected)++;
  }
  EXPECT_EQ(identical + rejected, 300);
  EXPECT_GE(rejected, 250) << "the digest should reject nearly every mutant";
  // Flips inside the unused padding of the 512-byte header change nothing that is read.
  std::vector<char> pad = orig;
  pad[300] ^= 0x7F;
  write_all(m, pad);
  EXPECT_EQ(load_outcome(m, meta, true), Outcome::identical);
  fs::remove_all(dir);
}

TEST(CheckpointMutation, RestampedMutantsAreRejectedByStructureAndChecksums) {
  const fs::path dir = ckpt_temp_dir("mutation_deep");
  const std::string path = (dir / "c.h5").string();
  WholeState w = whole_state();
  const CheckpointMeta meta = ckpt_meta(9);
  save_checkpoint(path, MPI_COMM_NULL, w.slabs, meta);
  const std::vector<char> orig = read_all(path);
  const std::string m = (dir / "m.h5").string();
  int rejected = 0;
  for (int k = 0; k < 200; ++k) {
    std::vector<char> b = mutant(orig, k);
    for (size_t i = 0; i < kIntegrityBlock; ++i) b[i] = orig[i];  // keep the header's magic
    write_all(m, b);
    stamp_integrity(m, MPI_COMM_NULL);  // the digest now vouches for the damaged bytes
    rejected += load_outcome(m, meta, /*require_meta=*/false) == Outcome::rejected;
  }
  EXPECT_GT(rejected, 0);
  fs::remove_all(dir);
}
