// safetensors: writer → reader round trips (F32/BF16/F16, metadata, empty tensors), the 16-bit
// conversions against hand-computed bit patterns, hostile headers (each rejected with a
// message naming the file and the tensor or key), and sharded directories with their index.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unistd.h>

#include "core/error.h"
#include "core/float16.h"
#include "io/safetensors.h"
#include "io/safetensors_set.h"
#include "user_error_message.h"

using namespace llmpi;
using llmpi::testing::message_of;
namespace fs = std::filesystem;

namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("llmpi_st_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // A file made of an 8-byte length, the header text and `data` raw bytes.
  std::string raw_file(const std::string& name, const std::string& header, size_t data_bytes,
                       int64_t length_override = -1) const {
    const std::string p = path(name);
    std::ofstream f(p, std::ios::binary);
    const uint64_t n = length_override >= 0 ? uint64_t(length_override) : header.size();
    for (int i = 0; i < 8; ++i) f.put(char(n >> (8 * i)));
    f << header << std::string(data_bytes, '\x01');
    return p;
  }
  fs::path dir_;
};

std::vector<uint8_t> f32_bytes(std::vector<float> v) { return encode_f32(v, StDtype::f32); }

}  // namespace

TEST(Float16, ConversionsRoundToNearestEvenAndKeepSpecials) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);                    // largest half
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);                    // rounds down
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);                    // rounds to +inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);       // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);       // tie → even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);       // 1.5 units → 2
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie → even
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3C02);  // tie → even (up)
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // tie → even
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(3.0f, -8)), 0x3F82);
  // Every half round-trips exactly through f32.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    if (!std::isnan(f)) ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
}

TEST_F(SafetensorsTest, WriteReadRoundTripAllFloatDtypes) {
  const std::vector<float> a = {1.5f, -2.25f, 3.0f, 0.1f, -0.0f, 1e-3f};
  const std::vector<StSpec> specs = {{"a.f32", StDtype::f32, {2, 3}},
                                     {"a.bf16", StDtype::bf16, {6}},
                                     {"a.f16", StDtype::f16, {3, 2}},
                                     {"empty", StDtype::f32, {0, 4}},
                                     {"scalar", StDtype::f32, {}}};
  {
    SafetensorsWriter w(path("m.safetensors"), specs, {{"format", "pt"}, {"note", "x"}});
    w.write("a.f32", encode_f32(a, StDtype::f32));
    w.write("a.bf16", encode_f32(a, StDtype::bf16));
    w.write("a.f16", encode_f32(a, StDtype::f16));
    w.write("empty", {});
    w.write("scalar", f32_bytes({7.0f}));
    w.commit();
  }
  EXPECT_FALSE(fs::exists(path("m.safetensors.tmp")));
  EXPECT_EQ(fs::file_size(path("m.safetensors")), safetensors_file_size(specs, {{"format", "pt"}, {"note", "x"}}));
  const SafetensorsFile f(path("m.safetensors"));
  EXPECT_EQ(f.header().metadata.at("note"), "x");
  EXPECT_EQ(f.header().data_start % 8, 0u);
  EXPECT_EQ(f.read_f32(*f.find("a.f32")), a);
  for (const char* n : {"a.bf16", "a.f16"}) {
    const std::vector<float> got = f.read_f32(*f.find(n));
    for (size_t i = 0; i < a.size(); ++i) {
      const float want = std::string(n) == "a.bf16" ? bf16_to_f32(f32_to_bf16(a[i]))
                                                    : f16_to_f32(f32_to_f16(a[i]));
      EXPECT_EQ(got[i], want) << n << " " << i;
    }
  }
  EXPECT_EQ(f.find("empty")->shape, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(f.read_f32(*f.find("scalar")), std::vector<float>{7.0f});
  EXPECT_EQ(f.find("nope"), nullptr);
}

TEST_F(SafetensorsTest, WriterWithoutCommitLeavesNothing) {
  {
    SafetensorsWriter w(path("x.safetensors"), {{"t", StDtype::f32, {1}}});
    w.write("t", f32_bytes({1.0f}));
  }
  EXPECT_FALSE(fs::exists(path("x.safetensors")));
  EXPECT_FALSE(fs::exists(path("x.safetensors.tmp")));
}

TEST_F(SafetensorsTest, HostileHeadersAreRejectedNamingFileAndTensor) {
  struct Case {
    std::string name, header;
    size_t data;
    std::string fragment;
    int64_t length = -1;
  };
  const std::string ok = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::vector<Case> cases = {
      {"length_past_end", "{}", 0, "header length 1000 is outside", 1000},
      {"length_huge", "{}", 0, "header length", int64_t(1) << 40},
      {"not_object", "[1,2]", 0, "must start with '{'"},
      {"bad_json", "{\"t\":", 0, "not valid JSON"},
      {"trailing_garbage", "{}x", 0, "not valid JSON"},
      {"duplicate", "{" + ok + "," + ok + "}", 8, "tensor \"t\" appears twice"},
      {"unknown_dtype", R"({"t":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8, "tensor \"t\": unknown dtype \"F33\""},
      {"missing_key", R"({"t":{"dtype":"F32","shape":[2]}})", 8, "tensor \"t\": missing key \"data_offsets\""},
      {"extra_key", R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8, "unknown key \"x\""},
      {"negative_dim", R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "shape entry must be a non-negative integer"},
      {"float_dim", R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8, "non-negative integer"},
      {"size_mismatch", R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "tensor \"t\": shape [3] of F32 needs 3 x 4 bytes"},
      {"overflow", R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8, "too many elements"},
      {"past_end", R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, "tensor \"t\": data_offsets [0, 16] reach past the end"},
      {"end_before_begin", R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8, "end before begin"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, "overlap the previous tensor"},
      {"gap", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, "tensor \"a\": data_offsets [4, 8] leave a gap of 4 bytes"},
      {"trailing_bytes", "{" + ok + "}", 12, "4 bytes after the last tensor"},
      {"metadata_not_string", R"({"__metadata__":{"format":1}})", 0, "__metadata__ \"format\" must be a string"},
      {"empty_name", R"({"":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})", 0, "empty name"},
      {"too_deep", R"({"t":{"dtype":"F32","shape":[[[[1]]]],"data_offsets":[0,4]}})", 4, "nests deeper"},
      {"offsets_not_pair", R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4, "data_offsets must be an array [begin, end]"},
      // nlohmann-json stops at a NUL: what follows it went unread, and the file passed.
      {"nul_hides_the_rest", "{" + ok + "}" + std::string(1, '\0') + "{\"u\":[]}", 8, "NUL byte at offset"},
  };
  for (const Case& c : cases) {
    const std::string p = raw_file(c.name + ".safetensors", c.header, c.data, c.length);
    const std::string msg = message_of([&] { SafetensorsFile f(p); });
    EXPECT_NE(msg.find(p + ": "), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(c.fragment), std::string::npos) << c.name << ": " << msg;
  }
  EXPECT_NE(message_of([&] { SafetensorsFile f(path("missing.safetensors")); }).find("missing.safetensors"),
            std::string::npos);
  const std::string tiny = path("tiny.safetensors");
  std::ofstream(tiny) << "abc";
  EXPECT_NE(message_of([&] { SafetensorsFile f(tiny); }).find("too short"), std::string::npos);
}

TEST_F(SafetensorsTest, UnsupportedDtypeIsReadableButNotAsWeights) {
  const std::string p = raw_file("i64.safetensors",
                                 R"({"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8);
  const SafetensorsFile f(p);
  EXPECT_EQ(f.find("ids")->dtype, StDtype::i64);
  const std::string msg = message_of([&] { f.read_f32(*f.find("ids")); });
  EXPECT_NE(msg.find(p + ": tensor \"ids\": dtype I64 is not supported"), std::string::npos) << msg;
}

TEST_F(SafetensorsTest, ShardedDirectoryRoundTripsWithIndex) {
  std::vector<StSpec> specs;
  for (int i = 0; i < 5; ++i) specs.push_back({"w" + std::to_string(i), StDtype::f32, {4, 4}});
  auto bytes = [](const StSpec& s) {
    std::vector<float> v(16);
    for (int k = 0; k < 16; ++k) v[size_t(k)] = float(s.name[1] - '0') * 100 + float(k);
    return encode_f32(v, StDtype::f32);
  };
  const ShardedWriteReport r = write_safetensors_set(dir_.string(), specs, bytes, /*max=*/150);
  // 64 bytes per tensor, at most 150 per shard: 2 + 2 + 1.
  ASSERT_EQ(r.files.size(), 4u);
  EXPECT_EQ(r.files[0], "model-00001-of-00003.safetensors");
  EXPECT_EQ(r.files[3], "model.safetensors.index.json");
  EXPECT_EQ(r.total_bytes, 5u * 64u);
  const SafetensorsSet set(dir_.string());
  EXPECT_EQ(set.shard_count(), 3u);
  EXPECT_EQ(set.names().size(), 5u);
  EXPECT_EQ(set.read_f32("w3")[5], 305.0f);
  // Writing again unsharded replaces the shards and the index.
  write_safetensors_set(dir_.string(), specs, bytes);
  EXPECT_FALSE(fs::exists(dir_ / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir_ / "model-00001-of-00003.safetensors"));
  EXPECT_EQ(SafetensorsSet(dir_.string()).read_f32("w4")[0], 400.0f);
}

TEST_F(SafetensorsTest, InconsistentIndexesAreRejected) {
  std::vector<StSpec> specs = {{"a", StDtype::f32, {2}}, {"b", StDtype::f32, {2}}};
  auto bytes = [](const StSpec&) { return f32_bytes({1.0f, 2.0f}); };
  write_safetensors_set(dir_.string(), specs, bytes, 8);  // a in shard 1, b in shard 2
  const std::string index = path("model.safetensors.index.json");
  const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  auto with_map = [&](const std::string& map) {
    std::ofstream(index) << "{\"weight_map\": {" << map << "}}";
    return message_of([&] { SafetensorsSet s(dir_.string()); });
  };
  EXPECT_EQ(with_map("\"a\": \"" + s1 + "\", \"b\": \"" + s2 + "\""), "(no UserError)");
  EXPECT_NE(with_map("\"a\": \"../" + s1 + "\", \"b\": \"" + s2 + "\"").find("expected a file name in this directory"),
            std::string::npos);
  EXPECT_NE(with_map("\"a\": \"" + s1 + "\", \"b\": \"" + s1 + "\"").find("tensor \"b\" is missing from " + s1),
            std::string::npos);
  EXPECT_NE(with_map("\"a\": \"" + s2 + "\", \"b\": \"" + s1 + "\"").find("tensor \"a\" is here, but"),
            std::string::npos);
  EXPECT_NE(with_map("\"b\": \"" + s1 + "\"").find("tensor \"a\" is not in " + index), std::string::npos);
  EXPECT_NE(with_map("\"a\": \"model-00009-of-00002.safetensors\"").find("model-00009-of-00002.safetensors"),
            std::string::npos);
  std::ofstream(index) << "{\"weight_map\": 3}";
  EXPECT_NE(message_of([&] { SafetensorsSet s(dir_.string()); }).find("weight_map: expected an object"),
            std::string::npos);
  fs::remove(index);
  EXPECT_NE(message_of([&] { SafetensorsSet s(dir_.string()); }).find("no model.safetensors and no"),
            std::string::npos);
}
