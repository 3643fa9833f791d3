// prepare_dataset: document sources, the two passes, and the outputs. See prepare.h.
#include "data/prepare.h"

#include <glob.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/error.h"
#include "core/output_rule.h"
#include "core/rng.h"
#include "core/text_file.h"
#include "data/bpe_trainer.h"
#include "data/hf_tokenizer.h"
#include "data/jsonl.h"
#include "data/mapped_file.h"
#include "data/progress.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

bool has_glob_chars(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

InputFormat format_of(const std::string& path, InputFormat requested) {
  if (requested != InputFormat::by_extension) return requested;
  return fs::path(path).extension() == ".jsonl" ? InputFormat::jsonl : InputFormat::text;
}

// Calls fn(document, bytes of this file consumed so far) for every raw document of a file.
using DocFn = std::function<void(std::string_view doc, int64_t file_bytes_done)>;

void read_text_documents(const std::string& path, const std::optional<std::string>& delimiter,
                         const DocFn& fn) {
  const MappedFile file(path);
  const std::string_view all(reinterpret_cast<const char*>(file.data()), file.size());
  if (!delimiter) {
    fn(all, static_cast<int64_t>(all.size()));
    return;
  }
  size_t doc_begin = 0, pos = 0;
  while (pos < all.size()) {
    size_t eol = all.find('\n', pos);
    const size_t next = eol == std::string_view::npos ? all.size() : eol + 1;
    std::string_view line = all.substr(pos, (eol == std::string_view::npos ? all.size() : eol) - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == *delimiter) {
      fn(all.substr(doc_begin, pos - doc_begin), static_cast<int64_t>(next));
      doc_begin = next;
    }
    pos = next;
  }
  if (doc_begin < all.size()) fn(all.substr(doc_begin), static_cast<int64_t>(all.size()));
}

void read_documents(const std::string& path, InputFormat format,
                    const std::optional<std::string>& delimiter, const DocFn& fn) {
  if (format == InputFormat::jsonl) {
    JsonlReader reader(path);
    std::string text;
    while (reader.next(&text)) fn(text, reader.bytes_read());
  } else {
    read_text_documents(path, delimiter, fn);
  }
}

// One pass over all inputs: cleaned, filtered, deduplicated documents with their split.
using KeptFn = std::function<void(const std::string& doc, bool is_val)>;

CleanStats for_each_kept_document(const std::vector<std::string>& files,
                                  const PrepareOptions& o, ProgressMeter& meter,
                                  const int64_t* tokens, const KeptFn& fn) {
  DocumentFilter filter(o.min_chars);
  std::string cleaned;
  int64_t bytes_before = 0;
  for (const auto& path : files) {
    const InputFormat fmt = format_of(path, o.format);
    read_documents(path, fmt, o.delimiter, [&](std::string_view raw, int64_t done) {
      if (filter.accept(raw, &cleaned))
        fn(cleaned, is_validation_document(content_hash128(cleaned), o.val_fraction, o.seed));
      meter.update(filter.stats().documents_read, bytes_before + done, tokens ? *tokens : -1);
    });
    bytes_before += static_cast<int64_t>(fs::file_size(path));
  }
  meter.update(filter.stats().documents_read, bytes_before, tokens ? *tokens : -1);
  meter.finish();
  return filter.stats();
}

void validate(const PrepareOptions& o) {
  if (o.inputs.empty()) user_error("no input files given (see --help)");
  if (o.out_dir.empty()) user_error("missing --out DIR");
  if ((o.vocab_size > 0) == !o.tokenizer_path.empty())
    user_error("give exactly one of --vocab-size N (train a tokenizer) or "
               "--tokenizer FILE (use an existing one)");
  if (o.vocab_size != 0) check_bpe_vocab_size(o.vocab_size, "--vocab-size");
  if (!(o.val_fraction >= 0.0 && o.val_fraction < 1.0))
    user_error("--val-fraction ", o.val_fraction, " must be in [0, 1)");
  if (o.min_chars < 0) user_error("--min-chars ", o.min_chars, " must be >= 0");
  if (o.delimiter && o.delimiter->find('\n') != std::string::npos)
    user_error("--delimiter must be a single line");
}

// The output directory of one prepare. Until done(), a failure (the destructor runs during
// an exception) removes the outputs finished so far and the directory, if this run created
// it, so a failed prepare leaves nothing half-written behind; a directory that existed
// before keeps everything else in it.
class OutputDir {
 public:
  explicit OutputDir(const std::string& dir) : dir_(dir) {
    std::error_code ec;
    created_ = !fs::exists(dir_, ec);
    fs::create_directories(dir_, ec);
    if (ec || !fs::is_directory(dir_))
      user_error(dir, ": cannot create output directory: ", ec.message());
  }
  ~OutputDir() {
    if (done_) return;
    std::error_code ec;
    for (const fs::path& f : written_) fs::remove(f, ec);
    if (created_) fs::remove(dir_, ec);  // only when empty: never anything else in it
  }
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  // Output `name` is complete: removed again if the prepare fails after all.
  void finished(const std::string& name) { written_.push_back(dir_ / name); }
  void done() { done_ = true; }

 private:
  fs::path dir_;
  bool created_ = false, done_ = false;
  std::vector<fs::path> written_;
};

// The files prepare (text or sft) writes into its --out directory.
constexpr const char* kOutputNames[] = {"train.bin", "val.bin", "tokenizer.bpe", "tokenizer.json",
                                        "prepare.json"};

// Refuses an input prepare must not read as text (see expand_inputs in prepare.h).
void check_input(const std::string& file, const std::string& out_dir) {
  for (const char* name : kOutputNames) {
    std::error_code ec;
    if (fs::equivalent(file, fs::path(out_dir) / name, ec))
      user_error(file, ": is the output ", (fs::path(out_dir) / name).string(),
                 " of this prepare, which would overwrite its own input; expected an --out "
                 "directory apart from the input files");
  }
  uint8_t head[sizeof kShardMagic] = {};
  std::ifstream in(file, std::ios::binary);
  in.read(reinterpret_cast<char*>(head), sizeof head);
  if (shard_format_of(head, static_cast<size_t>(in.gcount())))
    user_error(file, ": is a token shard (already prepared), not text; expected text or JSONL "
               "input (train and eval read shards as they are: data.train, --data)");
}

}  // namespace

std::vector<std::string> expand_inputs(const std::vector<std::string>& patterns,
                                       const std::string& out_dir) {
  std::vector<std::string> files;
  for (const auto& p : patterns) {
    if (!has_glob_chars(p)) {
      std::error_code ec;
      if (!fs::is_regular_file(p, ec)) user_error(p, ": input file not found (or not a file)");
      files.push_back(p);
      continue;
    }
    glob_t g{};
    const int rc = ::glob(p.c_str(), 0, nullptr, &g);  // glob sorts its matches
    std::vector<std::string> matched;
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i)
        if (fs::is_regular_file(g.gl_pathv[i])) matched.emplace_back(g.gl_pathv[i]);
    ::globfree(&g);
    if (matched.empty()) user_error(p, ": pattern matches no input files");
    files.insert(files.end(), matched.begin(), matched.end());
  }
  for (const std::string& f : files) check_input(f, out_dir);
  return files;
}

bool is_validation_document(const Hash128& h, double val_fraction, uint64_t seed) {
  const uint64_t bits = splitmix64(h.hi ^ rng_key(seed, "val-split"));
  return static_cast<double>(bits >> 11) * 0x1.0p-53 < val_fraction;
}

std::string prepare_report_json(const PrepareReport& r, const PrepareOptions& o) {
  const nlohmann::ordered_json j = {
      {"format_version", 1},
      {"files", r.files},
      {"bytes_read", r.bytes_read},
      {"documents_read", r.clean.documents_read},
      {"dropped_short", r.clean.dropped_short},
      {"dropped_duplicate", r.clean.dropped_duplicate},
      {"train_documents", r.train_documents},
      {"val_documents", r.val_documents},
      {"train_tokens", r.train_tokens},
      {"val_tokens", r.val_tokens},
      {"vocab_size", r.vocab_size},
      {"eot_id", r.eot_id},
      {"token_width", r.token_width},
      {"val_fraction", o.val_fraction},
      {"min_chars", o.min_chars},
      {"seed", o.seed},
      {"tokenizer", o.vocab_size > 0 ? std::string("trained") : o.tokenizer_path},
      {"tokenizer_file", r.tokenizer_file},
  };
  return j.dump(2) + "\n";
}

void claim_prepare_outputs(const std::string& out_dir, const bool force) {
  const fs::path d(out_dir);
  const fs::path manifest = d / "prepare.json";
  std::error_code ec;
  const nlohmann::json j =
      fs::is_regular_file(manifest, ec)
          ? nlohmann::json::parse(read_text_file_if_exists(manifest.string()), nullptr, false)
          : nlohmann::json();
  const bool ours = j.is_object() && j.contains("format_version") && j.contains("tokenizer_file");
  OutputClaim c{out_dir, {}, "an output of llmpi prepare (a directory with its prepare.json)",
                [ours](const std::string&) { return ours; }};
  for (const char* n : kOutputNames) c.files.push_back((d / n).string());
  claim_outputs(c, force);
}

PrepareReport prepare_dataset(const PrepareOptions& o) {
  validate(o);
  const std::vector<std::string> files = expand_inputs(o.inputs, o.out_dir);
  int64_t total_bytes = 0;
  for (const auto& f : files) total_bytes += static_cast<int64_t>(fs::file_size(f));
  claim_prepare_outputs(o.out_dir, o.force);
  OutputDir out(o.out_dir);

  PrepareReport report;
  report.files = static_cast<int64_t>(files.size());
  report.bytes_read = total_bytes;

  // Tokenizer: pass 1 trains on the training documents, or load the given file.
  Tokenizer tok;
  if (o.vocab_size > 0) {
    BpeTrainer trainer;
    ProgressMeter meter("prepare: scan", total_bytes, o.show_progress);
    for_each_kept_document(files, o, meter, nullptr, [&](const std::string& doc, bool is_val) {
      if (!is_val) trainer.add_text(doc);
    });
    tok = trainer.train(o.vocab_size);
    if (o.show_progress)
      std::fprintf(stderr, "prepare: trained tokenizer: %lld merges from %zu distinct words\n",
                   static_cast<long long>(tok.merges().size()), trainer.distinct_words());
  } else {
    tok = load_tokenizer(o.tokenizer_path);
  }
  report.vocab_size = tok.vocab_size();
  report.eot_id = tok.eot_id();
  report.token_width = token_width_for_vocab(tok.vocab_size());
  report.tokenizer_file = tok.has_llmpi_layout() ? "tokenizer.bpe" : "tokenizer.json";

  // Pass 2: encode into the two shards.
  TokenShardWriter train(out.file("train.bin"), report.token_width, tokenizer_id(tok));
  TokenShardWriter val(out.file("val.bin"), report.token_width, tokenizer_id(tok));
  std::vector<uint32_t> train_buf, val_buf;
  EncodeCache cache;
  int64_t tokens = 0;
  ProgressMeter meter("prepare: encode", total_bytes, o.show_progress);
  report.clean =
      for_each_kept_document(files, o, meter, &tokens, [&](const std::string& doc, bool is_val) {
        std::vector<uint32_t>& buf = is_val ? val_buf : train_buf;
        const size_t before = buf.size();
        tok.encode_append(doc, buf, &cache);
        buf.push_back(tok.eot_id());
        tokens += static_cast<int64_t>(buf.size() - before);
        (is_val ? report.val_documents : report.train_documents) += 1;
        if (buf.size() >= (size_t{1} << 20)) {
          (is_val ? val : train).append(buf);
          buf.clear();
        }
      });
  train.append(train_buf);
  val.append(val_buf);
  report.train_tokens = train.count();
  report.val_tokens = val.count();
  if (report.clean.kept == 0)
    user_error("no documents left after cleaning (", report.clean.documents_read,
               " read, ", report.clean.dropped_short, " shorter than --min-chars ", o.min_chars,
               ", ", report.clean.dropped_duplicate, " duplicates)");
  if (report.train_documents == 0)
    user_error("all ", report.val_documents,
               " documents went to the validation split; lower --val-fraction");

  // llmpi's own tokenizer keeps its file format; any other (GPT-2's) goes as tokenizer.json.
  if (tok.has_llmpi_layout()) tok.save(out.file(report.tokenizer_file));
  else write_tokenizer_json(tok, out.file(report.tokenizer_file));
  out.finished(report.tokenizer_file);
  train.commit();
  out.finished("train.bin");
  val.commit();
  out.finished("val.bin");
  write_text_atomically(out.file("prepare.json"), prepare_report_json(report, o));
  out.done();
  return report;
}

}  // namespace llmpi
