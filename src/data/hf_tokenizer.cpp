// HF tokenizer files ↔ llmpi's byte-level BPE; see hf_tokenizer.h. nlohmann-json parses and
// writes every JSON file (ordered_json on output, so vocabularies are written in id order).
#include "data/hf_tokenizer.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "core/text_file.h"

namespace llmpi {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;

namespace {

bool printable_byte(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

struct ByteMap {
  uint32_t to_cp[256];
  int16_t from_cp[324];  // code points 0..323 are all an image can be
  ByteMap() {
    std::fill(std::begin(from_cp), std::end(from_cp), int16_t(-1));
    uint32_t extra = 0;
    for (int b = 0; b < 256; ++b) {
      to_cp[b] = printable_byte(b) ? uint32_t(b) : 256 + extra++;
      from_cp[to_cp[b]] = int16_t(b);
    }
  }
};
const ByteMap kByteMap;

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Bytes → their token string (UTF-8 of the byte images).
std::string to_token_string(std::string_view bytes) {
  std::string s;
  for (unsigned char b : bytes) put_utf8(s, kByteMap.to_cp[b]);
  return s;
}

// Token string → bytes; UserError naming `where` if a character is not a byte image.
// The string is valid UTF-8 (nlohmann checks every string it parses).
std::string from_token_string(const std::string& s, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp = c;
    size_t len = 1;
    if (c >= 0xF0) { cp = c & 0x07; len = 4; }
    else if (c >= 0xE0) { cp = c & 0x0F; len = 3; }
    else if (c >= 0xC0) { cp = c & 0x1F; len = 2; }
    for (size_t k = 1; k < len && i + k < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    const int b = unicode_to_byte(cp);
    if (b < 0)
      user_error(where, ": token \"", s, "\" has the character U+", std::hex, cp,
                 ", which is not a byte-level BPE byte image");
    out += char(b);
    i += len;
  }
  return out;
}

Json parse_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    std::string why = e.what();
    if (const size_t p = why.find("] "); p != std::string::npos) why.erase(0, p + 2);
    user_error(path, ": not valid JSON: ", why);
  }
}

[[noreturn]] void refuse(const std::string& file, const std::string& key, const std::string& what) {
  user_error(file, ": ", key, ": ", what);
}

// vocab object {token string: id} → (bytes by id, id of a token string).
struct Vocab {
  std::vector<std::string> bytes;
  std::vector<char> present;
  std::unordered_map<std::string, uint32_t> id_of;  // token string → id
};

// obj[key] if obj is an object holding a string there, else "" (nlohmann's value() throws a
// type_error, an "internal error", on a non-object or a value of another type).
std::string string_at(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return "";
  return obj[key].get<std::string>();
}

// Ids are dense (require_dense), so none can reach the number of tokens the file lists
// (`tokens`): a larger id is refused before the id table is sized by it (an id near 2^30 sized
// it at 32 GB of strings).
std::string id_range(size_t tokens) {
  return "the file lists " + std::to_string(tokens) + " tokens, so no id can be above " +
         std::to_string(tokens == 0 ? 0 : tokens - 1) + " (ids are dense)";
}

Vocab read_vocab_object(const Json& v, const std::string& file, const std::string& key,
                        size_t tokens) {
  if (!v.is_object()) refuse(file, key, "expected an object {token: id}");
  Vocab out;
  for (const auto& [tok, idj] : v.items()) {
    if (!idj.is_number_integer() || (!idj.is_number_unsigned() && idj.get<int64_t>() < 0))
      refuse(file, key, "token \"" + tok + "\" has id " + idj.dump() + ", expected a non-negative integer");
    std::string bytes = tok == kEndOfText ? tok : from_token_string(tok, file + ": " + key);
    if (idj.get<uint64_t>() >= tokens)
      refuse(file, key, "token \"" + tok + "\" has id " + idj.dump() + ", but " + id_range(tokens));
    const uint32_t id = idj.get<uint32_t>();
    if (id >= out.bytes.size()) {
      out.bytes.resize(id + 1);
      out.present.resize(id + 1, 0);
    }
    if (out.present[id]) refuse(file, key, "id " + std::to_string(id) + " is given to two tokens");
    out.present[id] = 1;
    out.bytes[id] = std::move(bytes);
    out.id_of.emplace(tok, id);
  }
  return out;
}

uint32_t merge_part(const Vocab& v, const std::string& s, const std::string& where) {
  const auto it = v.id_of.find(s);
  if (it == v.id_of.end()) user_error(where, ": merge part \"", s, "\" is not in the vocabulary");
  return it->second;
}

BpeMerge make_merge(const Vocab& v, const std::string& a, const std::string& b,
                    const std::string& where) {
  return {merge_part(v, a, where), merge_part(v, b, where), merge_part(v, a + b, where)};
}

void require_dense(const Vocab& v, const std::string& file) {
  for (size_t id = 0; id < v.present.size(); ++id)
    if (!v.present[id]) user_error(file, ": no token has id ", id, " (ids must be 0..", v.present.size() - 1, ")");
}

bool json_false_or_absent(const Json& obj, const char* key) {
  return !obj.contains(key) || obj[key].is_null() || (obj[key].is_boolean() && !obj[key].get<bool>());
}

Pretokenizer read_pre_tokenizer(const Json& pt, const std::string& file) {
  const std::string key = "pre_tokenizer";
  if (!pt.is_object() || !pt.contains("type")) refuse(file, key, "expected an object with a type");
  const std::string type = pt["type"].is_string() ? pt["type"].get<std::string>() : "";
  if (type == "ByteLevel") {
    if (!json_false_or_absent(pt, "add_prefix_space"))
      refuse(file, key + ".add_prefix_space", "true is not supported (GPT-2's is false)");
    if (pt.contains("use_regex") && pt["use_regex"] != true)
      refuse(file, key + ".use_regex", "must be true (GPT-2's pre-tokenization regex)");
    return Pretokenizer::gpt2;
  }
  if (type == "Sequence" && pt.contains("pretokenizers") && pt["pretokenizers"].is_array() &&
      pt["pretokenizers"].size() == 2) {
    const Json& bl = pt["pretokenizers"][0];
    const Json& sp = pt["pretokenizers"][1];
    const bool bytelevel = string_at(bl, "type") == "ByteLevel" &&
                           json_false_or_absent(bl, "add_prefix_space") && bl.contains("use_regex") &&
                           bl["use_regex"] == false;
    const bool split = string_at(sp, "type") == "Split" && sp.contains("pattern") &&
                       string_at(sp["pattern"], "Regex") == llmpi_split_pattern() &&
                       string_at(sp, "behavior") == "Isolated" && json_false_or_absent(sp, "invert");
    if (bytelevel && split) return Pretokenizer::llmpi_bytes;
  }
  refuse(file, key, "type \"" + type + "\" is not supported: llmpi reads GPT-2's ByteLevel "
         "pre-tokenizer and its own Sequence[ByteLevel, Split] (as llmpi writes it)");
}

}  // namespace

uint32_t byte_to_unicode(unsigned char b) { return kByteMap.to_cp[b]; }
int unicode_to_byte(uint32_t cp) { return cp < 324 ? kByteMap.from_cp[cp] : -1; }

const std::string& llmpi_split_pattern() {
  // Classes over byte images: L letters (A-Z a-z, bytes 0x80-0xFF), N digits, W the six
  // ASCII spaces, O the rest. Pieces of at most 256 bytes, as pretokenize.h cuts chunks.
  static const std::string L = R"([A-Za-z\x{A1}-\x{AC}\x{AE}-\x{FF}\x{122}-\x{143}])";
  static const std::string N = "[0-9]";
  static const std::string W = R"([\x{109}-\x{10D}\x{120}])";
  static const std::string notW = R"([^\x{109}-\x{10D}\x{120}])";
  static const std::string O =
      R"([^A-Za-z0-9\x{A1}-\x{AC}\x{AE}-\x{FF}\x{122}-\x{143}\x{109}-\x{10D}\x{120}])";
  static const std::string sp = R"(\x{120})";
  static const std::string p =
      "(?<!" + O + ")'(?:s|t|re|ve|m|ll|d)" +             // a contraction at a chunk start
      "|" + sp + L + "{1,255}|" + L + "{1,256}" +          // [space] letters
      "|" + sp + N + "{1,255}|" + N + "{1,256}" +          // [space] digits
      "|" + sp + O + "{1,255}|" + O + "{1,256}" +          // [space] others
      "|" + W + "{256}(?!" + notW + ")" +                  // a 256-byte piece of spaces
      "|" + W + "+(?!" + notW + ")|" + W + "+";           // spaces (the last one left over)
  return p;
}

Tokenizer read_gpt2_vocab(const std::string& vocab_json, const std::string& merges_txt) {
  const Json vj = parse_json_file(vocab_json);
  const Vocab v = read_vocab_object(vj, vocab_json, "vocabulary", vj.size());
  require_dense(v, vocab_json);
  BpeVocab bv;
  bv.pretokenizer = Pretokenizer::gpt2;
  const std::string text = read_text_file(merges_txt);
  size_t pos = 0;
  for (int64_t line_no = 1; pos < text.size(); ++line_no) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const std::string where = merges_txt + ":" + std::to_string(line_no);
    const size_t sp = line.find(' ');
    if (sp == 0 || sp == std::string::npos || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != std::string::npos)
      user_error(where, ": expected two tokens separated by one space, got \"", line, "\"");
    bv.merges.push_back(make_merge(v, line.substr(0, sp), line.substr(sp + 1), where));
  }
  const auto eot = v.id_of.find(std::string(kEndOfText));
  if (eot == v.id_of.end())
    user_error(vocab_json, ": no \"", kEndOfText, "\" token (llmpi needs a document separator)");
  bv.specials = {eot->second};
  bv.tokens = v.bytes;
  return Tokenizer(std::move(bv), vocab_json + " + " + merges_txt);
}

Tokenizer read_tokenizer_json(const std::string& path) {
  const Json j = parse_json_file(path);
  if (!j.is_object()) user_error(path, ": expected a JSON object (HF tokenizers format)");
  if (!j.contains("model")) refuse(path, "model", "missing");
  if (!j["model"].is_object()) refuse(path, "model", "expected an object, got " + std::string(j["model"].type_name()));
  const Json& m = j["model"];
  if (string_at(m, "type") != "BPE")
    refuse(path, "model.type", (m.contains("type") ? m["type"].dump() : std::string("(missing)")) +
                                   " is not supported (llmpi reads byte-level BPE)");
  if (m.contains("dropout") && !m["dropout"].is_null()) refuse(path, "model.dropout", "must be null");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(k) && !m[k].is_null() && m[k] != "")
      refuse(path, std::string("model.") + k, "must be empty for byte-level BPE");
  for (const char* k : {"byte_fallback", "ignore_merges"})
    if (!json_false_or_absent(m, k)) refuse(path, std::string("model.") + k, "true is not supported");
  if (j.contains("normalizer") && !j["normalizer"].is_null())
    refuse(path, "normalizer", "must be null (llmpi encodes the text as given)");
  if (!j.contains("pre_tokenizer")) refuse(path, "pre_tokenizer", "missing");
  if (!j.contains("decoder") || string_at(j["decoder"], "type") != "ByteLevel")
    refuse(path, "decoder", "must be ByteLevel");
  if (j.contains("post_processor") && !j["post_processor"].is_null() &&
      string_at(j["post_processor"], "type") != "ByteLevel")
    refuse(path, "post_processor", "only ByteLevel or null is supported (no added BOS/EOS)");

  if (j.contains("added_tokens") && !j["added_tokens"].is_array())
    refuse(path, "added_tokens", "expected an array");
  const Json vocab_json = m.contains("vocab") ? m["vocab"] : Json();
  const size_t tokens = vocab_json.size() + (j.contains("added_tokens") ? j["added_tokens"].size() : 0);
  Vocab v = read_vocab_object(vocab_json, path, "model.vocab", tokens);
  BpeVocab bv;
  bv.pretokenizer = read_pre_tokenizer(j["pre_tokenizer"], path);
  if (j.contains("added_tokens")) {
    for (const Json& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_unsigned() ||
          !t.contains("content") || !t["content"].is_string())
        refuse(path, "added_tokens", "each entry needs an id and a content");
      const std::string content = t["content"].get<std::string>();
      if (t["id"].get<uint64_t>() >= tokens)
        refuse(path, "added_tokens", "\"" + content + "\" has id " + t["id"].dump() + ", but " + id_range(tokens));
      const uint32_t id = t["id"].get<uint32_t>();
      const Json special = t.contains("special") ? t["special"] : Json(false);
      if (!special.is_boolean())
        refuse(path, "added_tokens", "\"" + content + "\": special must be true or false, got " + special.dump());
      if (!special.get<bool>())
        refuse(path, "added_tokens", "\"" + content + "\" is not special; llmpi does not split "
               "non-special added tokens out of text");
      if (id >= v.bytes.size()) {
        v.bytes.resize(id + 1);
        v.present.resize(id + 1, 0);
      }
      if (v.present[id] && v.bytes[id] != content)
        refuse(path, "added_tokens", "id " + std::to_string(id) + " is \"" + content +
                                         "\" but the vocabulary has another token there");
      v.present[id] = 1;
      v.bytes[id] = content;
      bv.specials.push_back(id);
    }
  }
  require_dense(v, path);
  if (!m.contains("merges") || !m["merges"].is_array()) refuse(path, "model.merges", "expected an array");
  size_t r = 0;
  for (const Json& mj : m["merges"]) {
    const std::string where = path + ": model.merges[" + std::to_string(r++) + "]";
    if (mj.is_string()) {
      const std::string s = mj.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == 0 || sp == std::string::npos || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
        user_error(where, ": expected \"left right\", got \"", s, "\"");
      bv.merges.push_back(make_merge(v, s.substr(0, sp), s.substr(sp + 1), where));
    } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
      bv.merges.push_back(make_merge(v, mj[0].get<std::string>(), mj[1].get<std::string>(), where));
    } else {
      user_error(where, ": expected \"left right\" or [\"left\", \"right\"]");
    }
  }
  bv.tokens = std::move(v.bytes);
  return Tokenizer(std::move(bv), path);
}

Tokenizer load_tokenizer(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path d(path);
    if (fs::exists(d / "tokenizer.json")) return read_tokenizer_json((d / "tokenizer.json").string());
    if (fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt"))
      return read_gpt2_vocab((d / "vocab.json").string(), (d / "merges.txt").string());
    if (fs::exists(d / "encoder.json") && fs::exists(d / "vocab.bpe"))
      return read_gpt2_vocab((d / "encoder.json").string(), (d / "vocab.bpe").string());
    if (fs::exists(d / "tokenizer.bpe")) return Tokenizer::load((d / "tokenizer.bpe").string());
    user_error(path, ": no tokenizer here (looked for tokenizer.json, vocab.json + merges.txt, "
               "encoder.json + vocab.bpe, tokenizer.bpe)");
  }
  if (!fs::exists(path, ec)) user_error(path, ": no such tokenizer file or directory");
  const fs::path p(path);
  if (p.filename() == "vocab.json" || p.filename() == "encoder.json") {
    const fs::path merges = p.parent_path() / (p.filename() == "vocab.json" ? "merges.txt" : "vocab.bpe");
    return read_gpt2_vocab(path, merges.string());
  }
  if (p.extension() == ".json") return read_tokenizer_json(path);
  return Tokenizer::load(path);
}

// ---- writing ----------------------------------------------------------------------------

namespace {

OJson added_token_json(uint32_t id, const std::string& content) {
  return OJson{{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
               {"rstrip", false}, {"normalized", true}, {"special", true}};
}

OJson byte_level(bool use_regex) {
  return OJson{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
               {"use_regex", use_regex}};
}

OJson tokenizer_json(const Tokenizer& tok) {
  OJson j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  OJson added = OJson::array();
  for (uint32_t id : tok.specials()) added.push_back(added_token_json(id, tok.token_bytes(id)));
  j["added_tokens"] = added;
  j["normalizer"] = nullptr;
  if (tok.pretokenizer() == Pretokenizer::gpt2) {
    j["pre_tokenizer"] = byte_level(true);
  } else {
    j["pre_tokenizer"] = OJson{
        {"type", "Sequence"},
        {"pretokenizers",
         {byte_level(false), OJson{{"type", "Split"}, {"pattern", {{"Regex", llmpi_split_pattern()}}},
                                   {"behavior", "Isolated"}, {"invert", false}}}}};
  }
  j["post_processor"] = byte_level(true);
  j["decoder"] = byte_level(true);
  OJson vocab = OJson::object();
  for (uint32_t id = 0; id < uint32_t(tok.vocab_size()); ++id)
    vocab[tok.is_special(id) ? tok.token_bytes(id) : to_token_string(tok.token_bytes(id))] = id;
  OJson merges = OJson::array();
  for (const BpeMerge& m : tok.merges())
    merges.push_back(to_token_string(tok.token_bytes(m.left)) + " " +
                     to_token_string(tok.token_bytes(m.right)));
  j["model"] = OJson{{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                     {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""},
                     {"fuse_unk", false}, {"vocab", vocab}, {"merges", merges}};
  return j;
}

}  // namespace

void write_tokenizer_json(const Tokenizer& tok, const std::string& path) {
  write_text_atomically(path, tokenizer_json(tok).dump(1) + "\n");
}

void write_hf_tokenizer(const Tokenizer& tok, const std::string& dir, const TokenizerExport& o) {
  const fs::path d(dir);
  const OJson tj = tokenizer_json(tok);
  write_text_atomically((d / "tokenizer.json").string(), tj.dump(1) + "\n");
  const std::string eot(kEndOfText);
  OJson decoder = OJson::object();
  for (uint32_t id : tok.specials()) {
    OJson t = added_token_json(id, tok.token_bytes(id));
    t.erase("id");
    decoder[std::to_string(id)] = t;
  }
  const bool gpt2 = tok.pretokenizer() == Pretokenizer::gpt2;
  const OJson cfg = {{"add_bos_token", false},
                     {"add_prefix_space", false},
                     {"added_tokens_decoder", decoder},
                     {"bos_token", eot},
                     {"clean_up_tokenization_spaces", false},
                     {"eos_token", eot},
                     {"model_max_length", o.model_max_length},
                     {"tokenizer_class", gpt2 ? "GPT2Tokenizer" : "PreTrainedTokenizerFast"},
                     {"unk_token", eot}};
  write_text_atomically((d / "tokenizer_config.json").string(), cfg.dump(2) + "\n");
  if (!gpt2) return;  // a slow GPT-2 tokenizer would apply GPT-2's regex, not llmpi's
  write_text_atomically((d / "vocab.json").string(), tj["model"]["vocab"].dump() + "\n");
  std::string merges = "#version: 0.2\n";
  for (const auto& m : tj["model"]["merges"]) merges += m.get<std::string>() + "\n";
  write_text_atomically((d / "merges.txt").string(), merges);
}

}  // namespace llmpi
