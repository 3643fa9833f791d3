// `llmpi prepare`: command-line front end of prepare_dataset (src/data/prepare.h).
// Parses options with Args, prints --help, runs the pipeline and a one-screen summary.
#include <cstdio>
#include <limits>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/error.h"
#include "data/prepare.h"

namespace llmpi {

namespace {

constexpr const char* kUsage = R"(usage: llmpi prepare INPUT... --out DIR (--vocab-size N | --tokenizer FILE) [options]

Turns raw text or JSONL into cleaned, deduplicated, tokenized shards:
  DIR/train.bin, DIR/val.bin   token shards (docs/data-format.md)
  DIR/tokenizer.bpe            the byte-level BPE tokenizer used (llmpi's own), or
  DIR/tokenizer.json           GPT-2's tokenizer in the HF format (--tokenizer GPT2_DIR)
  DIR/prepare.json             document and token counts

INPUT                  files or quoted glob patterns ("data/*.jsonl"), read in order
--format text|jsonl    input format (default: by extension, *.jsonl is jsonl, else text)
--delimiter LINE       text: a line exactly equal to LINE separates documents
                       (e.g. "%" for fortune files); default: each file is one document
--out DIR              output directory (created if missing)
--vocab-size N         train a tokenizer with N ids (>= 257) on the training documents
--tokenizer PATH       use an existing tokenizer instead: an llmpi .bpe file, a
                       tokenizer.json, or a directory holding tokenizer.json or GPT-2's
                       vocab.json + merges.txt (encoder.json + vocab.bpe); GPT-2's
                       tokenizer writes shards in GPT-2's (llm.c's) token ids
--val-fraction F       share of documents for validation, chosen by content hash (0.05)
--min-chars N          drop documents shorter than N characters after cleaning (1)
--seed S               seed of the train/validation split (1234)
--quiet                no progress output
)";

}  // namespace

int cmd_prepare(const std::vector<std::string>& args) {
  Args a(args, "llmpi prepare");
  if (a.help_requested()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  PrepareOptions o;
  if (auto f = a.get("--format")) {
    if (*f == "text") o.format = InputFormat::text;
    else if (*f == "jsonl") o.format = InputFormat::jsonl;
    else user_error("--format expects 'text' or 'jsonl', got '", *f, "'");
  }
  o.delimiter = a.get("--delimiter");
  o.out_dir = a.require("--out");
  o.vocab_size = a.get_int("--vocab-size", 0);
  o.tokenizer_path = a.get("--tokenizer", "");
  o.val_fraction = a.get_double("--val-fraction", o.val_fraction);
  o.min_chars = a.get_int("--min-chars", o.min_chars);
  const int64_t seed = a.get_int("--seed", static_cast<int64_t>(o.seed));
  if (seed < 0) user_error("--seed expects a non-negative integer, got ", seed);
  o.seed = static_cast<uint64_t>(seed);
  o.show_progress = !a.flag("--quiet");
  o.inputs = a.positionals();
  a.finish();

  const PrepareReport r = prepare_dataset(o);
  std::printf(
      "prepared %s: %lld files, %lld documents read, %lld too short, %lld duplicates\n"
      "  train: %lld documents, %lld tokens -> %s/train.bin\n"
      "  val:   %lld documents, %lld tokens -> %s/val.bin\n"
      "  tokenizer: %lld ids (end-of-text %u) -> %s/%s\n",
      o.out_dir.c_str(), static_cast<long long>(r.files),
      static_cast<long long>(r.clean.documents_read), static_cast<long long>(r.clean.dropped_short),
      static_cast<long long>(r.clean.dropped_duplicate), static_cast<long long>(r.train_documents),
      static_cast<long long>(r.train_tokens), o.out_dir.c_str(),
      static_cast<long long>(r.val_documents), static_cast<long long>(r.val_tokens),
      o.out_dir.c_str(), static_cast<long long>(r.vocab_size), r.eot_id, o.out_dir.c_str(),
      r.tokenizer_file.c_str());
  return 0;
}

}  // namespace llmpi
