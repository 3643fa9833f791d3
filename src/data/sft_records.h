#pragma once
// Fine-tuning records: one JSON object (a JSONL line) in any of the shapes users bring,
// normalised to chat messages (data/chat_template.h). Shapes, told apart by their keys:
//   chat          {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
//   conversation  {"conversation": [{"system"?: "...", "input": "...", "output": "..."}, ...]}
//                 (XTuner's form: one entry per round; a system prompt in the first only)
//   alpaca        {"instruction": "...", "input"?: "...", "output": "...", "system"?: "..."}
//   text          {"text": "### Human: ... ### Assistant: ... ### Human: ..."} (oasst1 style:
//                 split on the markers, turns trimmed; a last human turn without an answer
//                 is dropped, since it carries no loss)
//   preference    {"prompt": "..." | [messages], "chosen": "..." | [messages],
//                  "rejected": "..." | [messages]}: explicit prompt, chosen/rejected a string
//                 or one assistant message; or without "prompt", chosen and rejected full
//                 conversations that differ only in their last (assistant) message
// A record is an SFT conversation or a preference pair (a prompt and two answers). Problems of
// the record itself — not JSON, not an object, no known shape or two of them, a missing or
// non-string field, an unknown role, an empty or identical answer — are a UserError whose
// message says what was expected (without location: the caller prefixes FILE:LINE). The
// order of turns, empty turns and a missing answer are the chat template's to check when
// the record is rendered (render_record), one rule in one place.
#include <string>
#include <string_view>
#include <vector>

#include "data/chat_template.h"

namespace llmpi {

enum class RecordKind : unsigned char { sft, preference };

struct SftRecord {
  RecordKind kind = RecordKind::sft;
  std::vector<ChatMessage> messages;  // sft: the conversation; preference: the prompt
  std::string chosen, rejected;       // preference only: the two answers
  std::string shape;                  // "chat", "conversation", "alpaca", "text", "preference"
};

SftRecord parse_sft_record(std::string_view json_line);

// The record rendered for training: sft, its conversation; preference, two conversations
// (prompt + chosen, prompt + rejected), each with one answer span at its end.
std::vector<RenderedChat> render_record(const ChatTemplate& t, const SftRecord& r);

}  // namespace llmpi
