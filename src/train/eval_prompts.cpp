// Evaluation prompts (eval_prompts.h).
#include "train/eval_prompts.h"

#include <algorithm>
#include <memory>

#include "core/error.h"
#include "data/hf_tokenizer.h"
#include "jobs/progress.h"
#include "jobs/run_control.h"
#include "model/transformer.h"
#include "parallel/lora_base.h"
#include "train/chat_prompt.h"
#include "train/generate.h"

namespace llmpi {

EvalPrompts::EvalPrompts(const Config& cfg)
    : cfg_(cfg), prompts_(cfg.eval.prompts), tok_(load_tokenizer(cfg.data.tokenizer)),
      template_(run_chat_template(cfg)) {
  if (tok_.vocab_size() > cfg.model.vocab_size)
    user_error(cfg.data.tokenizer, ": tokenizer has ", tok_.vocab_size(),
               " tokens but model.vocab_size is ", cfg.model.vocab_size, " (eval.prompts)");
  for (const std::string& p : prompts_) {
    if (template_) {
      contexts_.push_back(chat_prompt_ids(tok_, *template_, p));
    } else {
      std::vector<uint32_t> ids{tok_.eot_id()};
      tok_.encode_append(p, ids);
      contexts_.push_back(std::move(ids));
    }
  }
}

std::optional<std::vector<std::string>> EvalPrompts::generate(ParallelEngine& engine, Backend& be,
                                                              const RunControl* control,
                                                              Progress* progress) {
  const ParamStore& store = engine.gathered_params();  // collective under ZeRO 2/3
  std::vector<std::string> out(prompts_.size());
  const bool generates = engine.topology().rank() == 0;
  // With LoRA the gathered store holds the adapters: the model is the frozen base beside them.
  const FrozenBase* base = engine.frozen_base();
  std::unique_ptr<Transformer> model;
  std::optional<Generator> gen;
  if (generates) {
    model = make_stage_model(cfg_, StageRange::full(cfg_.model), base ? &base->store() : nullptr,
                             store);
    gen.emplace(be, *model, std::min(cfg_.train.seq_len, cfg_.model.max_seq_len));
  }
  GenerateOptions o;
  o.max_new = cfg_.eval.max_new_tokens;
  o.sampling.temperature = 0.0;  // greedy
  if (template_) o.stop_text = template_->end_of_turn();
  // Before each token, on rank 0 alone: a token is progress, and a stop request of its own
  // breaks the generation off (not collective: the others wait in the agreement below).
  o.stop = [&] {
    if (progress) progress->advance();
    return control && control->stop_pending();
  };
  // The others only wait for rank 0, whose watchdog times each token (jobs/progress.h).
  if (progress && !generates) progress->waiting_for_peer(true);
  // Every rank runs this loop, rank 0 generating: one stop_requested() per prompt everywhere.
  bool stopped = false;
  for (size_t i = 0; i < contexts_.size() && !stopped; ++i) {
    bool cut = false;
    if (generates) {
      const Generation g = gen->run(tok_, contexts_[i], o);
      out[i] = g.text;
      cut = g.interrupted;
    }
    stopped = control && control->stop_requested();  // collective
    // A request once seen stays: rank 0's own request is in the agreement that follows.
    LLMPI_CHECK(stopped || !cut, "an eval prompt was cut short, but no stop was agreed");
    if (progress) progress->advance();
  }
  if (progress && !generates) progress->waiting_for_peer(false);
  if (stopped) return std::nullopt;
  return out;
}

}  // namespace llmpi
