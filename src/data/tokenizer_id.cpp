#include "data/tokenizer_id.h"

#include <cinttypes>
#include <cstdio>

#include "core/error.h"
#include "core/excerpt.h"
#include "core/rng.h"
#include "data/tokenizer.h"

namespace llmpi {
namespace {

// splitmix64 chain over a byte string, its length first (so "ab","c" ≠ "a","bc").
uint64_t mix_bytes(uint64_t h, const std::string& s) {
  h = splitmix64(h ^ s.size());
  uint64_t word = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    word = (word << 8) | static_cast<unsigned char>(s[i]);
    if (i % 8 == 7) h = splitmix64(h ^ word), word = 0;
  }
  return splitmix64(h ^ word);
}

}  // namespace

std::string TokenizerId::str() const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "hash=%016" PRIx64 " vocab_size=%lld eot_id=%u", hash,
                static_cast<long long>(vocab_size), eot_id);
  return buf;
}

std::optional<TokenizerId> TokenizerId::parse(const std::string& text) {
  TokenizerId id;
  long long v = 0;
  unsigned e = 0;
  int end = 0;
  if (std::sscanf(text.c_str(), "hash=%16" SCNx64 " vocab_size=%lld eot_id=%u%n", &id.hash, &v,
                  &e, &end) != 3 ||
      size_t(end) != text.size() || v <= 0)
    return std::nullopt;
  id.vocab_size = v;
  id.eot_id = e;
  return id;
}

std::optional<TokenizerId> TokenizerId::recorded(const std::string& text, const std::string& file) {
  if (text.empty()) return std::nullopt;
  auto id = parse(text);
  if (!id)
    user_error(file, ": attribute 'tokenizer' is \"", excerpt(text),
               "\"; expected \"hash=<16 hex digits> vocab_size=<V> eot_id=<id>\"");
  return id;
}

TokenizerId tokenizer_id(const Tokenizer& tok) {
  uint64_t h = splitmix64(0x6c6c6d7069746f6bull ^ uint64_t(tok.pretokenizer()));
  for (int64_t i = 0; i < tok.vocab_size(); ++i) h = mix_bytes(h, tok.token_bytes(uint32_t(i)));
  for (const BpeMerge& m : tok.merges())
    h = splitmix64(h ^ (uint64_t(m.left) << 32 | m.right)), h = splitmix64(h ^ m.result);
  for (uint32_t s : tok.specials()) h = splitmix64(h ^ s);
  return {h, tok.vocab_size(), tok.eot_id()};
}

std::string check_same_tokenizer(const std::optional<TokenizerId>& a, const std::string& a_what,
                                 const std::optional<TokenizerId>& b, const std::string& b_what) {
  if (a && b) {
    if (*a != *b)
      user_error(a_what, " was made with the tokenizer ", a->str(), " but ", b_what,
                 " with the tokenizer ", b->str(), "; their token ids mean different text");
    return "";
  }
  if (!a && !b) return "";
  return detail::concat("warning: ", a ? b_what : a_what,
                        " records no tokenizer identity (written by an older llmpi); cannot check "
                        "that it matches ",
                        a ? a_what : b_what);
}

}  // namespace llmpi
