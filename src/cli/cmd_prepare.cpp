// `llmpi prepare`: command-line front end of prepare_dataset (src/data/prepare.h): its
// options, and a one-screen summary of what it wrote. The checks of the values themselves
// (ranges, exactly one tokenizer source) live in prepare_dataset.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/options.h"
#include "core/error.h"
#include "data/prepare.h"
#include "data/prepare_sft.h"

namespace llmpi {

namespace {

constexpr const char* kDescription = R"(Turns raw text or JSONL into cleaned, deduplicated, tokenized shards:
  DIR/train.bin, DIR/val.bin   token shards (docs/data-format.md)
  DIR/tokenizer.bpe            the byte-level BPE tokenizer used (llmpi's own), or
  DIR/tokenizer.json           GPT-2's tokenizer in the HF format (--tokenizer GPT2_DIR): the
                               shards then hold GPT-2's (llm.c's) token ids
  DIR/prepare.json             document and token counts
--format sft: fine-tuning JSONL (Alpaca, conversation lists, chat messages, "### Human:" text,
preference pairs) rendered through a chat template into shards with documents and a per-token
loss mask (no cleaning, no deduplication); bad records are counted and printed as FILE:LINE
(docs/finetuning.md). Files of these names already in DIR are replaced only if DIR/prepare.json
is prepare's, else only with --force; other files in DIR are never touched.
)";

struct PrepareArgs {
  PrepareOptions o;
  SftPrepareOptions sft;
  std::string format, delimiter;
  int64_t seed = 0;
  bool quiet = false;
};

int run_prepare_sft(const PrepareArgs& a) {
  SftPrepareOptions o = a.sft;
  o.inputs = a.o.inputs;
  o.out_dir = a.o.out_dir;
  o.tokenizer_path = a.o.tokenizer_path;
  o.val_fraction = a.o.val_fraction;
  o.seed = static_cast<uint64_t>(a.seed);
  o.show_progress = !a.quiet;
  o.force = a.o.force;
  if (a.o.vocab_size > 0)
    user_error("--format sft takes the model's tokenizer (--tokenizer), not --vocab-size");
  const SftPrepareReport r = prepare_sft(o);
  std::string shapes;
  for (const auto& [shape, n] : r.shapes)
    shapes += (shapes.empty() ? "" : ", ") + std::to_string(n) + " " + shape;
  std::printf(
      "prepared %s (%s, template %s): %lld files, %lld records read (%s), %lld bad\n"
      "  train: %lld records, %lld tokens (%lld in the loss) -> %s/train.bin\n"
      "  val:   %lld records, %lld tokens (%lld in the loss) -> %s/val.bin\n"
      "  longest sequence: %lld tokens; tokenizer: %lld ids -> %s/%s\n",
      o.out_dir.c_str(), r.kind == RecordKind::sft ? "conversations" : "preference pairs",
      r.template_name.c_str(), static_cast<long long>(r.files),
      static_cast<long long>(r.records_read), shapes.c_str(),
      static_cast<long long>(r.bad_records), static_cast<long long>(r.train_records),
      static_cast<long long>(r.train_tokens), static_cast<long long>(r.train_loss_tokens),
      o.out_dir.c_str(), static_cast<long long>(r.val_records),
      static_cast<long long>(r.val_tokens), static_cast<long long>(r.val_loss_tokens),
      o.out_dir.c_str(), static_cast<long long>(r.longest), static_cast<long long>(r.vocab_size),
      o.out_dir.c_str(), r.tokenizer_file.c_str());
  return 0;
}

int run_prepare(const PrepareArgs& a, bool has_delimiter) {
  if (a.format == "sft") return run_prepare_sft(a);
  PrepareOptions o = a.o;
  if (a.format == "text") o.format = InputFormat::text;
  if (a.format == "jsonl") o.format = InputFormat::jsonl;
  if (has_delimiter) o.delimiter = a.delimiter;
  o.seed = static_cast<uint64_t>(a.seed);
  o.show_progress = !a.quiet;
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

}  // namespace

CommandSpec prepare_command() {
  return {"prepare", "INPUT... --out DIR (--vocab-size N | --tokenizer PATH) [options]",
          "text/JSONL -> cleaned, deduplicated token shards", kDescription,
          [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<PrepareArgs>();
            a->seed = static_cast<int64_t>(a->o.seed);
            add_list(app, "INPUT", a->o.inputs, "INPUT",
                     "files or quoted glob patterns (\"data/*.jsonl\"), read in order");
            add_value(app, "--format", a->format, "text|jsonl|sft",
                      "input format (default: by extension, *.jsonl is jsonl, else text); sft: "
                      "fine-tuning records (see above)")
                ->check(one_of({"text", "jsonl", "sft"}));
            add_value(app, "--template", a->sft.template_name, "NAME",
                      "sft: built-in chat template, chatml (default), llama2, llama3 or alpaca");
            add_value(app, "--template-file", a->sft.template_file, "FILE",
                      "sft: chat template as a JSON object of strings (docs/finetuning.md)");
            add_value(app, "--max-tokens", a->sft.max_tokens, "N",
                      "sft: a sequence longer than N tokens is a bad record (0: no limit)");
            Opt delimiter = add_value(
                app, "--delimiter", a->delimiter, "LINE",
                "text: a line exactly equal to LINE separates documents\n"
                "(e.g. \"%\" for fortune files); default: each file is one document");
            add_value(app, "--out", a->o.out_dir, "DIR", "output directory (created if missing)")
                ->required();
            add_value(app, "--vocab-size", a->o.vocab_size, "N",
                      "train a tokenizer with N ids (>= 257) on the training documents");
            add_value(app, "--tokenizer", a->o.tokenizer_path, "PATH",
                      "use an existing tokenizer instead: an llmpi .bpe file, a tokenizer.json, "
                      "or a directory with tokenizer.json or GPT-2's vocab.json + merges.txt "
                      "(encoder.json + vocab.bpe)");
            add_value(app, "--val-fraction", a->o.val_fraction, "F",
                      "share of documents for validation, chosen by content hash (0.05)");
            add_value(app, "--min-chars", a->o.min_chars, "N",
                      "drop documents shorter than N characters after cleaning (1)");
            add_value(app, "--seed", a->seed, "S", "seed of the train/validation split (1234)")
                ->check(at_least(0));
            add_switch(app, "--quiet", a->quiet, "no progress output");
            add_switch(app, "--force", a->o.force,
                       "replace files at DIR's output paths that another program wrote (without\n"
                       "it, only a directory with prepare's prepare.json is written over)");
            return [a, delimiter](CommandEnv&) { return run_prepare(*a, delimiter->count() > 0); };
          }};
}

}  // namespace llmpi
