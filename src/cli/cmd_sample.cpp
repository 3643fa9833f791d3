// `llmpi sample MODEL [--prompt TEXT ...]`: text generation from a trained model.
#include <filesystem>
#include <iostream>

#include "backend/backend.h"
#include "cli/backend_option.h"
#include "cli/command.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "data/hf_tokenizer.h"
#include "data/tokenizer.h"
#include "data/tokenizer_id.h"
#include "train/loaded_model.h"
#include "train/sampler.h"

namespace llmpi {

namespace {
constexpr const char* kDescription = R"(Generates text from MODEL (a model/checkpoint .h5 file, or a run directory holding
model.h5). Each sample starts at a document boundary (end-of-text token), then the prompt.

The model reads at most T = min(train.seq_len, model.max_seq_len) tokens of its config.
Generation past T slides a window: each next token is predicted from the last T tokens of
the context (end-of-text token, prompt and generated text) alone, the first of them at
position 0 (learned positions and RoPE alike); older tokens are no longer seen.
)";

struct SampleArgs {
  std::string model;
  std::vector<std::string> prompts;
  int64_t tokens = 100;
  SamplingOptions opt{.temperature = 0.8, .top_k = 0, .top_p = 0.95};
  bool greedy = false;
  int64_t seed = 1;
  std::string tokenizer;
  bool keep_going = false;
  std::string backend = "host";
};

int run_sample(const SampleArgs& a, CommandEnv& env) {
  env.runtime();  // MPI (the backend finds its node-local rank) and Kokkos
  SamplingOptions opt = a.opt;
  if (a.greedy) opt.temperature = 0.0;
  std::vector<std::string> prompts = a.prompts;
  if (prompts.empty()) prompts.emplace_back();
  const uint64_t seed = uint64_t(a.seed);

  auto be = make_backend_option(a.backend, "llmpi sample");
  LoadedModel lm = load_model(a.model, *be);
  lm.store->refresh_compute(*be);  // the load wrote the f32 master; bf16 weights on CUDA
  const std::string tpath = a.tokenizer.empty() ? lm.config.data.tokenizer : a.tokenizer;
  if (tpath.empty())
    user_error("llmpi sample: the model's config names no tokenizer; pass --tokenizer FILE");
  const Tokenizer tok = load_tokenizer(tpath);
  const std::string warning =
      check_same_tokenizer(TokenizerId::recorded(lm.meta.tokenizer, lm.path), lm.path,
                           tokenizer_id(tok), "the tokenizer " + tpath);
  if (!warning.empty()) std::cerr << "llmpi sample: " << warning << "\n";
  if (tok.vocab_size() > lm.config.model.vocab_size)
    user_error(tpath, ": tokenizer has ", tok.vocab_size(), " tokens but the model only ",
               lm.config.model.vocab_size);

  const int64_t T = std::min(lm.config.train.seq_len, lm.config.model.max_seq_len);
  const int64_t V = lm.config.model.vocab_size;
  Activations acts = lm.model->alloc_activations(*be, 1, T);
  Buffer ids = be->alloc(Shape{T}, DType::i32);
  const uint64_t key = rng_key(seed, "sample");

  for (size_t pi = 0; pi < prompts.size(); ++pi) {
    std::vector<uint32_t> ctx{tok.eot_id()};
    tok.encode_append(prompts[pi], ctx);
    std::vector<uint32_t> generated;
    for (int64_t i = 0; i < a.tokens; ++i) {
      // The last T tokens of the context, padded after the end (causal: padding is unseen).
      const size_t start = ctx.size() > size_t(T) ? ctx.size() - size_t(T) : 0;
      const int64_t len = int64_t(ctx.size() - start);
      std::vector<int32_t> window(size_t(T), 0);
      for (int64_t t = 0; t < len; ++t) window[size_t(t)] = int32_t(ctx[start + size_t(t)]);
      be->copy(ids, Tensor{window.data(), Shape{T}, DType::i32, Device::host});
      lm.model->forward(*be, acts, ids);
      std::vector<float> logits = lm.model->logits_at(*be, acts, len - 1);
      // Only ids the tokenizer can decode are eligible.
      std::span<const float> row(logits.data(), size_t(std::min<int64_t>(V, tok.vocab_size())));
      const int64_t next = sample_token(row, opt, key, uint64_t(pi) * 1000003ull + uint64_t(i));
      if (uint32_t(next) == tok.eot_id() && !a.keep_going) break;
      ctx.push_back(uint32_t(next));
      generated.push_back(uint32_t(next));
    }
    std::cout << "--- sample " << pi + 1 << " (seed " << seed << ", temperature "
              << opt.temperature << ")\n"
              << prompts[pi] << tok.decode(generated) << "\n";
  }
  return 0;
}

}  // namespace

CommandSpec sample_command() {
  return {"sample", "MODEL [options]", "generate text (greedy, temperature, top-k, top-p)",
          kDescription, [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<SampleArgs>();
            add_value(app, "MODEL", a->model, "MODEL",
                      "a model/checkpoint .h5 file, or a run directory")->required();
            add_list(app, "--prompt", a->prompts, "TEXT",
                     "a prompt (repeatable: one sample per prompt; default: one empty prompt)");
            add_value(app, "--tokens", a->tokens, "N", "tokens to generate per sample (default 100)")
                ->check(at_least(1));
            add_value(app, "--temperature", a->opt.temperature, "T", "0 = greedy; default 0.8")
                ->check(at_least(0));
            add_switch(app, "--greedy", a->greedy, "same as --temperature 0");
            add_value(app, "--top-k", a->opt.top_k, "K",
                      "keep the K most likely tokens (default 0 = all)")->check(at_least(0));
            add_value(app, "--top-p", a->opt.top_p, "P",
                      "nucleus: smallest set with probability >= P (default 0.95)")
                ->check(in_range(0, true, 1, false));
            add_value(app, "--seed", a->seed, "S", "sampling seed (default 1); same seed, same text");
            add_value(app, "--tokenizer", a->tokenizer, "PATH",
                      "tokenizer: .bpe, tokenizer.json or a GPT-2 vocab directory (default: "
                      "the data.tokenizer of the model's config)");
            add_switch(app, "--keep-going", a->keep_going, "do not stop at the end-of-text token");
            add_backend_option(app, a->backend);
            return [a](CommandEnv& env) { return run_sample(*a, env); };
          }};
}

}  // namespace llmpi
