#pragma once
// Text generation with a whole model on one rank (llmpi sample, [eval] prompts): from a
// context of token ids, each next token is chosen from the logits at the last position
// (train/sampler.h; temperature 0 = greedy). The model reads at most T tokens: past T the
// window slides (the last T tokens, the first at position 0). Generation stops at the
// tokenizer's end-of-text token, when the decoded continuation contains `stop_text` (a chat
// template's end-of-turn marker; the text is cut before it), after max_new tokens, or when
// GenerateOptions::stop says so before a token (a stop signal, the deadline: a long generation
// can be interrupted between two tokens, keeping those generated).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "data/tokenizer.h"
#include "model/transformer.h"
#include "train/sampler.h"

namespace llmpi {

struct GenerateOptions {
  int64_t max_new = 100;
  SamplingOptions sampling{.temperature = 0.0};
  uint64_t key = 0;        // rng key of the draws (core/rng.h)
  uint64_t stream = 0;     // distinguishes samples drawn with one key
  std::string stop_text;   // "" = none
  bool stop_at_eot = true; // false: the end-of-text token is generated like any other
  // Asked before each token (empty: never): true ends the generation there, with the tokens
  // generated so far and Generation::interrupted set. It runs on the generating rank alone, so
  // it must not be collective (RunControl::stop_pending, StopSignals::pending).
  std::function<bool()> stop;
};

struct Generation {
  std::vector<uint32_t> ids;  // generated tokens (the stop token or text excluded)
  std::string text;           // their decoded text, cut before stop_text
  bool interrupted = false;   // ended by GenerateOptions::stop, not by eot, stop_text or max_new
};

class Generator {
 public:
  // model: a whole model (every stage) whose parameters stay valid while this lives. T: the
  // window (<= model.max_seq_len).
  Generator(Backend& be, const Transformer& model, int64_t T);
  // Only ids below tok.vocab_size() are eligible.
  Generation run(const Tokenizer& tok, std::vector<uint32_t> context, const GenerateOptions& o);

 private:
  Backend& be_;
  const Transformer& model_;
  int64_t T_;
  Activations acts_;
  Buffer ids_;
};

}  // namespace llmpi
