// Model files: save → load round trip (values, metadata), checksum catches corruption,
// layout-independent checksums (a slab-wise sum equals the whole-tensor sum), atomic write,
// malformed files rejected with the file named.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "backend/backend.h"
#include "core/error.h"
#include "io/hdf5.h"
#include "io/model_file.h"
#include "io/stored_model.h"
#include "io/tensor_file.h"
#include "model/param_layout.h"
#include "test_model_util.h"
#include "train/init_from.h"
#include "train/loaded_model.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("llmpi_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::unique_ptr<ParamStore> make_store(Backend& be, const ModelConfig& cfg, uint64_t seed) {
  auto s = std::make_unique<ParamStore>(be, transformer_params(cfg, StageRange::full(cfg)), DType::f32);
  s->init(be, seed);
  return s;
}

std::vector<float> values(const ParamStore& s) {
  const Tensor& m = s.master();
  return std::vector<float>(m.ptr<float>(), m.ptr<float>() + m.numel());
}

}  // namespace

TEST(ModelFile, RoundTripValuesAndMetadata) {
  auto be = make_host_backend();
  for (Arch arch : {Arch::gpt2, Arch::llama}) {
    const ModelConfig cfg = llmpi::testing::tiny_config(arch);
    auto a = make_store(*be, cfg, 7);
    const fs::path dir = temp_dir("roundtrip");
    const std::string path = (dir / "m.h5").string();
    ModelFileMeta meta;
    meta.step = 42;
    meta.tokens_seen = 4242;
    meta.config_toml = "[model]\narch = \"x\"\n";
    meta.layout = Layout{.tp = 2, .dp = 3, .zero_stage = 1, .sequence_parallel = true};
    save_model_file(path, MPI_COMM_NULL, *be, *a, meta);
    EXPECT_TRUE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));

    const ModelFileMeta got = read_model_meta(path);
    EXPECT_EQ(got.step, 42);
    EXPECT_EQ(got.tokens_seen, 4242);
    EXPECT_EQ(got.config_toml, meta.config_toml);
    EXPECT_EQ(got.layout, meta.layout);
    EXPECT_EQ(got.kind, "model");

    auto b = make_store(*be, cfg, 99);  // different init, overwritten by the load
    ASSERT_NE(values(*a), values(*b));
    load_model_params(path, MPI_COMM_NULL, *be, *b, /*verify=*/true);
    EXPECT_EQ(values(*a), values(*b));
    fs::remove_all(dir);
  }
}

TEST(ModelFile, ChecksumIsLayoutIndependent) {
  // A [6, 5] tensor: the checksum of the whole equals the sum of the checksums of any split
  // into slabs (rows 0..2 and 2..6; columns 0..3 and 3..5).
  std::vector<float> x(30);
  for (int i = 0; i < 30; ++i) x[size_t(i)] = float(rng_normal(rng_key(1, "ck"), uint64_t(i)));
  TensorSlab whole{"t", {6, 5}, {}, {}, x.data()};
  const uint64_t full = slab_checksum(whole);
  std::vector<float> top(x.begin(), x.begin() + 10), bottom(x.begin() + 10, x.end());
  TensorSlab s1{"t", {6, 5}, {0, 0}, {2, 5}, top.data()};
  TensorSlab s2{"t", {6, 5}, {2, 0}, {4, 5}, bottom.data()};
  EXPECT_EQ(full, slab_checksum(s1) + slab_checksum(s2));
  std::vector<float> left, right;
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 5; ++c) (c < 3 ? left : right).push_back(x[size_t(r * 5 + c)]);
  TensorSlab c1{"t", {6, 5}, {0, 0}, {6, 3}, left.data()};
  TensorSlab c2{"t", {6, 5}, {0, 3}, {6, 2}, right.data()};
  EXPECT_EQ(full, slab_checksum(c1) + slab_checksum(c2));
  // And it depends on the values.
  x[7] += 1e-3f;
  EXPECT_NE(full, slab_checksum(whole));
}

TEST(ModelFile, CorruptValueIsRejected) {
  auto be = make_host_backend();
  const ModelConfig cfg = llmpi::testing::tiny_config(Arch::gpt2);
  auto a = make_store(*be, cfg, 3);
  const fs::path dir = temp_dir("corrupt");
  const std::string path = (dir / "m.h5").string();
  save_model_file(path, MPI_COMM_NULL, *be, *a, ModelFileMeta{});
  {  // Overwrite one value of one tensor, keeping its stored checksum.
    h5::Id f = h5::open_file(path, MPI_COMM_NULL, /*writable=*/true);
    h5::Id d(H5Dopen2(f, "params/final_norm.weight", H5P_DEFAULT), H5Dclose);
    ASSERT_TRUE(d.valid());
    std::vector<float> v(size_t(cfg.d_model));
    ASSERT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
    v[3] = 2.5f;
    ASSERT_GE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
  }
  auto b = make_store(*be, cfg, 3);
  try {
    load_model_params(path, MPI_COMM_NULL, *be, *b, true);
    FAIL() << "a corrupted tensor was accepted";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("final_norm.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("checksum"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
  }
  fs::remove_all(dir);
}

TEST(ModelFile, MalformedFilesAreRejectedWithTheirName) {
  const fs::path dir = temp_dir("malformed");
  const std::string text = (dir / "not.h5").string();
  std::ofstream(text) << "this is not HDF5\n";
  EXPECT_THROW(read_model_meta(text), UserError);
  try {
    read_model_meta(text);
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos);
  }
  // A valid HDF5 file that is not an llmpi file.
  const std::string other = (dir / "other.h5").string();
  { h5::Id f = h5::create_file(other, MPI_COMM_NULL); }
  try {
    read_model_meta(other);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("not an llmpi"), std::string::npos) << e.what();
  }
  // A model file whose tensor has the wrong shape for the model being loaded.
  auto be = make_host_backend();
  ModelConfig small = llmpi::testing::tiny_config(Arch::gpt2), big = small;
  big.d_model = 32;
  auto a = make_store(*be, small, 1);
  const std::string path = (dir / "m.h5").string();
  save_model_file(path, MPI_COMM_NULL, *be, *a, ModelFileMeta{});
  auto b = make_store(*be, big, 1);
  try {
    load_model_params(path, MPI_COMM_NULL, *be, *b, true);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("has shape"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// A number stored with a non-standard type (here a 64-bit integer that uses 40 bits from bit
// 8, which HDF5 itself accepts) is refused by name: a damaged type's precision and offset made
// HDF5 read outside its buffer, so every numeric read takes only standard types.
TEST(ModelFile, NonStandardNumberTypesAreRefused) {
  const fs::path dir = temp_dir("odd_type");
  const std::string path = (dir / "odd.h5").string();
  {
    h5::Id f = h5::create_file(path, MPI_COMM_NULL);
    h5::Id odd(H5Tcopy(H5T_STD_I64LE), H5Tclose);
    ASSERT_GE(H5Tset_precision(odd, 40), 0);
    ASSERT_GE(H5Tset_offset(odd, 8), 0);
    h5::Id space(H5Screate(H5S_SCALAR), H5Sclose);
    h5::Id attr(H5Acreate2(f, "step", odd, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const int64_t v = 7 << 8;
    ASSERT_GE(H5Awrite(attr, H5T_NATIVE_INT64, &v), 0);
    h5::write_attr(f, "fine", int64_t(7), path);
    EXPECT_FALSE(h5::is_standard_number(odd));
  }
  h5::Id f = h5::open_file(path, MPI_COMM_NULL);
  EXPECT_EQ(h5::read_attr_int(f, "fine", path), 7);
  try {
    h5::read_attr_int(f, "step", path);
    FAIL() << "a non-standard integer type was read";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("'step' should be an integer (a standard HDF5 type), found an integer of a non-standard size"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(h5::read_attr_ints(f, "step", path), UserError);
  h5::Id i32(H5Tcopy(H5T_STD_I32BE), H5Tclose), f64(H5Tcopy(H5T_IEEE_F64LE), H5Tclose);
  EXPECT_TRUE(h5::is_standard_number(i32, H5T_INTEGER));
  EXPECT_FALSE(h5::is_standard_number(i32, H5T_FLOAT));
  EXPECT_TRUE(h5::is_standard_number(f64));
  f.reset();
  fs::remove_all(dir);
}

// Issue #13 item 6: the stored config is checked against the file's tensors before the model
// is allocated; a config declaring a huge model (2,000,000 layers, d_model = 2^20, 4e9
// tokens) in a small file is refused at once (it allocated for 35 s before).
TEST(ModelFile, StoredConfigMustDescribeTheTensors) {
  using llmpi::testing::tiny_config_toml;
  auto be = make_host_backend();
  const ModelConfig cfg = llmpi::testing::tiny_config(Arch::gpt2);
  auto store = make_store(*be, cfg, 7);
  const fs::path dir = temp_dir("stored_config");
  auto write = [&](const std::string& name, const std::string& toml) {
    ModelFileMeta meta;
    meta.config_toml = toml;
    meta.layout = Layout{};
    const std::string path = (dir / name).string();
    save_model_file(path, MPI_COMM_NULL, *be, *store, meta);
    return path;
  };
  const StoredModel ok = check_stored_model(write("ok.h5", tiny_config_toml(Arch::gpt2)));
  EXPECT_EQ(ok.config.model.d_model, 16);
  EXPECT_EQ(ok.tensors, int64_t(transformer_params(cfg, StageRange::full(cfg)).size()));

  const std::vector<std::pair<std::string, std::string>> bad = {
      {tiny_config_toml(Arch::gpt2, 2000000), "parameter tensors but /params holds"},
      {tiny_config_toml(Arch::gpt2, 2, 1 << 20), "embed.tokens has shape [37, 16] but the stored config"},
      // Past 32-bit token ids: the stored config itself is refused (docs/config.md's range).
      {tiny_config_toml(Arch::gpt2, 2, 16, 4000000000),
       "key 'model.vocab_size': 4000000000 is out of range; expected an integer in 1..2147483647"},
  };
  for (const auto& [toml, want] : bad) {
    const std::string path = write("bad.h5", toml);
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < 2; ++k) {
      try {
        if (k == 0) check_stored_model(path);
        else load_model(path, *be);  // what sample and eval call
        ADD_FAILURE() << "accepted " << want;
      } catch (const UserError& e) {
        EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("bad.h5"), std::string::npos) << e.what();
      }
    }
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
  }
  fs::remove_all(dir);
}

// The layout is a group of named attributes (/layout): any HDF5 reader finds each field by
// its name; a missing field is refused naming it, an unknown one (an axis a later version
// adds) is ignored, and world_size must agree with the degrees.
TEST(ModelFile, LayoutIsStoredByName) {
  const fs::path dir = temp_dir("layout_names");
  const std::string path = (dir / "m.h5").string();
  auto be = make_host_backend();
  auto a = make_store(*be, llmpi::testing::tiny_config(Arch::gpt2), 3);
  ModelFileMeta meta;
  meta.layout = Layout{.tp = 2, .dp = 4, .pp = 3, .zero_stage = 1, .virtual_stages = 2,
                       .micro_batches = 6, .sequence_parallel = true};
  save_model_file(path, MPI_COMM_NULL, *be, *a, meta);
  {
    h5::Id f = h5::open_file(path, MPI_COMM_NULL);
    h5::Id g = h5::open_group(f, "layout", path);
    EXPECT_EQ(h5::read_attr_int(g, "tp", path), 2);
    EXPECT_EQ(h5::read_attr_int(g, "pp", path), 3);
    EXPECT_EQ(h5::read_attr_int(g, "dp", path), 4);
    EXPECT_EQ(h5::read_attr_int(g, "zero_stage", path), 1);
    EXPECT_EQ(h5::read_attr_int(g, "virtual_stages", path), 2);
    EXPECT_EQ(h5::read_attr_int(g, "micro_batches", path), 6);
    EXPECT_EQ(h5::read_attr_int(g, "sequence_parallel", path), 1);
    EXPECT_EQ(h5::read_attr_int(g, "world_size", path), 24);
    EXPECT_FALSE(h5::has_attr(f, "layout"));  // no positional copy
  }
  EXPECT_EQ(read_model_meta(path).layout, meta.layout);
  EXPECT_EQ(read_model_meta(path).format_version, kFormatVersion);
  {  // a later axis: ignored by this reader
    h5::Id f = h5::open_file(path, MPI_COMM_NULL, true);
    h5::Id g = h5::open_group(f, "layout", path);
    h5::write_attr(g, "experts", int64_t{8}, path);
  }
  EXPECT_EQ(read_model_meta(path).layout, meta.layout);
  auto refused = [&](const char* attr, int64_t value, bool remove) {
    const std::string bad = (dir / (std::string(attr) + ".h5")).string();
    fs::copy_file(path, bad, fs::copy_options::overwrite_existing);
    {
      h5::Id f = h5::open_file(bad, MPI_COMM_NULL, true);
      h5::Id g = h5::open_group(f, "layout", bad);
      H5Adelete(g, attr);
      if (!remove) h5::write_attr(g, attr, value, bad);
    }
    try {
      read_model_meta(bad);
      ADD_FAILURE() << attr << " accepted";
      return std::string();
    } catch (const UserError& e) {
      return std::string(e.what());
    }
  };
  std::string e = refused("dp", 0, true);
  EXPECT_NE(e.find("/layout has no attribute 'dp'"), std::string::npos) << e;
  e = refused("world_size", 12, false);
  EXPECT_NE(e.find("'world_size' = 12, but tp × pp × dp = 24"), std::string::npos) << e;
  e = refused("tp", 0, false);
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  fs::remove_all(dir);
}

// What h5py writes when a user edits a file: a str attribute is a variable-length UTF-8
// string, a Python int an int64, a float a float64, numpy's uint64 an unsigned integer. The
// strings are read as written (a variable-length UTF-8 string failed to convert: "HDF5 error
// while reading attribute 'config'"); a number of the wrong kind or out of range is refused by
// name — a float 3.5 read as step 3 and a uint64 2^63 + 5 clamped to 2^63 - 1 before, a
// negative int64 clamped to 0 where an unsigned value (seed, checksum) is expected.
TEST(ModelFile, AttributesAsH5pyWritesThem) {
  const fs::path dir = temp_dir("h5py_attrs");
  const std::string path = (dir / "a.h5").string();
  auto vlen_utf8 = [&](hid_t obj, const char* name, const char* value) {
    H5Adelete(obj, name);
    h5::Id type(H5Tcopy(H5T_C_S1), H5Tclose);
    ASSERT_GE(H5Tset_size(type, H5T_VARIABLE), 0);
    ASSERT_GE(H5Tset_cset(type, H5T_CSET_UTF8), 0);
    h5::Id space(H5Screate(H5S_SCALAR), H5Sclose);
    h5::Id attr(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    ASSERT_GE(H5Awrite(attr, type, &value), 0);
  };
  auto scalar = [&](hid_t obj, const char* name, hid_t type, hid_t mem, const void* v) {
    H5Adelete(obj, name);
    h5::Id space(H5Screate(H5S_SCALAR), H5Sclose);
    h5::Id attr(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    ASSERT_GE(H5Awrite(attr, mem, v), 0);
  };
  {
    h5::Id f = h5::create_file(path, MPI_COMM_NULL);
    vlen_utf8(f, "text", "[model]\nd_model = 16 # é\n");
    const double d = 3.5, whole = 20.0;
    const int64_t neg = -1, i64 = 42;
    const int32_t i32 = 7;
    const uint64_t big = (uint64_t(1) << 63) + 5, u = 9;
    scalar(f, "float", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &d);
    scalar(f, "whole_float", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &whole);
    scalar(f, "negative", H5T_STD_I64LE, H5T_NATIVE_INT64, &neg);
    scalar(f, "i64", H5T_STD_I64LE, H5T_NATIVE_INT64, &i64);
    scalar(f, "i32", H5T_STD_I32BE, H5T_NATIVE_INT32, &i32);
    scalar(f, "big", H5T_STD_U64LE, H5T_NATIVE_UINT64, &big);
    scalar(f, "u64", H5T_STD_U64LE, H5T_NATIVE_UINT64, &u);
    const uint64_t list[2] = {1, big};
    const hsize_t two = 2;
    h5::Id space(H5Screate_simple(1, &two, nullptr), H5Sclose);
    h5::Id attr(H5Acreate2(f, "big_list", H5T_STD_U64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    ASSERT_GE(H5Awrite(attr, H5T_NATIVE_UINT64, list), 0);
  }
  h5::Id f = h5::open_file(path, MPI_COMM_NULL);
  EXPECT_EQ(h5::read_attr_string(f, "text", path), "[model]\nd_model = 16 # é\n");
  EXPECT_EQ(h5::read_attr_int(f, "i64", path), 42);
  EXPECT_EQ(h5::read_attr_int(f, "i32", path), 7);
  EXPECT_EQ(h5::read_attr_uint(f, "i64", path), 42u);  // h5py writes a Python int as int64
  EXPECT_EQ(h5::read_attr_int(f, "u64", path), 9);
  EXPECT_EQ(h5::read_attr_uint(f, "big", path), (uint64_t(1) << 63) + 5);
  EXPECT_EQ(h5::read_attr_double(f, "i64", path), 42.0);  // an integer where a float is asked
  auto refused = [&](auto read, const char* attr, const std::string& want) {
    try {
      read(attr);
      ADD_FAILURE() << attr << " accepted";
    } catch (const UserError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(want), std::string::npos) << msg;
    }
  };
  auto as_int = [&](const char* a) { return h5::read_attr_int(f, a, path); };
  auto as_uint = [&](const char* a) { return h5::read_attr_uint(f, a, path); };
  refused(as_int, "float", "attribute 'float' should be an integer (a standard HDF5 type), found a float");
  try {  // a standard float where an integer is asked: not called non-standard
    h5::read_attr_int(f, "float", path);
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()).find("non-standard"), std::string::npos) << e.what();
  }
  refused(as_int, "whole_float", "attribute 'whole_float' should be an integer");
  refused(as_int, "text", "attribute 'text' should be an integer (a standard HDF5 type), found a string");
  refused(as_int, "big", "attribute 'big' = 9223372036854775813 is out of range");
  refused(as_uint, "negative", "attribute 'negative' = -1 is negative; expected an unsigned integer");
  refused(as_uint, "float", "attribute 'float' should be an integer");
  refused([&](const char* a) { return h5::read_attr_ints(f, a, path); }, "big_list",
          "attribute 'big_list' holds 9223372036854775813, out of range");
  refused([&](const char* a) { return h5::read_attr_string(f, a, path); }, "i64",
          "attribute 'i64' should be a string, found an integer");
  f.reset();
  fs::remove_all(dir);
}

// A model file whose config, kind and format a user rewrote with h5py (variable-length UTF-8
// strings) still opens; a kind other than "model" or "checkpoint" is refused by name (one
// reading "weights" was used as a model before).
TEST(ModelFile, RootStringsRewrittenByH5py) {
  auto be = make_host_backend();
  auto store = make_store(*be, llmpi::testing::tiny_config(Arch::gpt2), 5);
  const fs::path dir = temp_dir("h5py_root");
  const std::string path = (dir / "m.h5").string();
  ModelFileMeta meta;
  meta.config_toml = llmpi::testing::tiny_config_toml(Arch::gpt2);
  save_model_file(path, MPI_COMM_NULL, *be, *store, meta);
  auto rewrite = [&](const char* name, const std::string& value) {
    h5::Id f = h5::open_file(path, MPI_COMM_NULL, /*writable=*/true);
    H5Adelete(f, name);
    h5::Id type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    h5::Id space(H5Screate(H5S_SCALAR), H5Sclose);
    h5::Id attr(H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    const char* s = value.c_str();
    ASSERT_GE(H5Awrite(attr, type, &s), 0);
  };
  rewrite("format", "llmpi");
  rewrite("kind", "model");
  rewrite("config", meta.config_toml + "# edited in h5py\n");
  const StoredModel s = check_stored_model(path);
  EXPECT_EQ(s.meta.config_toml, meta.config_toml + "# edited in h5py\n");
  EXPECT_EQ(s.meta.kind, "model");
  EXPECT_NO_THROW(load_model(path, *be));
  rewrite("kind", "weights");
  try {
    read_model_meta(path);
    FAIL() << "kind \"weights\" accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": attribute 'kind' is \"weights\"; expected \"model\" or \"checkpoint\""),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

// A NaN or infinity in a parameter under a matching checksum (a user's edit in h5py, with the
// checksum recomputed, or a save of a diverged run) is refused by name: sample printed text
// from NaN logits and eval reported "loss nan", init_from trained from it.
TEST(ModelFile, NonFiniteParametersAreRefused) {
  auto be = make_host_backend();
  const ModelConfig cfg = llmpi::testing::tiny_config(Arch::gpt2);
  const fs::path dir = temp_dir("nonfinite");
  ModelFileMeta meta;
  meta.config_toml = llmpi::testing::tiny_config_toml(Arch::gpt2);
  for (const float bad : {std::nanf(""), INFINITY}) {
    auto store = make_store(*be, cfg, 9);
    const ParamInfo& p = store->params().back();
    store->master().ptr<float>()[p.offset + 1] = bad;
    const std::string path = (dir / "m.h5").string();
    save_model_file(path, MPI_COMM_NULL, *be, *store, meta);  // its checksum matches the NaN
    try {
      load_model(path, *be);
      ADD_FAILURE() << "a model holding " << bad << " loaded";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(path + ": tensor '" + p.name + "' holds 1 non-finite value"),
                std::string::npos)
          << e.what();
    }
    auto other = make_store(*be, cfg, 1);
    EXPECT_THROW(load_model_params(path, MPI_COMM_NULL, *be, *other, /*verify=*/true), UserError);
  }
  fs::remove_all(dir);
}

// train.init_from reads a model file under the same rule as sample and eval
// (io/stored_model.h): a tensor in /params that the stored config does not imply was ignored.
TEST(ModelFile, InitFromRefusesTensorsTheConfigDoesNotImply) {
  auto be = make_host_backend();
  const ModelConfig cfg = llmpi::testing::tiny_config(Arch::gpt2);
  const fs::path dir = temp_dir("init_from_extra");
  ModelFileMeta meta;
  meta.config_toml = llmpi::testing::tiny_config_toml(Arch::gpt2);
  const std::string path = (dir / "m.h5").string();
  save_model_file(path, MPI_COMM_NULL, *be, *make_store(*be, cfg, 4), meta);
  const Config run = parse_config(meta.config_toml, "run.toml");
  EXPECT_NO_THROW(open_model_source(path, run, MPI_COMM_NULL));
  {
    h5::Id f = h5::open_file(path, MPI_COMM_NULL, /*writable=*/true);
    h5::Id params = h5::open_group(f, "params", path);
    const hsize_t n = 3;
    h5::Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    h5::Id d(H5Dcreate2(params, "extra.weight", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT),
             H5Dclose);
    ASSERT_GE(hid_t(d), 0);
  }
  try {
    open_model_source(path, run, MPI_COMM_NULL);
    ADD_FAILURE() << "a model file with an extra tensor was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("parameter tensors but /params holds"), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}
