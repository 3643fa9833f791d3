// export_hf: read the model file's global tensors on the host, write the HF directory.
#include "train/hf_export.h"

#include <filesystem>
#include <map>
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

// The files export-hf writes into its directory besides the weights (whose names depend on
// the layout: io/safetensors_set.h); adapter/ only with a LoRA, the tokenizer's with one.
constexpr const char* kExportFiles[] = {
    "config.json",    "generation_config.json", "tokenizer.json",
    "tokenizer_config.json", "vocab.json", "merges.txt",
    "adapter/adapter_config.json", "adapter/adapter_model.safetensors"};

// export-hf's mark in the metadata of every weight file it writes (each safetensors file's
// "__metadata__" and the index's "metadata"; "format": "pt" is what transformers requires).
const std::map<std::string, std::string> kWeightsMetadata = {{"format", "pt"},
                                                              {"writer", "llmpi export-hf"}};

bool has_export_mark(const fs::path& set_file) {
  const auto meta = set_file_metadata(set_file.string());
  const auto it = meta.find("writer");
  return it != meta.end() && it->second == kWeightsMetadata.at("writer");
}

// A name (relative to the export directory) that export-hf writes in some export.
bool is_export_name(const fs::path& rel) {
  static const std::set<fs::path> fixed(std::begin(kExportFiles), std::end(kExportFiles));
  return fixed.count(rel) || (rel.parent_path().empty() && is_safetensors_set_file(rel.string()));
}

// Such a name, or its temporary (temporary_of), which an interrupted export leaves.
bool is_export_entry(const fs::path& rel) {
  if (is_export_name(rel)) return true;
  const fs::path file = fs::path(rel).replace_extension();
  return temporary_of(file.string()) == rel.string() && is_export_name(file);
}

// export-hf's own earlier output: a directory holding its weights (model.safetensors or the
// shard index), every weight file of it marked as export-hf's (so neither a Hugging Face
// download nor save_pretrained's output is taken for one), and nothing but names export-hf
// writes and the temporaries of an interrupted export (claim_outputs refuses those without
// --force, whoever wrote them).
bool is_export_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / "model.safetensors", ec) &&
      !fs::is_regular_file(dir / "model.safetensors.index.json", ec))
    return false;
  for (auto e = fs::recursive_directory_iterator(dir, ec); !ec && e != fs::end(e);
       e.increment(ec)) {
    const fs::path rel = e->path().lexically_relative(dir);
    if (rel == "adapter" ? !e->is_directory(ec) : !is_export_entry(rel)) return false;
    if (rel.parent_path().empty() && is_safetensors_set_file(rel.string()) &&
        !has_export_mark(e->path()))
      return false;
  }
  return !ec;
}

// The files of kExportFiles one export writes: the config's two always, the tokenizer's with
// one (vocab.json and merges.txt for a GPT-2 pretokenizer), the adapter's with a LoRA.
std::set<std::string> extra_files_written(const Tokenizer* tok, bool lora) {
  std::set<std::string> out = {"config.json", "generation_config.json"};
  if (tok) out.insert({"tokenizer.json", "tokenizer_config.json"});
  if (tok && tok->pretokenizer() == Pretokenizer::gpt2) out.insert({"vocab.json", "merges.txt"});
  if (lora) out.insert({"adapter/adapter_config.json", "adapter/adapter_model.safetensors"});
  return out;
}

// The output rule (core/output_rule.h) for an export of `weights` and `extras` into `dir`:
// the files it writes, and what its own earlier export there holds that this one does not
// write (the other weight layout; a tokenizer or adapter it no longer has): removed, as left
// in place they would be stale. In any other directory, even with --force, the other weight
// layout is refused and its other files are not touched (they are someone else's). Returns
// the files of kExportFiles to remove once the export is complete.
std::vector<std::string> claim_export_dir(const std::string& dir, const SafetensorsLayout& weights,
                                          const std::set<std::string>& extras, bool force) {
  const fs::path d(dir);
  const bool ours = is_export_dir(d);  // decided once for every file of the directory
  OutputClaim c{dir, {}, "a file of an earlier export-hf (a directory holding only its files, "
                "its weights marked as export-hf's)",
                [ours](const std::string&) { return ours; }};
  for (const std::string& n : extras) c.files.push_back((d / n).string());
  for (const std::string& n : weights.files) c.files.push_back((d / n).string());
  c.removes = stale_safetensors_files(dir, weights);
  c.removes_why = "this export writes its weights as " + weights.describe() +
                  ", so this file would be left stale beside them (a directory that reads "
                  "inconsistently)";
  claim_outputs(c, force);
  std::vector<std::string> stale;
  std::error_code ec;
  for (const char* n : kExportFiles)
    if (ours && !extras.count(n) && fs::is_regular_file(d / n, ec))
      stale.push_back((d / n).string());
  return stale;
}

// Removes an earlier export's files that this one did not rewrite, then adapter/ if empty.
void remove_stale_exports(const std::string& dir, const std::vector<std::string>& stale) {
  std::error_code ec;
  for (const std::string& f : stale)
    if (!fs::remove(f, ec) && ec) user_error(f, ": cannot remove this stale file: ", ec.message());
  const fs::path adapter = fs::path(dir) / "adapter";
  if (fs::is_directory(adapter, ec) && fs::is_empty(adapter, ec)) fs::remove(adapter, ec);
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

  const std::vector<HfTensorMap> maps = hf_tensor_map(mc, real);
  std::vector<StSpec> specs;
  for (const HfTensorMap& m : maps) specs.push_back({m.hf_name, o.dtype, m.hf_shape});
  const SafetensorsLayout weights = plan_safetensors_set(specs, o.max_shard_bytes);

  const std::set<std::string> extras = extra_files_written(tok ? &*tok : nullptr, bool(lm.lora));
  const std::vector<std::string> stale = claim_export_dir(o.out_dir, weights, extras, o.force);
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
  size_t next = 0;
  const ShardedWriteReport w = write_safetensors_set(o.out_dir, weights, [&](const StSpec& s) {
    const HfTensorMap& m = maps[next++];
    LLMPI_CHECK(m.hf_name == s.name, "export order");
    return encode_f32(hf_values(m, param), o.dtype);
  }, kWeightsMetadata);
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
  remove_stale_exports(o.out_dir, stale);  // last: an interrupted export stays recognisably ours
  return rep;
}

}  // namespace llmpi
