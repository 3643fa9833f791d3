// prepare_sft: records → rendered chats → token shards with documents and a loss mask.
#include "data/prepare_sft.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/text_file.h"
#include "data/chat_tokenize.h"
#include "data/prepare.h"
#include "data/progress.h"
#include "data/text_clean.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"
#include "data/tokenizer_id.h"
#include "data/hf_tokenizer.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

constexpr size_t kKeptBadRecords = 1000;

void check_options(const SftPrepareOptions& o) {
  if (o.inputs.empty()) user_error("no input files given (see --help)");
  if (o.out_dir.empty()) user_error("missing --out DIR");
  if (o.tokenizer_path.empty())
    user_error("--format sft needs --tokenizer FILE: the tokenizer of the model to fine-tune");
  if (!(o.val_fraction >= 0.0 && o.val_fraction < 1.0))
    user_error("--val-fraction ", o.val_fraction, " must be in [0, 1)");
  if (!o.template_file.empty() && (!o.template_name.empty() || o.template_spec))
    user_error("--template and --template-file both given; choose one");
  if (o.max_tokens < 0) user_error("--max-tokens ", o.max_tokens, " must be >= 0 (0: no limit)");
}

void write_json_atomically(const std::string& path, const nlohmann::json& j) {
  const std::string tmp = temporary_of(path);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) user_error(tmp, ": cannot create: ", std::strerror(errno));
    // Bad-record reasons quote the record (and file names are bytes): invalid UTF-8 in them
    // becomes U+FFFD rather than an exception.
    f << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!f.flush()) {
      std::remove(tmp.c_str());
      user_error(tmp, ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    user_error(path, ": cannot rename from ", tmp, ": ", std::strerror(errno));
  }
}

nlohmann::json report_json(const SftPrepareReport& r, const SftPrepareOptions& o,
                           const ChatTemplate& t) {
  nlohmann::json j;
  j["format_version"] = 1;
  j["kind"] = r.kind == RecordKind::sft ? "sft" : "preference";
  j["template"] = {{"name", t.name()},          {"bos", t.spec().bos},
                   {"system", t.spec().system}, {"user", t.spec().user},
                   {"assistant", t.spec().assistant}, {"end_of_turn", t.spec().end_of_turn},
                   {"default_system", t.spec().default_system}};
  j["files"] = r.files;
  j["records_read"] = r.records_read;
  j["bad_records"] = r.bad_records;
  j["bad_per_file"] = r.bad_per_file;
  j["shapes"] = r.shapes;
  j["train_records"] = r.train_records;
  j["val_records"] = r.val_records;
  j["train_tokens"] = r.train_tokens;
  j["val_tokens"] = r.val_tokens;
  j["train_loss_tokens"] = r.train_loss_tokens;
  j["val_loss_tokens"] = r.val_loss_tokens;
  j["longest"] = r.longest;
  j["max_tokens"] = o.max_tokens;
  j["vocab_size"] = r.vocab_size;
  j["val_fraction"] = o.val_fraction;
  j["seed"] = o.seed;
  j["tokenizer"] = o.tokenizer_path;
  j["tokenizer_file"] = r.tokenizer_file;
  nlohmann::json bad = nlohmann::json::array();
  for (const BadRecord& b : r.bad)
    bad.push_back({{"file", b.file}, {"line", b.line}, {"reason", b.reason}});
  j["bad"] = bad;
  return j;
}

}  // namespace

SftPrepareReport prepare_sft(const SftPrepareOptions& o) {
  check_options(o);
  const std::vector<std::string> files = expand_inputs(o.inputs, o.out_dir);
  const ChatTemplate tmpl =
      !o.template_file.empty() ? ChatTemplate::from_file(o.template_file)
      : o.template_spec        ? ChatTemplate(*o.template_spec, "given", "template")
                               : ChatTemplate::builtin(o.template_name.empty() ? "chatml" : o.template_name);
  const Tokenizer tok = load_tokenizer(o.tokenizer_path);
  const std::vector<SpecialToken> specials = special_tokens(tok);
  claim_prepare_outputs(o.out_dir, o.force);
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec || !fs::is_directory(o.out_dir))
    user_error(o.out_dir, ": cannot create output directory: ", ec.message());

  SftPrepareReport r;
  r.files = static_cast<int64_t>(files.size());
  r.vocab_size = tok.vocab_size();
  r.template_name = tmpl.name();
  const int width = token_width_for_vocab(tok.vocab_size());
  const fs::path out(o.out_dir);
  TokenShardWriter train((out / "train.bin").string(), width, tokenizer_id(tok),
                         ShardContent::documents_with_mask);
  TokenShardWriter val((out / "val.bin").string(), width, tokenizer_id(tok),
                       ShardContent::documents_with_mask);
  int64_t total_bytes = 0;
  for (const auto& f : files) total_bytes += static_cast<int64_t>(fs::file_size(f));
  ProgressMeter meter("prepare sft", total_bytes, o.show_progress);
  std::optional<std::string> first_valid;  // FILE:LINE of the record that set the kind
  int64_t bytes_before = 0;

  for (const std::string& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) user_error(path, ": cannot open: ", std::strerror(errno));
    int64_t& bad_here = r.bad_per_file[path];
    std::string line;
    int64_t line_no = 0, done = 0;
    while (std::getline(in, line)) {
      ++line_no;
      done += static_cast<int64_t>(line.size()) + 1;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      ++r.records_read;
      const std::string where = path + ":" + std::to_string(line_no);
      try {
        const SftRecord rec = parse_sft_record(line);
        if (first_valid && rec.kind != r.kind)
          user_error(rec.kind == RecordKind::preference ? "a preference pair" : "a conversation",
                     " in a dataset of ", r.kind == RecordKind::sft ? "conversations" : "preference pairs",
                     " (its kind was set by ", *first_valid, ")");
        const std::vector<RenderedChat> chats = render_record(tmpl, rec);
        std::vector<TokenizedChat> docs;
        for (const RenderedChat& c : chats) {
          docs.push_back(tokenize_chat(tok, c, specials));
          const int64_t n = static_cast<int64_t>(docs.back().ids.size());
          if (o.max_tokens > 0 && n > o.max_tokens)
            user_error(n, " tokens, more than --max-tokens ", o.max_tokens);
        }
        if (!first_valid) {
          first_valid = where;
          r.kind = rec.kind;
        }
        ++r.shapes[rec.shape];
        const bool is_val =
            is_validation_document(content_hash128(chats[0].text), o.val_fraction, o.seed);
        for (const TokenizedChat& d : docs) {
          (is_val ? val : train).append_document(d.ids, d.loss_mask);
          int64_t loss = 0;
          for (uint8_t m : d.loss_mask) loss += m;
          (is_val ? r.val_loss_tokens : r.train_loss_tokens) += loss;
          r.longest = std::max(r.longest, static_cast<int64_t>(d.ids.size()));
        }
        (is_val ? r.val_records : r.train_records) += 1;
      } catch (const UserError& e) {
        ++bad_here;
        ++r.bad_records;
        if (r.bad.size() < kKeptBadRecords) r.bad.push_back({path, line_no, e.what()});
        if (bad_here <= o.report_limit && o.log)
          std::fprintf(o.log, "%s: bad record: %s\n", where.c_str(), e.what());
      }
      meter.update(r.records_read, bytes_before + done, train.count() + val.count());
    }
    bytes_before += static_cast<int64_t>(fs::file_size(path));
  }
  meter.finish();
  if (o.log)
    for (const auto& [file, n] : r.bad_per_file)
      if (n > 0)
        std::fprintf(o.log, "%s: %lld bad record%s of this file%s\n", file.c_str(),
                     static_cast<long long>(n), n == 1 ? "" : "s",
                     n > o.report_limit ? " (the first ones are printed above)" : "");
  r.train_tokens = train.count();
  r.val_tokens = val.count();
  if (!first_valid)
    user_error("no valid record in ", r.records_read, " records of ", files.size(),
               " file(s); ", r.bad_records, " bad (see the messages above)");
  if (r.train_records == 0)
    user_error("all ", r.val_records, " records went to the validation split; lower --val-fraction");
  r.tokenizer_file = tok.has_llmpi_layout() ? "tokenizer.bpe" : "tokenizer.json";
  if (tok.has_llmpi_layout()) tok.save((out / r.tokenizer_file).string());
  else write_tokenizer_json(tok, (out / r.tokenizer_file).string());
  train.commit();
  val.commit();
  write_json_atomically((out / "prepare.json").string(), report_json(r, o, tmpl));
  return r;
}

}  // namespace llmpi
