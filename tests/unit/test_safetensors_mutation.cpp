// Hostile safetensors, deterministically (tests/fuzz/fuzz_safetensors.cpp explores further):
// 400 mutated copies of a small valid file — byte flips concentrated in the 8-byte length and
// the JSON header, flips anywhere, and truncations — each either parses into a header whose
// tensors tile the data exactly and whose values all convert, or is rejected with a UserError
// naming the file. Nothing else (a crash, another exception) is allowed. safetensors has no
// checksum, so a flip inside the tensor data is a valid file with other values: accepted.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"

using namespace llmpi;
namespace fs = std::filesystem;

TEST(SafetensorsMutation, EveryMutantIsParsedConsistentlyOrRejected) {
  const fs::path dir = fs::temp_directory_path() / ("llmpi_stmut_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string orig_path = (dir / "orig.safetensors").string();
  {
    const std::vector<StSpec> specs = {{"embed.weight", StDtype::bf16, {3, 4}},
                                       {"layers.0.w", StDtype::f32, {2, 2}},
                                       {"norm", StDtype::f16, {4}}};
    SafetensorsWriter w(orig_path, specs, {{"format", "pt"}});
    for (const StSpec& s : specs) {
      std::vector<float> v(size_t(StEntry{s.name, s.dtype, s.shape}.numel()), 0.5f);
      w.write(s.name, encode_f32(v, s.dtype));
    }
    w.commit();
  }
  std::ifstream in(orig_path, std::ios::binary);
  const std::vector<char> orig((std::istreambuf_iterator<char>(in)), {});
  const uint64_t header_end = 8 + uint64_t(uint8_t(orig[0])) + (uint64_t(uint8_t(orig[1])) << 8);
  const uint64_t key = rng_key(7, "safetensors-mutant");
  int rejected = 0, accepted = 0, header_rejected = 0, header_mutants = 0;
  for (int k = 0; k < 400; ++k) {
    std::vector<char> b = orig;
    bool in_header = false;
    if (k >= 340) {
      b.resize(size_t(rng_bits(key, uint64_t(k)) % orig.size()));
      in_header = b.size() < orig.size();
    } else {
      const int flips = 1 + int(rng_bits(key, uint64_t(k) + 1000) % 3);
      // Two thirds of the mutants flip bytes of the length and header only.
      const uint64_t span = (k % 3 != 0) ? header_end : orig.size();
      for (int j = 0; j < flips; ++j) {
        const uint64_t r = rng_bits(key, uint64_t(k) * 16 + uint64_t(j) + 5000);
        const size_t at = size_t(r % span);
        b[at] ^= char(1 + (r >> 32) % 255);
        in_header = in_header || at < header_end;
      }
    }
    const std::string p = (dir / ("m" + std::to_string(k) + ".safetensors")).string();
    std::ofstream(p, std::ios::binary).write(b.data(), std::streamsize(b.size()));
    header_mutants += in_header;
    try {
      const SafetensorsFile f(p);
      uint64_t at = 0;
      for (const StEntry& e : f.header().tensors) {
        ASSERT_EQ(e.begin, at) << p;
        ASSERT_EQ(e.end - e.begin, uint64_t(e.numel() * st_dtype_size(e.dtype))) << p;
        at = e.end;
        try {
          (void)f.read_f32(e);
        } catch (const UserError&) {  // a flipped dtype name may give a valid non-float dtype
        }
      }
      ASSERT_EQ(f.header().data_start + at, b.size()) << p;
      ++accepted;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
      ++rejected;
      header_rejected += in_header;
    }
  }
  fs::remove_all(dir);
  // Sanity of the mutation mix: most header damage must be caught (a flip inside a tensor
  // name or a metadata value, or trailing padding, legitimately survives).
  EXPECT_GT(header_rejected, header_mutants / 2) << header_rejected << " of " << header_mutants;
  EXPECT_GT(accepted, 10);
  EXPECT_EQ(accepted + rejected, 400);
}
