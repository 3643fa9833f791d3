#pragma once
// A tokenizer's identity, recorded in token shards (format 2) and in model and checkpoint
// files (attribute "tokenizer"), so that data, a model and a tokenizer made with different
// vocabularies are never combined silently: every command that combines two of them
// compares the identities (check_same_tokenizer) and refuses a difference. Files written
// before identities were recorded carry none; they still load, with a warning.
//   hash: a 64-bit digest of the tokenizer as loaded (every token's bytes in id order, the
//     merge list, the special ids, the pre-tokenizer), so one vocabulary has one identity
//     whichever file format holds it (llmpi .bpe, tokenizer.json, GPT-2 vocab files).
//   vocab_size, eot_id: stored beside the hash to make a mismatch readable.
// Text form (the file attribute): "hash=<16 hex> vocab_size=<V> eot_id=<id>".
#include <cstdint>
#include <optional>
#include <string>

namespace llmpi {

class Tokenizer;

struct TokenizerId {
  uint64_t hash = 0;
  int64_t vocab_size = 0;
  uint32_t eot_id = 0;

  bool operator==(const TokenizerId&) const = default;
  std::string str() const;
  // nullopt for text not of the form above.
  static std::optional<TokenizerId> parse(const std::string& text);
  // A file's recorded identity: nullopt for "" (not recorded), UserError naming `file` for
  // text not of the form above.
  static std::optional<TokenizerId> recorded(const std::string& text, const std::string& file);
};

TokenizerId tokenizer_id(const Tokenizer& tok);

// UserError when both are known and differ: "<a_what> was made with the tokenizer <a> but
// <b_what> with <b>". When one is unknown (an older file) returns a warning naming it, else "".
std::string check_same_tokenizer(const std::optional<TokenizerId>& a, const std::string& a_what,
                                 const std::optional<TokenizerId>& b, const std::string& b_what);

}  // namespace llmpi
