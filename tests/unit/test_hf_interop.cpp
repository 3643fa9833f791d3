// Hugging Face export/import of whole models: round trips (llmpi → HF → llmpi bitwise in f32;
// HF → llmpi → HF bitwise, f32 and bf16, single file and shards), the conventions checked by
// hand on tensors (GPT-2's Conv1D transpose and packed c_attn, tied heads written once, Llama
// names, GQA shapes, padding rows trimmed), logits of the EXPORTED files computed by an
// independent numpy reference (tests/hf/numpy_forward.py) equal to llmpi's within 1e-5, and
// malformed configs and weight files refused naming the file and key or tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/backend.h"
#include "config/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/hf_tokenizer.h"
#include "train/hf_export.h"
#include "io/hf_import.h"
#include "io/model_file.h"
#include "io/safetensors_set.h"
#include "model/param_layout.h"
#include "train/loaded_model.h"
#include "user_error_message.h"

using namespace llmpi;
using llmpi::testing::message_of;
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

class HfInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("llmpi_hf_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Tokenizer().save(path("bytes.bpe"));  // 257 ids: 256 bytes + <|endoftext|>
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& n) const { return (dir_ / n).string(); }

  // A model file of `m` whose every value is random (norm gains around 1), tokenizer bytes.bpe.
  std::string write_model(const ModelConfig& m, const std::string& name, uint64_t seed = 5) {
    Config c;
    c.model = m;
    c.train.steps = 1;
    c.train.batch_size = 1;
    c.train.seq_len = m.max_seq_len;
    c.data.train = "none";
    c.data.tokenizer = path("bytes.bpe");
    const Config checked = parse_config(to_toml(c), "test");
    auto be = make_host_backend();
    ParamStore store(*be, transformer_params(m, StageRange::full(m)), DType::f32);
    float* base = store.master().ptr<float>();
    for (const ParamInfo& p : store.params()) {
      const bool gain = p.name.find("norm.weight") != std::string::npos;
      for (int64_t i = 0; i < p.numel(); ++i)
        base[p.offset + i] = float((gain ? 1.0 : 0.0) + 0.3 * rng_normal(rng_key(seed, p.name), uint64_t(i)));
    }
    ModelFileMeta meta;
    meta.config_toml = checked.source_text;
    save_model_file(path(name), MPI_COMM_NULL, *be, store, meta);
    return path(name);
  }
  fs::path dir_;
};

ModelConfig gpt2_config(int64_t vocab = 257) {
  ModelConfig c;
  c.arch = Arch::gpt2;
  c.vocab_size = vocab;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 4;
  c.d_model = 16;
  c.d_ff = 48;
  c.max_seq_len = 12;
  c.tied_embeddings = true;
  return c;
}

ModelConfig llama_config(bool tied = false) {
  ModelConfig c;
  c.arch = Arch::llama;
  c.vocab_size = 257;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;  // GQA: two query heads per kv head
  c.d_model = 32;
  c.d_ff = 40;
  c.max_seq_len = 16;
  c.rope_theta = 500.0;
  c.norm_eps = 1e-6;
  c.tied_embeddings = tied;
  return c;
}

std::vector<float> param(const LoadedModel& lm, const std::string& name) {
  const ParamInfo& p = lm.store->info(name);
  const float* b = lm.store->master().ptr<float>() + p.offset;
  return std::vector<float>(b, b + p.numel());
}

std::string file_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// llmpi's logits [T, V] of `ids` for a model file.
std::vector<float> llmpi_logits(const std::string& model, const std::vector<int32_t>& ids) {
  auto be = make_host_backend();
  LoadedModel lm = load_model(model, *be);
  const int64_t T = int64_t(ids.size()), V = lm.config.model.vocab_size;
  Activations acts = lm.model->alloc_activations(*be, 1, T);
  Buffer b = be->alloc(Shape{T}, DType::i32);
  be->copy(b, Tensor{const_cast<int32_t*>(ids.data()), Shape{T}, DType::i32, Device::host});
  lm.model->forward(*be, acts, b);
  std::vector<float> out;
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<float> row = lm.model->logits_at(*be, acts, t);
    out.insert(out.end(), row.begin(), row.begin() + V);
  }
  return out;
}

// The numpy reference's logits of the exported directory.
std::vector<float> numpy_logits(const std::string& dir, const std::vector<int32_t>& ids, size_t n) {
  const std::string out = dir + "/numpy_logits.f32";
  std::string cmd = "/usr/bin/python3 " + std::string(LLMPI_SOURCE_DIR) + "/tests/hf/numpy_forward.py " + dir + " " + out;
  for (int32_t i : ids) cmd += " " + std::to_string(i);
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<float> v(n);
  std::ifstream f(out, std::ios::binary);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(n * sizeof(float)));
  EXPECT_EQ(size_t(f.gcount()), n * sizeof(float)) << "numpy reference output";
  fs::remove(out);
  return v;
}

}  // namespace

TEST_F(HfInterop, Gpt2ConventionsAndBitwiseRoundTrips) {
  const std::string model = write_model(gpt2_config(), "gpt2.h5");
  HfExportOptions o;
  o.out_dir = path("hf");
  const HfExportReport r = export_hf(model, o);
  EXPECT_EQ(r.vocab_rows, 257);
  EXPECT_EQ(r.padding_rows, 0);
  Json cfg;
  std::ifstream(path("hf/config.json")) >> cfg;
  EXPECT_EQ(cfg["architectures"][0], "GPT2LMHeadModel");
  for (const char* k : {"n_embd", "n_layer", "n_head", "n_positions", "n_inner", "activation_function",
                        "layer_norm_epsilon", "vocab_size", "tie_word_embeddings", "torch_dtype"})
    EXPECT_TRUE(cfg.contains(k)) << k;
  EXPECT_EQ(cfg["n_inner"], 48);
  EXPECT_EQ(cfg["activation_function"], "gelu_new");
  EXPECT_EQ(cfg["eos_token_id"], 256);
  for (const char* f : {"generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::exists(fs::path(o.out_dir) / f)) << f;

  // Conventions, by hand: c_attn = [q | k | v] transposed to [in, out]; c_fc transposed;
  // the tied head is not written.
  auto be = make_host_backend();
  const LoadedModel lm = load_model(model, *be);
  const SafetensorsSet st(o.out_dir);
  EXPECT_FALSE(st.contains("lm_head.weight"));
  const int64_t C = 16;
  const std::vector<float> c_attn = st.read_f32("transformer.h.1.attn.c_attn.weight");
  EXPECT_EQ(st.entry("transformer.h.1.attn.c_attn.weight").shape, (std::vector<int64_t>{C, 3 * C}));
  const std::vector<float> q = param(lm, "layers.1.attn.q.weight"), k = param(lm, "layers.1.attn.k.weight"),
                           v = param(lm, "layers.1.attn.v.weight");
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < C; ++j) {
      ASSERT_EQ(c_attn[size_t(c * 3 * C + j)], q[size_t(j * C + c)]);
      ASSERT_EQ(c_attn[size_t(c * 3 * C + C + j)], k[size_t(j * C + c)]);
      ASSERT_EQ(c_attn[size_t(c * 3 * C + 2 * C + j)], v[size_t(j * C + c)]);
    }
  const std::vector<float> c_fc = st.read_f32("transformer.h.0.mlp.c_fc.weight");
  const std::vector<float> up = param(lm, "layers.0.mlp.up.weight");  // [F, C]
  EXPECT_EQ(c_fc[size_t(3 * 48 + 7)], up[size_t(7 * C + 3)]);
  EXPECT_EQ(st.read_f32("transformer.h.0.attn.c_attn.bias")[size_t(C + 2)], param(lm, "layers.0.attn.k.bias")[2]);

  // llmpi → HF → llmpi: bitwise.
  import_hf(o.out_dir, path("back.h5"));
  const LoadedModel back = load_model(path("back.h5"), *be);
  ASSERT_EQ(back.config.model, lm.config.model);
  for (const ParamInfo& p : lm.store->params()) ASSERT_EQ(param(back, p.name), param(lm, p.name)) << p.name;
  // HF → llmpi → HF: the same bytes.
  HfExportOptions o2 = o;
  o2.out_dir = path("hf2");
  export_hf(path("back.h5"), o2);
  EXPECT_EQ(file_bytes(path("hf/model.safetensors")), file_bytes(path("hf2/model.safetensors")));
  EXPECT_EQ(file_bytes(path("hf/tokenizer.json")), file_bytes(path("hf2/tokenizer.json")));
}

TEST_F(HfInterop, LlamaGqaUntiedNamesAndShardedBf16RoundTrip) {
  const std::string model = write_model(llama_config(), "llama.h5");
  HfExportOptions o;
  o.out_dir = path("hf");
  export_hf(model, o);
  Json cfg;
  std::ifstream(path("hf/config.json")) >> cfg;
  EXPECT_EQ(cfg["architectures"][0], "LlamaForCausalLM");
  for (const char* k : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                        "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "tie_word_embeddings",
                        "max_position_embeddings", "vocab_size", "torch_dtype", "architectures"})
    EXPECT_TRUE(cfg.contains(k)) << k;
  EXPECT_EQ(cfg["num_key_value_heads"], 2);
  EXPECT_EQ(cfg["head_dim"], 8);
  EXPECT_EQ(cfg["tie_word_embeddings"], false);
  auto be = make_host_backend();
  const LoadedModel lm = load_model(model, *be);
  const SafetensorsSet st(o.out_dir);
  EXPECT_EQ(st.entry("model.layers.0.self_attn.k_proj.weight").shape, (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(st.read_f32("model.layers.0.self_attn.k_proj.weight"), param(lm, "layers.0.attn.k.weight"));
  EXPECT_EQ(st.read_f32("lm_head.weight"), param(lm, "head.weight"));
  EXPECT_EQ(st.read_f32("model.layers.1.mlp.gate_proj.weight"), param(lm, "layers.1.mlp.gate.weight"));

  // bf16 in shards of at most 8 KiB: HF → llmpi → HF gives the same files.
  HfExportOptions b = o;
  b.out_dir = path("bf16");
  b.dtype = StDtype::bf16;
  b.max_shard_bytes = 8192;
  const HfExportReport rb = export_hf(model, b);
  EXPECT_GT(rb.files.size(), 6u);
  EXPECT_TRUE(fs::exists(path("bf16/model.safetensors.index.json")));
  Json bcfg;
  std::ifstream(path("bf16/config.json")) >> bcfg;
  EXPECT_EQ(bcfg["torch_dtype"], "bfloat16");
  import_hf(b.out_dir, path("from_bf16.h5"));
  HfExportOptions b2 = b;
  b2.out_dir = path("bf16_again");
  const HfExportReport rb2 = export_hf(path("from_bf16.h5"), b2);
  ASSERT_EQ(rb2.files, rb.files);
  for (const std::string& f : rb.files)
    EXPECT_EQ(file_bytes(b.out_dir + "/" + f), file_bytes(b2.out_dir + "/" + f)) << f;
  // The bf16 values are the f32 ones rounded.
  const LoadedModel lb = load_model(path("from_bf16.h5"), *be);
  const std::vector<float> w = param(lm, "layers.1.attn.out.weight"), wb = param(lb, "layers.1.attn.out.weight");
  for (size_t i = 0; i < w.size(); ++i) ASSERT_NEAR(wb[i], w[i], std::fabs(w[i]) * 4e-3);
}

TEST_F(HfInterop, PaddingRowsAreTrimmedToTheTokenizer) {
  const std::string model = write_model(gpt2_config(320), "padded.h5");
  HfExportOptions o;
  o.out_dir = path("hf");
  const HfExportReport r = export_hf(model, o);
  EXPECT_EQ(r.vocab_rows, 257);
  EXPECT_EQ(r.padding_rows, 63);
  const SafetensorsSet st(o.out_dir);
  EXPECT_EQ(st.entry("transformer.wte.weight").shape, (std::vector<int64_t>{257, 16}));
  import_hf(o.out_dir, path("back.h5"));
  auto be = make_host_backend();
  const LoadedModel a = load_model(model, *be), b = load_model(path("back.h5"), *be);
  EXPECT_EQ(b.config.model.vocab_size, 257);
  const std::vector<float> ta = param(a, "embed.tokens"), tb = param(b, "embed.tokens");
  EXPECT_TRUE(std::equal(tb.begin(), tb.end(), ta.begin()));
  // Without a tokenizer nothing is trimmed, and the report says why.
  HfExportOptions n = o;
  n.out_dir = path("hf_notok");
  fs::remove(path("bytes.bpe"));
  const HfExportReport rn = export_hf(model, n);
  EXPECT_EQ(rn.vocab_rows, 320);
  EXPECT_NE(rn.tokenizer_note.find("does not exist"), std::string::npos) << rn.tokenizer_note;
  EXPECT_FALSE(fs::exists(path("hf_notok/tokenizer.json")));
}

// The regular files under dir, relative names, sorted.
std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(e.path().lexically_relative(dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

// The safetensors set files (io/safetensors_set.h) in a directory, sorted.
std::vector<std::string> set_files(const std::string& dir) {
  std::vector<std::string> out = files_under(dir);
  std::erase_if(out, [](const std::string& f) { return !is_safetensors_set_file(f); });
  return out;
}

TEST_F(HfInterop, ReExportsSwitchLayoutsLeavingOneConsistentSet) {
  const std::string model = write_model(gpt2_config(), "gpt2.h5");
  HfExportOptions o;
  o.out_dir = path("hf");
  export_hf(model, o);
  const SafetensorsSet single(o.out_dir);
  std::map<std::string, std::vector<float>> want;
  for (const std::string& n : single.names()) want[n] = single.read_f32(n);
  // single -> k shards -> m > k shards (every "-of-k" shard removed) -> k shards -> single.
  std::vector<size_t> counts;
  for (const uint64_t max : {uint64_t(8192), uint64_t(4096), uint64_t(8192), kDefaultMaxShardBytes}) {
    o.max_shard_bytes = max;
    const HfExportReport r = export_hf(model, o);
    std::vector<std::string> written;
    for (const std::string& f : r.files)
      if (is_safetensors_set_file(f)) written.push_back(f);
    std::sort(written.begin(), written.end());
    EXPECT_EQ(set_files(o.out_dir), written) << "max " << max;
    counts.push_back(written.size());
    const SafetensorsSet set(o.out_dir);
    ASSERT_EQ(set.names().size(), want.size());
    for (const auto& [n, v] : want) ASSERT_EQ(set.read_f32(n), v) << n << ", max " << max;
  }
  EXPECT_GT(counts[0], 2u);
  EXPECT_GT(counts[1], counts[0]);
  EXPECT_EQ(counts[3], 1u);
}

// A re-export into export-hf's own directory leaves exactly what it reports: the tokenizer
// files of an earlier export with a tokenizer are removed when this one has none. Into someone
// else's directory (--force) a file of those names that the export does not write is theirs:
// left as it was.
TEST_F(HfInterop, ReExportsRemoveTheirEarlierFilesButNeverAnotherDirectorysFiles) {
  const std::string model = write_model(gpt2_config(), "gpt2.h5");
  HfExportOptions o;
  o.out_dir = path("hf");
  export_hf(model, o);
  ASSERT_TRUE(fs::exists(path("hf/tokenizer.json")));
  fs::remove(path("bytes.bpe"));  // the model's data.tokenizer: the next exports have none
  const HfExportReport r = export_hf(model, o);
  std::vector<std::string> listed = r.files;
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(files_under(o.out_dir), listed);
  EXPECT_FALSE(fs::exists(path("hf/tokenizer.json")));

  fs::create_directories(path("theirs"));
  std::ofstream(path("theirs/tokenizer.json")) << "their tokenizer\n";
  o.out_dir = path("theirs");
  o.force = true;
  export_hf(model, o);
  EXPECT_EQ(file_bytes(path("theirs/tokenizer.json")), "their tokenizer\n");
  EXPECT_TRUE(fs::exists(path("theirs/model.safetensors")));
}

TEST_F(HfInterop, ForcedExportIntoAnotherDirectoryNeverDeletesItsWeights) {
  const std::string model = write_model(gpt2_config(), "gpt2.h5");
  const std::string theirs = path("theirs");
  fs::create_directories(theirs);
  // Only names export-hf writes, but not its weights (they lack its mark): not its output.
  std::map<std::string, std::string> before = {
      {"model-00001-of-00003.safetensors", "their first shard\n"},
      {"model.safetensors.index.json", "{\"weight_map\": {\"w\": \"model-00001-of-00003.safetensors\"}}\n"}};
  for (const auto& [n, text] : before) std::ofstream(theirs + "/" + n) << text;
  auto untouched = [&] {
    std::map<std::string, std::string> now;
    for (const auto& e : fs::directory_iterator(theirs)) now[e.path().filename().string()] = file_bytes(e.path().string());
    EXPECT_EQ(now, before) << "the directory changed";
  };
  HfExportOptions o;
  o.out_dir = theirs;
  // A single model.safetensors would leave their shard and index stale: refused, even forced.
  for (const bool force : {false, true}) {
    o.force = force;
    const std::string msg = message_of([&] { export_hf(model, o); });
    EXPECT_NE(msg.find(theirs + "/model-00001-of-00003.safetensors: exists and is not a file of an earlier export-hf"),
              std::string::npos) << msg;
    EXPECT_NE(msg.find("this export writes its weights as one model.safetensors, so this file would be left stale"),
              std::string::npos) << msg;
    EXPECT_NE(msg.find("--force replaces files, never deletes one"), std::string::npos) << msg;
    untouched();
  }
  fs::remove(theirs + "/model-00001-of-00003.safetensors");
  before.erase("model-00001-of-00003.safetensors");
  const std::string msg = message_of([&] { export_hf(model, o); });
  EXPECT_NE(msg.find(theirs + "/model.safetensors.index.json: exists and is not"), std::string::npos) << msg;
  untouched();
  // Their single file (a valid one, as transformers writes it, without export-hf's mark), where
  // this export writes shards: refused as well.
  fs::remove(theirs + "/model.safetensors.index.json");
  before.erase("model.safetensors.index.json");
  write_safetensors_set(theirs, {{"w", StDtype::f32, {2}}}, [](const StSpec&) {
    return encode_f32(std::vector<float>{1.0f, 2.0f}, StDtype::f32);
  }, kDefaultMaxShardBytes, {{"format", "pt"}});
  before["model.safetensors"] = file_bytes(theirs + "/model.safetensors");
  o.max_shard_bytes = 8192;
  const std::string sharded = message_of([&] { export_hf(model, o); });
  EXPECT_NE(sharded.find(theirs + "/model.safetensors: exists and is not"), std::string::npos) << sharded;
  EXPECT_NE(sharded.find(" shards with model.safetensors.index.json, so this file would be left stale"),
            std::string::npos) << sharded;
  untouched();
  // What save_pretrained writes, names export-hf writes too: not taken for its own.
  before["config.json"] = "{}\n";
  std::ofstream(theirs + "/config.json") << before["config.json"];
  o.max_shard_bytes = kDefaultMaxShardBytes;
  o.force = false;
  const std::string plain = message_of([&] { export_hf(model, o); });
  EXPECT_NE(plain.find(theirs + "/config.json: exists and is not a file of an earlier export-hf"),
            std::string::npos) << plain;
  untouched();
  // A file it rewrites is replaced with --force (the same layout): nothing else is touched.
  before["README.md"] = "their model\n";
  std::ofstream(theirs + "/README.md") << before["README.md"];
  o.force = true;
  export_hf(model, o);
  export_hf(model, HfExportOptions{path("mine"), StDtype::f32, kDefaultMaxShardBytes, ""});
  EXPECT_EQ(file_bytes(theirs + "/model.safetensors"), file_bytes(path("mine/model.safetensors")));
  EXPECT_EQ(file_bytes(theirs + "/README.md"), before["README.md"]);
  EXPECT_EQ(set_files(theirs), std::vector<std::string>{"model.safetensors"});
}

TEST_F(HfInterop, AnInterruptedExportsTemporaryIsReplacedOnlyWithForce) {
  const std::string model = write_model(gpt2_config(), "gpt2.h5");
  HfExportOptions o;
  o.out_dir = path("hf");
  export_hf(model, o);
  const std::string weights = file_bytes(path("hf/model.safetensors"));
  std::ofstream(path("hf/model.safetensors.tmp")) << "half a file\n";
  const std::string msg = message_of([&] { export_hf(model, o); });
  EXPECT_NE(msg.find(path("hf/model.safetensors.tmp") + ": exists; it is the temporary llmpi writes"),
            std::string::npos) << msg;
  EXPECT_NE(msg.find("Pass --force to replace it"), std::string::npos) << msg;
  EXPECT_EQ(file_bytes(path("hf/model.safetensors.tmp")), "half a file\n");
  EXPECT_EQ(file_bytes(path("hf/model.safetensors")), weights);
  o.force = true;
  export_hf(model, o);
  EXPECT_FALSE(fs::exists(path("hf/model.safetensors.tmp")));
  EXPECT_EQ(file_bytes(path("hf/model.safetensors")), weights);
}

TEST_F(HfInterop, NumpyReferenceOnExportedFilesMatchesLlmpiLogits) {
  const std::vector<int32_t> ids = {256, 72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100};
  struct Case {
    std::string name;
    ModelConfig m;
    StDtype dtype;
    uint64_t shard;
  };
  const std::vector<Case> cases = {{"gpt2_tied", gpt2_config(), StDtype::f32, kDefaultMaxShardBytes},
                                   {"gpt2_untied", [] { auto m = gpt2_config(); m.tied_embeddings = false; return m; }(),
                                    StDtype::f32, 4096},
                                   {"llama_gqa", llama_config(), StDtype::f32, 4096},
                                   {"llama_tied", llama_config(true), StDtype::f32, kDefaultMaxShardBytes}};
  for (const Case& c : cases) {
    const std::string model = write_model(c.m, c.name + ".h5");
    HfExportOptions o;
    o.out_dir = path(c.name);
    o.dtype = c.dtype;
    o.max_shard_bytes = c.shard;
    export_hf(model, o);
    const std::vector<float> want = llmpi_logits(model, ids);
    const std::vector<float> got = numpy_logits(o.out_dir, ids, want.size());
    double worst = 0.0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, double(std::fabs(got[i] - want[i])));
    EXPECT_LE(worst, 1e-5) << c.name;
    std::printf("%s: max |numpy - llmpi| = %.3g over %zu logits\n", c.name.c_str(), worst, want.size());
    double scale = 0.0;
    for (float v : want) scale = std::max(scale, double(std::fabs(v)));
    EXPECT_GT(scale, 0.5) << c.name << ": logits too small to compare meaningfully";
  }
}

TEST_F(HfInterop, MalformedModelDirectoriesAreRefusedNamingTheKey) {
  export_hf(write_model(llama_config(), "llama.h5"), HfExportOptions{path("llama"), StDtype::f32, kDefaultMaxShardBytes, ""});
  export_hf(write_model(gpt2_config(), "gpt2.h5"), HfExportOptions{path("gpt2"), StDtype::f32, kDefaultMaxShardBytes, ""});
  struct Case {
    std::string base, what;
    std::function<void(Json&)> edit_config;
    std::function<void(const std::string& dir)> edit_files;
    std::string fragment;
  };
  auto add_tensor = [](const std::string& name, std::vector<int64_t> shape, StDtype dtype = StDtype::f32) {
    return [=](const std::string& dir) {
      const SafetensorsSet old(dir);
      std::vector<StSpec> specs;
      for (const std::string& n : old.names()) specs.push_back({n, StDtype::f32, old.entry(n).shape});
      specs.push_back({name, dtype, shape});
      fs::create_directories(dir + ".new");
      write_safetensors_set(dir + ".new", specs, [&](const StSpec& s) {
        if (s.name == name) return std::vector<uint8_t>(size_t(StEntry{s.name, s.dtype, s.shape}.numel() * st_dtype_size(s.dtype)), 0);
        return encode_f32(old.read_f32(s.name), StDtype::f32);
      });
      fs::rename(dir + ".new/model.safetensors", dir + "/model.safetensors");
    };
  };
  // Rewrites the single model.safetensors with values[index] of tensor `name` set to v.
  auto set_value = [](const std::string& name, size_t index, float v) {
    return [=](const std::string& dir) {
      const SafetensorsFile old(dir + "/model.safetensors");
      std::vector<StSpec> specs;
      for (const StEntry& e : old.header().tensors) specs.push_back({e.name, e.dtype, e.shape});
      fs::create_directories(dir + ".new");
      write_safetensors_set(dir + ".new", specs, [&](const StSpec& s) {
        std::vector<float> values = old.read_f32(*old.find(s.name));
        if (s.name == name) values.at(index) = v;
        return encode_f32(values, s.dtype);
      });
      fs::rename(dir + ".new/model.safetensors", dir + "/model.safetensors");
    };
  };
  auto none = [](Json&) {};
  const std::vector<Case> cases = {
      {"llama", "architecture", [](Json& j) { j["architectures"] = {"MistralForCausalLM"}; }, {}, "architectures: \"MistralForCausalLM\" is not supported"},
      {"llama", "rope scaling", [](Json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; }, {}, "rope_scaling: {\"factor\":2.0,\"type\":\"linear\"} is not supported"},
      {"llama", "attention bias", [](Json& j) { j["attention_bias"] = true; }, {}, "attention_bias: true is not supported"},
      {"llama", "mlp bias", [](Json& j) { j["mlp_bias"] = true; }, {}, "mlp_bias: true is not supported"},
      {"llama", "activation", [](Json& j) { j["hidden_act"] = "gelu"; }, {}, "hidden_act: \"gelu\" is not supported"},
      {"llama", "head_dim", [](Json& j) { j["head_dim"] = 16; }, {}, "head_dim: 16 is not hidden_size / num_attention_heads = 8"},
      {"llama", "heads", [](Json& j) { j["num_key_value_heads"] = 3; }, {}, "inconsistent"},
      {"llama", "missing key", [](Json& j) { j.erase("hidden_size"); }, {}, "hidden_size: missing"},
      {"llama", "bias tensor", none, add_tensor("model.layers.0.self_attn.q_proj.bias", {32}), "model.layers.0.self_attn.q_proj.bias\" is not part of a llama llmpi can hold (Llama has no biases"},
      {"llama", "shape", [](Json& j) { j["intermediate_size"] = 41; }, {}, "model.layers.0.mlp.gate_proj.weight\" has shape [40, 32] but config.json implies [41, 32]"},
      {"llama", "untied flag", [](Json& j) { j["tie_word_embeddings"] = true; }, {}, "tie_word_embeddings = true, but this head differs"},
      {"llama", "missing head", none, [](const std::string& dir) {
         const SafetensorsSet old(dir);
         std::vector<StSpec> specs;
         for (const std::string& n : old.names()) if (n != "lm_head.weight") specs.push_back({n, StDtype::f32, old.entry(n).shape});
         fs::create_directories(dir + ".new");
         write_safetensors_set(dir + ".new", specs, [&](const StSpec& s) { return encode_f32(old.read_f32(s.name), StDtype::f32); });
         fs::rename(dir + ".new/model.safetensors", dir + "/model.safetensors");
       }, "tensor \"lm_head.weight\" is missing"},
      {"gpt2", "activation", [](Json& j) { j["activation_function"] = "gelu"; }, {}, "activation_function: \"gelu\" is not supported"},
      {"gpt2", "cross attention", [](Json& j) { j["add_cross_attention"] = true; }, {}, "add_cross_attention: true is not supported"},
      {"gpt2", "integer weights", none, add_tensor("transformer.h.0.attn.bias", {1, 1, 12, 12}, StDtype::boolean), "(no UserError)"},
      {"gpt2", "unknown tensor", none, add_tensor("transformer.h.0.attn.c_attn.lora_A", {4, 16}), "lora_A\" is not part of a gpt2"},
      {"gpt2", "not json", [](Json& j) { j = "oops"; }, {}, "expected a JSON object"},
      // Values of the wrong JSON type inside lists and objects, and a layer count far above
      // the tensors held (it was listed layer by layer first: hours and all memory).
      {"gpt2", "eos list of strings", [](Json& j) { j["eos_token_id"] = {"a"}; }, {}, "eos_token_id: expected a token id or a list of them, got [\"a\"]"},
      {"gpt2", "bos list of null", [](Json& j) { j["bos_token_id"] = Json::array({nullptr}); }, {}, "bos_token_id: expected a token id"},
      {"llama", "rope_type a number", [](Json& j) { j["rope_parameters"] = {{"rope_type", 5}}; }, {}, "rope_parameters: {\"rope_type\":5} is not supported"},
      {"llama", "rope_theta a string", [](Json& j) { j["rope_parameters"] = {{"rope_theta", "x"}}; }, {}, "rope_parameters.rope_theta: expected a positive number, got \"x\""},
      {"gpt2", "layer count", [](Json& j) { j["n_layer"] = int64_t(1) << 40; }, {}, "n_layer = 1099511627776 but the safetensors hold"},
      {"llama", "layer count", [](Json& j) { j["num_hidden_layers"] = int64_t(1) << 40; }, {}, "num_hidden_layers = 1099511627776 but the safetensors hold"},
      // What transformers computes differently although every tensor fits: RoPE over part of
      // each head, quantized weights.
      {"llama", "partial rotary", [](Json& j) { j["partial_rotary_factor"] = 0.5; }, {}, "partial_rotary_factor: 0.5 is not supported"},
      {"llama", "partial rotary in rope_parameters", [](Json& j) { j["rope_parameters"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.25}}; }, {}, "rope_parameters.partial_rotary_factor: 0.25 is not supported"},
      {"gpt2", "quantized", [](Json& j) { j["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}}; }, {}, "quantization_config: a quantized model (quant_method \"gptq\") is not supported"},
      // Weights that are not finite (imported silently: every logit of the model was NaN).
      {"llama", "NaN weight", none, set_value("model.layers.1.self_attn.k_proj.weight", 7, std::nanf("")), "tensor \"model.layers.1.self_attn.k_proj.weight\" holds 1 NaN or infinite value (the first at flat index 7: nan)"},
      {"gpt2", "infinite embedding", none, set_value("transformer.wte.weight", 3, -INFINITY), "tensor \"transformer.wte.weight\" holds 1 NaN or infinite value (the first at flat index 3: -inf)"},
  };
  for (const Case& c : cases) {
    const std::string dir = path("case");
    fs::remove_all(dir);
    fs::remove_all(dir + ".new");
    fs::copy(path(c.base), dir);
    if (c.edit_config) {
      Json j;
      std::ifstream(dir + "/config.json") >> j;
      c.edit_config(j);
      std::ofstream(dir + "/config.json") << j.dump();
    }
    if (c.edit_files) c.edit_files(dir);
    const std::string msg = message_of([&] { import_hf(dir, path("out.h5")); });
    EXPECT_NE(msg.find(c.fragment), std::string::npos) << c.what << ": " << msg;
    if (c.fragment != "(no UserError)") EXPECT_NE(msg.find(dir), std::string::npos) << c.what << ": " << msg;
  }
  // --out naming a directory is refused before anything is written beside it (it left
  // DIR.tmp, 4 MB, and DIR.tokenizer.json in DIR's parent).
  const std::string out_dir = path("an-existing-dir");
  fs::create_directories(out_dir);
  EXPECT_NE(message_of([&] { import_hf(path("gpt2"), out_dir); }).find(out_dir + ": is a directory"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(out_dir + ".tmp"));
  EXPECT_FALSE(fs::exists(out_dir + ".tokenizer.json"));
  // An empty --out wrote ".tokenizer.json" into the working directory before failing; an
  // output directory that does not exist was found only after the conversion; a file given as
  // the model directory was parsed as its config.json ("model.safetensors: not valid JSON").
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);  // where a relative ".tokenizer.json" would land
  EXPECT_NE(message_of([&] { import_hf(path("gpt2"), ""); }).find("missing --out"), std::string::npos);
  fs::current_path(cwd);
  EXPECT_FALSE(fs::exists(path(".tokenizer.json")));
  EXPECT_NE(message_of([&] { import_hf(path("gpt2"), path("no-such-dir/m.h5")); })
                .find("the directory " + path("no-such-dir") + " does not exist"), std::string::npos);
  const std::string weights = path("gpt2") + "/model.safetensors";
  EXPECT_NE(message_of([&] { import_hf(weights, path("w.h5")); }).find(weights + ": not a directory"),
            std::string::npos);
  // A model save that fails leaves no tokenizer behind: written first, it stood beside no
  // model file, so the rerun refused it without --force. (A name of 255 bytes whose temporary,
  // NAME.tmp, is too long for the file system: the save fails, the tokenizer path is short.)
  const std::string long_name = path("m." + std::string(253, 'x'));
  EXPECT_NE(message_of([&] { import_hf(path("gpt2"), long_name); }), "(no UserError)");
  EXPECT_FALSE(fs::exists(path("m.tokenizer.json")));
}

TEST_F(HfInterop, ATokenizerLlmpiCannotReadIsRefusedUnlessTheWeightsAloneAreAsked) {
  // Llama 2 / TinyLlama ship a SentencePiece-style BPE (byte_fallback, a normalizer): such a
  // directory could not be imported at all, and nothing said how to get its weights.
  export_hf(write_model(llama_config(), "llama.h5"), HfExportOptions{path("llama"), StDtype::f32, kDefaultMaxShardBytes, ""});
  Json j;
  std::ifstream(path("llama/tokenizer.json")) >> j;
  j["model"]["byte_fallback"] = true;
  std::ofstream(path("llama/tokenizer.json")) << j.dump();
  const std::string msg = message_of([&] { import_hf(path("llama"), path("m.h5")); });
  EXPECT_NE(msg.find(path("llama/tokenizer.json") + ": model.byte_fallback: true is not supported"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--no-tokenizer imports the weights alone"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(path("m.h5")));
  const HfImportReport r = import_hf(path("llama"), path("m.h5"), /*force=*/false, /*with_tokenizer=*/false);
  EXPECT_TRUE(r.tokenizer_path.empty());
  EXPECT_FALSE(fs::exists(path("m.tokenizer.json")));
  auto be = make_host_backend();
  const LoadedModel lm = load_model(path("m.h5"), *be);
  EXPECT_EQ(lm.config.data.tokenizer, "");
  EXPECT_EQ(param(lm, "layers.1.mlp.up.weight"), param(load_model(path("llama.h5"), *be), "layers.1.mlp.up.weight"));
}
