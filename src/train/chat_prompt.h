#pragma once
// Chat prompts for generation (llmpi sample --chat, [eval] prompts of fine-tuning runs): a
// user message rendered through the run's chat template with the generation prompt (the
// assistant header), tokenized as training tokenized it (data/chat_tokenize.h: markup may
// spell special tokens, the message may not). The run's template is the one its data was
// prepared with: prepare.json beside the first data.train shard.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"

namespace llmpi {

// <directory of the first data.train shard>/prepare.json, or "" when there is none.
std::string data_prepare_json(const Config& cfg);

// The chat template of a fine-tuning config's data (UserError naming the file when it has
// none); nullopt for objective = "lm".
std::optional<ChatTemplate> run_chat_template(const Config& cfg);

// The ids of `message` as a user turn followed by the assistant header.
std::vector<uint32_t> chat_prompt_ids(const Tokenizer& tok, const ChatTemplate& tmpl,
                                      const std::string& message);

}  // namespace llmpi
