// import_hf and the slab filler; see hf_import.h.
#include "io/hf_import.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <filesystem>

#include "config/config.h"
#include "core/error.h"
#include "core/output_rule.h"
#include "data/hf_tokenizer.h"
#include "io/hf_weights.h"
#include "io/model_file.h"
#include "model/param_layout.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

bool is_float_dtype(StDtype d) { return d == StDtype::f32 || d == StDtype::bf16 || d == StDtype::f16; }

std::vector<HfTensorMap> maps_of(const HfModelSource& s) {
  return hf_tensor_map(s.meta.model, s.meta.model.vocab_size, s.gpt2_prefix);
}

// Copies the box of `p` (local_start, local_shape within global_shape) out of the global
// row-major values into dst.
void copy_slab(const ParamInfo& p, const std::vector<float>& global, float* dst) {
  LLMPI_CHECK(p.global_shape.ndim <= 2, p.name, " has ", p.global_shape.ndim, " dims");
  const int64_t gcols = p.global_shape.ndim == 2 ? p.global_shape[1] : 1;
  const int64_t rows = p.local_shape.ndim >= 1 ? p.local_shape[0] : 1;
  const int64_t cols = p.local_shape.ndim == 2 ? p.local_shape[1] : 1;
  const int64_t r0 = p.local_start[0], c0 = p.global_shape.ndim == 2 ? p.local_start[1] : 0;
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(dst + r * cols, global.data() + (r0 + r) * gcols + c0, size_t(cols) * sizeof(float));
}

}  // namespace

bool is_hf_model_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / "config.json", ec);
}

HfModelSource open_hf_model(const std::string& dir) {
  // A file given as DIR was read as if it were config.json ("model.safetensors: not valid JSON").
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    user_error(dir.empty() ? "\"\"" : dir, ": ", fs::exists(dir, ec) ? "not a directory" : "no such directory",
               "; expected a Hugging Face model directory (config.json and model.safetensors or "
               "model.safetensors.index.json)");
  HfModelSource s{dir, read_hf_config(dir), SafetensorsSet(dir), ""};
  const ModelConfig& m = s.meta.model;
  if (m.arch == Arch::gpt2) s.gpt2_prefix = s.weights.contains("wte.weight") ? "" : "transformer.";
  // Every layer has tensors of its own: a layer count above the tensors held is refused before
  // n_layer layers of names are listed (a damaged count would take hours and all memory).
  const int64_t held = int64_t(s.weights.names().size());
  if (m.n_layer > held)
    user_error(dir, "/config.json: ", m.arch == Arch::gpt2 ? "n_layer" : "num_hidden_layers", " = ",
               m.n_layer, " but the safetensors hold ", held, " tensors in all; expected at most one ",
               "layer per tensor (the layer count of the model these weights belong to)");
  std::vector<std::string> expected;
  for (const HfTensorMap& t : maps_of(s)) {
    if (!s.weights.contains(t.hf_name))
      user_error(dir, ": tensor \"", t.hf_name, "\" is missing (config.json describes a ",
                 arch_name(m.arch), " with ", m.n_layer, " layers",
                 t.hf_name == "lm_head.weight" ? " and an untied head: tie_word_embeddings is false" : "",
                 ")");
    const StEntry& e = s.weights.entry(t.hf_name);
    if (e.shape != t.hf_shape)
      user_error(s.weights.source(t.hf_name), " has shape ", shape_text(e.shape),
                 " but config.json implies ", shape_text(t.hf_shape));
    if (!is_float_dtype(e.dtype))
      user_error(s.weights.source(t.hf_name), " has dtype ", st_dtype_name(e.dtype),
                 " (llmpi imports F32, BF16 and F16 weights)");
    expected.push_back(t.hf_name);
  }
  std::sort(expected.begin(), expected.end());
  const std::string embed = m.arch == Arch::gpt2 ? s.gpt2_prefix + "wte.weight" : "model.embed_tokens.weight";
  for (const std::string& name : s.weights.names()) {
    if (std::binary_search(expected.begin(), expected.end(), name) || hf_ignorable_buffer(name)) continue;
    if (name == "lm_head.weight" && m.tied_embeddings) {
      // transformers may save a tied head anyway: accept it only if it is the embedding.
      if (s.weights.entry(name).shape != s.weights.entry(embed).shape ||
          s.weights.read_f32(name) != s.weights.read_f32(embed))
        user_error(s.weights.source(name), ": config.json has tie_word_embeddings = true, but "
                   "this head differs from ", embed);
      continue;
    }
    user_error(s.weights.source(name), " is not part of a ", arch_name(m.arch),
               " llmpi can hold (", m.arch == Arch::llama ? "Llama has no biases; " : "",
               "unknown tensors are refused rather than dropped)");
  }
  return s;
}

void fill_params(const HfModelSource& src, ParamStore& store, Backend& be) {
  const Tensor& flat = store.master();
  LLMPI_CHECK(flat.dtype == DType::f32, "fill_params: master dtype ", dtype_name(flat.dtype));
  const bool direct = flat.device == Device::host;
  std::vector<float> staging(direct ? 0 : size_t(flat.numel()));
  float* base = direct ? flat.ptr<float>() : staging.data();
  if (!direct) {  // keep what the store holds outside the filled slabs
    be.copy(Tensor{staging.data(), Shape{flat.numel()}, DType::f32, Device::host}, flat);
    be.synchronize();
  }
  // Global shapes come from the model config, whether or not this store holds the param.
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const ParamInfo& p : transformer_params(src.meta.model, StageRange::full(src.meta.model)))
    for (int d = 0; d < p.global_shape.ndim; ++d) shapes[p.name].push_back(p.global_shape[d]);
  auto shape_of = [&](const std::string& name) { return shapes.at(name); };
  for (const HfTensorMap& t : maps_of(src)) {
    bool wanted = false;
    for (const std::string& p : t.params) wanted = wanted || store.contains(p);
    if (!wanted) continue;
    const std::vector<float> hf = src.weights.read_f32(t.hf_name);
    split_hf_values(t, hf, shape_of, [&](const std::string& name, std::vector<float> v) {
      if (!store.contains(name)) return;
      const ParamInfo& p = store.info(name);
      copy_slab(p, v, base + p.offset);
    });
  }
  if (!direct) {
    be.copy(flat, Tensor{staging.data(), Shape{flat.numel()}, DType::f32, Device::host});
    be.synchronize();
  }
  store.refresh_compute(be);
}

namespace {

constexpr const char* kWriter = "llmpi import-hf";

// import-hf's own earlier output: a model file carrying its writer mark (a run's model.h5 or
// another command's file is not, and is replaced only with force).
bool is_earlier_import(const std::string& path) {
  try {
    return read_model_meta(path).writer == kWriter;
  } catch (const UserError&) {
    return false;
  }
}

}  // namespace

HfImportReport import_hf(const std::string& dir, const std::string& out_model, bool force,
                         bool with_tokenizer) {
  HfImportReport rep;
  // --out "" wrote ".tokenizer.json" into the working directory; a missing directory was found
  // only when the converted model was written.
  if (out_model.empty()) user_error("missing --out MODEL.h5");
  require_parent_directory(out_model, "llmpi import-hf");
  const HfModelSource src = open_hf_model(dir);
  rep.meta = src.meta;
  const ModelConfig& m = src.meta.model;

  std::optional<Tokenizer> tok;
  const fs::path d(dir);
  if (with_tokenizer && (fs::exists(d / "tokenizer.json") || fs::exists(d / "vocab.json"))) {
    try {
      tok = load_tokenizer(dir);
    } catch (const UserError& e) {  // the weights may still be wanted: say how
      user_error(e.what(), " (import-hf --no-tokenizer imports the weights alone)");
    }
    if (tok->vocab_size() > m.vocab_size)
      user_error(dir, ": the tokenizer has ", tok->vocab_size(), " tokens but config.json's vocab_size is ",
                 m.vocab_size);
    rep.tokenizer_path = fs::path(out_model).replace_extension(".tokenizer.json").string();
  }
  // The output rule (core/output_rule.h), before anything is written: the model file (a
  // directory there is refused), and the tokenizer beside it (a path the user never named),
  // replaced without force only beside import-hf's earlier model file.
  claim_outputs({"", {out_model}, "the output of an earlier llmpi import-hf", is_earlier_import}, force);
  if (!rep.tokenizer_path.empty()) {
    const bool beside_ours = is_earlier_import(out_model);
    claim_outputs({"", {rep.tokenizer_path},
                   "the tokenizer import-hf writes beside its model file " + out_model,
                   [beside_ours](const std::string&) { return beside_ours; }},
                  force);
  }

  Config c;
  c.model = m;
  c.train.steps = 1;
  c.train.batch_size = 1;
  c.train.seq_len = std::min<int64_t>(m.max_seq_len, 1024);
  c.data.train = "none";  // an imported model has no training data; a run sets its own
  c.data.tokenizer = rep.tokenizer_path;
  const Config checked = parse_config(to_toml(c), dir + " (imported config)");

  auto be = make_host_backend();
  ParamStore store(*be, transformer_params(m, StageRange::full(m)), DType::f32);
  fill_params(src, store, *be);
  rep.params = store.numel();
  ModelFileMeta meta;
  meta.writer = kWriter;
  meta.config_toml = checked.source_text;
  // The model first: a tokenizer written before a model save that fails (or is interrupted)
  // was left beside no llmpi model file, so the rerun refused it without --force.
  save_model_file(out_model, MPI_COMM_NULL, *be, store, meta);
  if (tok) write_tokenizer_json(*tok, rep.tokenizer_path);
  return rep;
}

}  // namespace llmpi
