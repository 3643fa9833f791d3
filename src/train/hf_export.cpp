// export_hf: read the model file's global tensors on the host, write the HF directory.
#include "train/hf_export.h"

#include <filesystem>
#include <optional>
#include <set>

#include "backend/backend.h"
#include "core/error.h"
#include "core/output_rule.h"
#include "core/text_file.h"
#include "data/hf_tokenizer.h"
#include "io/hf_config.h"
#include "io/hf_weights.h"
#include "train/loaded_model.h"
#include "train/peft_export.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

// The files export-hf writes into its directory (adapter/ only with a LoRA); the safetensors
// set also removes the other layout's files: model.safetensors, the index, model-*.safetensors.
constexpr const char* kExportFiles[] = {
    "config.json",    "generation_config.json", "model.safetensors", "model.safetensors.index.json",
    "tokenizer.json", "tokenizer_config.json",  "vocab.json",        "merges.txt",
    "adapter/adapter_config.json", "adapter/adapter_model.safetensors"};

bool is_weight_shard(const fs::path& p) {
  return p.filename().string().rfind("model-", 0) == 0 && p.extension() == ".safetensors";
}

// export-hf's own earlier output: a directory holding nothing but what export-hf writes, its
// weights among them (model.safetensors or the shard index).
bool is_export_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / "model.safetensors", ec) &&
      !fs::is_regular_file(dir / "model.safetensors.index.json", ec))
    return false;
  std::set<fs::path> ours(std::begin(kExportFiles), std::end(kExportFiles));
  ours.insert("adapter");
  for (auto e = fs::recursive_directory_iterator(dir, ec); !ec && e != fs::end(e);
       e.increment(ec)) {
    const fs::path rel = e->path().lexically_relative(dir);
    if (rel == "adapter" && !e->is_directory(ec)) return false;
    if (!ours.count(rel) && !(rel.parent_path().empty() && is_weight_shard(rel))) return false;
  }
  return !ec;
}

// The output rule (core/output_rule.h) for an export into `dir`: the files it writes or removes.
void claim_export_dir(const std::string& dir, bool force) {
  const fs::path d(dir);
  const bool ours = is_export_dir(d);  // decided once for every file of the directory
  OutputClaim c{dir, {}, "a file of an earlier export-hf (a directory holding only its files)",
                [ours](const std::string&) { return ours; }};
  for (const char* n : kExportFiles) c.files.push_back((d / n).string());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(d, ec))
    if (is_weight_shard(e.path())) c.files.push_back(e.path().string());
  claim_outputs(c, force);
}

const char* torch_dtype_name(StDtype d) {
  return d == StDtype::bf16 ? "bfloat16" : d == StDtype::f16 ? "float16" : "float32";
}

}  // namespace

HfExportReport export_hf(const std::string& model_or_run, const HfExportOptions& o) {
  if (o.out_dir.empty()) user_error("export-hf: missing --out DIR");
  if (o.dtype != StDtype::f32 && o.dtype != StDtype::bf16 && o.dtype != StDtype::f16)
    user_error("export-hf: --dtype must be f32, bf16 or f16");
  auto be = make_host_backend();
  const LoadedModel lm = load_model(model_or_run, *be);
  HfExportReport rep;
  rep.model_path = lm.path;
  const ModelConfig& mc = lm.config.model;

  std::optional<Tokenizer> tok;
  std::string tpath = o.tokenizer.empty() ? lm.config.data.tokenizer : o.tokenizer;
  if (!o.tokenizer.empty()) {
    tok = load_tokenizer(tpath);
  } else if (!tpath.empty() && fs::exists(tpath)) {
    tok = load_tokenizer(tpath);
  } else {
    rep.tokenizer_note = tpath.empty() ? "the model's config names no tokenizer"
                                       : "the model's data.tokenizer " + tpath + " does not exist here";
    tpath.clear();
  }
  const int64_t V = mc.vocab_size;
  const int64_t real = tok ? tok->vocab_size() : V;
  if (real > V)
    user_error(tpath, ": the tokenizer has ", real, " tokens but the model's vocabulary only ", V);
  rep.tokenizer_path = tpath;
  rep.vocab_rows = real;
  rep.padding_rows = V - real;

  claim_export_dir(o.out_dir, o.force);
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (!fs::is_directory(o.out_dir)) user_error(o.out_dir, ": cannot create the output directory: ", ec.message());

  HfModelMeta meta;
  meta.model = mc;
  meta.model.vocab_size = real;
  meta.torch_dtype = torch_dtype_name(o.dtype);
  if (tok) meta.bos_token_id = meta.eos_token_id = tok->eot_id();
  const fs::path out(o.out_dir);
  write_text_atomically((out / "config.json").string(), hf_config_json(meta));
  write_text_atomically((out / "generation_config.json").string(), hf_generation_config_json(meta));
  rep.files = {"config.json", "generation_config.json"};

  // Parameter values straight from the host store (f32, global shapes).
  const float* base = lm.store->master().ptr<float>();
  auto param = [&](const std::string& name) {
    const ParamInfo& p = lm.store->info(name);
    GlobalTensor t;
    t.values = {base + p.offset, size_t(p.numel())};
    for (int d = 0; d < p.global_shape.ndim; ++d) t.shape.push_back(p.global_shape[d]);
    return t;
  };
  const std::vector<HfTensorMap> maps = hf_tensor_map(mc, real);
  std::vector<StSpec> specs;
  for (const HfTensorMap& m : maps) specs.push_back({m.hf_name, o.dtype, m.hf_shape});
  size_t next = 0;
  const ShardedWriteReport w = write_safetensors_set(
      o.out_dir, specs,
      [&](const StSpec& s) {
        const HfTensorMap& m = maps[next++];
        LLMPI_CHECK(m.hf_name == s.name, "export order");
        return encode_f32(hf_values(m, param), o.dtype);
      },
      o.max_shard_bytes);
  rep.files.insert(rep.files.end(), w.files.begin(), w.files.end());
  rep.tensor_bytes = w.total_bytes;

  if (lm.lora) {  // a LoRA run: its adapters in PEFT's format as well (merged above)
    const std::vector<std::string> f = write_peft_adapter(*lm.lora, real, o.out_dir, o.dtype);
    rep.files.insert(rep.files.end(), f.begin(), f.end());
  }
  if (tok) {
    write_hf_tokenizer(*tok, o.out_dir, TokenizerExport{mc.max_seq_len});
    rep.files.push_back("tokenizer.json");
    rep.files.push_back("tokenizer_config.json");
    if (tok->pretokenizer() == Pretokenizer::gpt2) {
      rep.files.push_back("vocab.json");
      rep.files.push_back("merges.txt");
    }
  }
  return rep;
}

}  // namespace llmpi
