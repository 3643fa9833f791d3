#pragma once
// [eval] prompts: a few fixed prompts whose greedy generations are printed at every
// validation (train.eval_every steps, step 0 and the end), whatever the objective, so one
// watches the model learn to answer. Fine-tuning runs (sft, dpo) render each prompt as a user
// turn through the data's chat template (train/chat_prompt.h) and stop at its end-of-turn
// marker; pre-training runs continue the prompt after an end-of-text token.
// Generation runs on world rank 0 from the dp-gathered model (the config requires
// tp = pp = 1); gathering is collective under ZeRO 2/3, so every rank calls generate().
// The trainer prints each (step, prompt, generation) and records it in the logbook as an
// `eval_prompt` event.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "config/config.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "parallel/engine.h"

namespace llmpi {

class EvalPrompts {
 public:
  // Loads data.tokenizer and (fine-tuning) the data's chat template; UserError naming the
  // file when either is missing or does not fit the model.
  explicit EvalPrompts(const Config& cfg);

  const std::vector<std::string>& prompts() const { return prompts_; }
  // Collective over the engine's world: the greedy generation of every prompt (on world
  // rank 0; empty strings elsewhere).
  std::vector<std::string> generate(ParallelEngine& engine, Backend& be);

 private:
  Config cfg_;
  std::vector<std::string> prompts_;
  Tokenizer tok_;
  std::optional<ChatTemplate> template_;
  std::vector<std::vector<uint32_t>> contexts_;  // the prompts' ids
};

}  // namespace llmpi
