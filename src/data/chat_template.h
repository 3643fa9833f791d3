#pragma once
// Chat templates: a conversation (optional system prompt, then user/assistant rounds) rendered
// to the text a model is trained on, with the byte spans of every assistant answer — its
// content through its end-of-turn marker — so that the loss mask comes from the rendered
// spans (never from re-tokenizing a marker; docs/finetuning.md).
// A template is five strings (built-in ones below, or given in the config):
//   bos          once at the very start of the text ("" for none)
//   system       the system block; {content} = the system prompt
//   user         one user turn; {content}, {input} (Alpaca's optional input) and {system},
//                which expands to the rendered system block in the FIRST round only
//   assistant    one answer; {content} exactly once, followed by end_of_turn
//   end_of_turn  the marker that ends an answer (in the loss: the model learns to stop)
// Template syntax: literal text; {content} {system} {input} placeholders; a section
// {?name}…{/name} (name: system or input) is kept only when that field is non-empty; {{ and
// }} are literal braces. Nothing else (no loops, filters or expressions).
// The loss span of an answer is [start of {content}, end of the first end_of_turn after it).
// The generation prompt (sampling) is the assistant text before {content}.
#include <cstddef>
#include <string>
#include <vector>

namespace llmpi {

enum class ChatRole : unsigned char { system, user, assistant };
const char* chat_role_name(ChatRole r);

struct ChatMessage {
  ChatRole role = ChatRole::user;
  std::string content;
  std::string input;  // user turns only: Alpaca's optional "input" field
};

// The raw strings of a template (as written in the config).
struct ChatTemplateSpec {
  std::string bos, system, user, assistant, end_of_turn;
  std::string default_system;  // used when a conversation has no system prompt ("": none)
};

struct ByteSpan {
  size_t begin = 0, end = 0;  // [begin, end) in the rendered text
};

struct RenderedChat {
  std::string text;
  std::vector<ByteSpan> answers;  // loss spans, one per assistant turn, in order
  // The bytes that came from the conversation (every content, input and the system prompt),
  // in order; everything else is template markup (where special tokens may be spelled).
  std::vector<ByteSpan> data;
};

// One parsed piece of a template string (internal to ChatTemplate).
struct TemplatePiece {
  enum class Kind : unsigned char { text, field, open, close } kind = Kind::text;
  std::string s;  // the literal text, or the field / section name
};

class ChatTemplate {
 public:
  // Checks the spec (UserError naming `where`.<key> and what is wrong): known placeholders
  // per part, balanced sections, {content} once in user and assistant, end_of_turn non-empty
  // and present after {content} in assistant, {system} at most once in user, no second bos
  // at the start of the user turn.
  ChatTemplate(ChatTemplateSpec spec, std::string name, const std::string& where);

  // Built-in templates: "chatml", "llama2", "llama3", "alpaca" (UserError for other names,
  // listing these). eos: the tokenizer's end-of-text token text, Alpaca's end of turn.
  static ChatTemplate builtin(const std::string& name, const std::string& eos = "<|endoftext|>");
  static std::vector<std::string> builtin_names();
  // A template file: a JSON object with the ChatTemplateSpec strings as keys ("bos",
  // "system", "user", "assistant", "end_of_turn", "default_system"; as prepare.json's
  // "template" records them). UserError naming the file and key for anything else.
  static ChatTemplate from_file(const std::string& path);
  // The template recorded in the prepare.json of `llmpi prepare --format sft` (its
  // "template" object; name = the recorded name). UserError naming the file otherwise.
  static ChatTemplate from_prepare_json(const std::string& path);

  const std::string& name() const { return name_; }
  const ChatTemplateSpec& spec() const { return spec_; }
  const std::string& end_of_turn() const { return spec_.end_of_turn; }

  // Renders messages: an optional first system message, then user, assistant, user, … .
  // With add_generation_prompt the conversation ends with a user turn and the text ends with
  // the assistant header (the prompt to sample an answer from); without it, it ends with an
  // assistant turn. UserError (no location: the caller adds the record's) for a system
  // message elsewhere than first, roles out of order, an empty content, or a system prompt
  // the template has no place for.
  RenderedChat render(const std::vector<ChatMessage>& messages,
                      bool add_generation_prompt = false) const;

 private:
  ChatTemplateSpec spec_;
  std::string name_;
  std::vector<TemplatePiece> system_, user_, assistant_;
  size_t assistant_content_ = 0;  // index of {content} in assistant_
};

}  // namespace llmpi
