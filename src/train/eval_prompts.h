#pragma once
// [eval] prompts: a few fixed prompts whose greedy generations are printed at every
// validation (train.eval_every steps, step 0 and the end), whatever the objective, so one
// watches the model learn to answer. Fine-tuning runs (sft, dpo) render each prompt as a user
// turn through the data's chat template (train/chat_prompt.h) and stop at its end-of-turn
// marker; pre-training runs continue the prompt after an end-of-text token.
// Generation runs on world rank 0 from the dp-gathered model (the config requires
// tp = pp = 1; with LoRA: the frozen base beside the gathered adapters); gathering is
// collective under ZeRO 2/3, so every rank calls generate().
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

class RunControl;

class EvalPrompts {
 public:
  // Loads data.tokenizer and (fine-tuning) the data's chat template; UserError naming the
  // file when either is missing or does not fit the model.
  explicit EvalPrompts(const Config& cfg);

  const std::vector<std::string>& prompts() const { return prompts_; }
  // Collective over the engine's world: the greedy generation of every prompt (on world
  // rank 0; empty strings elsewhere). With `control` (may be null), every rank asks it before
  // each prompt whether a stop is requested — once per prompt on every rank, generating or not,
  // as stop_requested() is collective — and on a stop returns nullopt (the rest not generated).
  std::optional<std::vector<std::string>> generate(ParallelEngine& engine, Backend& be,
                                                   const RunControl* control = nullptr);

 private:
  Config cfg_;
  std::vector<std::string> prompts_;
  Tokenizer tok_;
  std::optional<ChatTemplate> template_;
  std::vector<std::vector<uint32_t>> contexts_;  // the prompts' ids
};

}  // namespace llmpi
