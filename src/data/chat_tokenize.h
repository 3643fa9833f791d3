#pragma once
// Tokenizing a rendered chat (data/chat_template.h) for fine-tuning. The text is encoded in
// segments: the conversation's own bytes (RenderedChat::data) as ordinary text — a special
// token's spelling inside a message stays plain text, so data cannot inject markers — and
// the template markup between them, where the spelling of a special token of the tokenizer
// (e.g. "<|endoftext|>", "<|im_end|>", "<|eot_id|>") becomes that token. Segments are encoded
// separately, so no token crosses from markup into a message; the same function tokenizes the
// prompt when sampling, so prompts match training token for token.
// Loss mask: a token is in the loss (1) iff its bytes overlap an answer span (content through
// end-of-turn marker). Nothing is prepended: the template's bos is the only BOS.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "data/tokenizer.h"

namespace llmpi {

struct SpecialToken {
  std::string text;
  uint32_t id = 0;
};

// The special tokens a tokenizer spells in markup: every special of the tokenizer (llmpi's:
// "<|endoftext|>"; a tokenizer.json's added special tokens, e.g. "<|im_end|>").
std::vector<SpecialToken> special_tokens(const Tokenizer& tok);

struct TokenizedChat {
  std::vector<uint32_t> ids;
  std::vector<uint8_t> loss_mask;  // one per id
};

TokenizedChat tokenize_chat(const Tokenizer& tok, const RenderedChat& chat,
                            std::span<const SpecialToken> specials);

}  // namespace llmpi
