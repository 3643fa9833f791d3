// Rendered chat → token ids and loss mask (chat_tokenize.h).
#include "data/chat_tokenize.h"

#include <algorithm>

#include "core/error.h"

namespace llmpi {

namespace {

// Appends ids of text to out and the byte length of each to lens.
void encode_plain(const Tokenizer& tok, std::string_view text, std::vector<uint32_t>& out,
                  std::vector<size_t>& lens) {
  const size_t first = out.size();
  tok.encode_append(text, out);
  for (size_t i = first; i < out.size(); ++i) lens.push_back(tok.token_bytes(out[i]).size());
}

// Markup: the earliest special spelling (the longest at a tie) becomes its id.
void encode_markup(const Tokenizer& tok, std::string_view text,
                   std::span<const SpecialToken> specials, std::vector<uint32_t>& out,
                   std::vector<size_t>& lens) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best = std::string_view::npos;
    const SpecialToken* hit = nullptr;
    for (const SpecialToken& s : specials) {
      const size_t at = text.find(s.text, pos);
      if (at < best || (at == best && at != std::string_view::npos && s.text.size() > hit->text.size())) {
        best = at;
        hit = &s;
      }
    }
    encode_plain(tok, text.substr(pos, best == std::string_view::npos ? best : best - pos), out,
                 lens);
    if (best == std::string_view::npos) break;
    out.push_back(hit->id);
    lens.push_back(hit->text.size());
    pos = best + hit->text.size();
  }
}

}  // namespace

std::vector<SpecialToken> special_tokens(const Tokenizer& tok) {
  std::vector<SpecialToken> out;
  for (uint32_t id : tok.specials()) out.push_back({std::string(tok.token_bytes(id)), id});
  return out;
}

TokenizedChat tokenize_chat(const Tokenizer& tok, const RenderedChat& chat,
                            std::span<const SpecialToken> specials) {
  for (const SpecialToken& s : specials) LLMPI_CHECK(!s.text.empty(), "empty special token text");
  TokenizedChat t;
  std::vector<size_t> lens;
  const std::string_view text = chat.text;
  size_t pos = 0;
  for (const ByteSpan& d : chat.data) {
    LLMPI_CHECK(pos <= d.begin && d.begin <= d.end && d.end <= text.size(), "data span [",
                d.begin, ", ", d.end, ") after ", pos, " in ", text.size(), " bytes");
    encode_markup(tok, text.substr(pos, d.begin - pos), specials, t.ids, lens);
    encode_plain(tok, text.substr(d.begin, d.end - d.begin), t.ids, lens);
    pos = d.end;
  }
  encode_markup(tok, text.substr(pos), specials, t.ids, lens);

  t.loss_mask.assign(t.ids.size(), 0);
  size_t begin = 0, a = 0;
  for (size_t i = 0; i < t.ids.size(); ++i) {
    const size_t end = begin + lens[i];
    while (a < chat.answers.size() && chat.answers[a].end <= begin) ++a;
    if (a < chat.answers.size() && chat.answers[a].begin < end) t.loss_mask[i] = 1;
    begin = end;
  }
  LLMPI_CHECK(begin == text.size(), "tokens cover ", begin, " of ", text.size(), " bytes");
  return t;
}

}  // namespace llmpi
