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
// Stopping: rank 0 asks the run control before every token whether it has a stop request of
// its own (RunControl::stop_pending: its signal, the deadline) and breaks off there; after
// every prompt all ranks agree (RunControl::stop_requested, one collective), so a stop takes
// one token on rank 0, or the rest of the prompt when only another rank was signalled.
// Watchdog (jobs/progress.h): rank 0 advances per token; the other ranks, which only wait for
// it, are not timed during the prompts.
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

class Progress;
class RunControl;

class EvalPrompts {
 public:
  // Loads data.tokenizer and (fine-tuning) the data's chat template; UserError naming the
  // file when either is missing or does not fit the model.
  explicit EvalPrompts(const Config& cfg);

  const std::vector<std::string>& prompts() const { return prompts_; }
  // Collective over the engine's world: the greedy generation of every prompt (on world
  // rank 0; empty strings elsewhere). With `control` (may be null), rank 0 breaks a generation
  // off between two tokens on a stop request of its own, and every rank asks it after each
  // prompt whether a stop is requested — once per prompt on every rank, generating or not, as
  // stop_requested() is collective; on a stop it returns nullopt (nothing of a cut or
  // unstarted prompt is returned). `progress` (may be null): this rank's watchdog position.
  std::optional<std::vector<std::string>> generate(ParallelEngine& engine, Backend& be,
                                                   const RunControl* control = nullptr,
                                                   Progress* progress = nullptr);

 private:
  Config cfg_;
  std::vector<std::string> prompts_;
  Tokenizer tok_;
  std::optional<ChatTemplate> template_;
  std::vector<std::vector<uint32_t>> contexts_;  // the prompts' ids
};

}  // namespace llmpi
