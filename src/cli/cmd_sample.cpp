// `llmpi sample MODEL [--prompt TEXT ...]`: text generation from a trained model.
#include <filesystem>
#include <iostream>

#include "backend/backend.h"
#include "cli/args.h"
#include "cli/backend_option.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "data/tokenizer.h"
#include "io/hf_tokenizer.h"
#include "train/loaded_model.h"
#include "train/sampler.h"

namespace llmpi {

namespace {
constexpr const char* kHelp = R"(usage: llmpi sample MODEL [options]

Generates text from MODEL (a model/checkpoint .h5 file, or a run directory holding
model.h5). Each sample starts at a document boundary (end-of-text token), then the prompt.

options:
  --prompt TEXT        a prompt (repeatable: one sample per prompt; default: one empty prompt)
  --tokens N           tokens to generate per sample (default 100)
  --temperature T      0 = greedy; default 0.8
  --greedy             same as --temperature 0
  --top-k K            keep the K most likely tokens (default 0 = all)
  --top-p P            nucleus: smallest set with probability >= P (default 0.95)
  --seed S             sampling seed (default 1); same seed, same text
  --tokenizer PATH     tokenizer: .bpe, tokenizer.json or a GPT-2 vocab directory
                       (default: the data.tokenizer of the model's config)
  --keep-going         do not stop at the end-of-text token
)";
}  // namespace

int cmd_sample(const std::vector<std::string>& argv, Runtime& /*rt*/) {
  Args args(argv, "llmpi sample");
  if (args.help_requested()) {
    std::cout << kHelp << kBackendOptionHelp;
    return 0;
  }
  std::vector<std::string> prompts = args.get_all("--prompt");
  const int64_t n_tokens = args.get_int("--tokens", 100);
  SamplingOptions opt;
  opt.temperature = args.get_double("--temperature", 0.8);
  if (args.flag("--greedy")) opt.temperature = 0.0;
  opt.top_k = args.get_int("--top-k", 0);
  opt.top_p = args.get_double("--top-p", 0.95);
  const uint64_t seed = uint64_t(args.get_int("--seed", 1));
  auto tok_path = args.get("--tokenizer");
  const bool keep_going = args.flag("--keep-going");
  const std::string backend = args.get("--backend", "host");
  const auto pos = args.positionals();
  args.finish();
  if (pos.size() != 1) user_error("llmpi sample: expected exactly one MODEL (see --help)");
  if (n_tokens < 1) user_error("llmpi sample: --tokens must be >= 1, got ", n_tokens);
  if (opt.temperature < 0) user_error("llmpi sample: --temperature must be >= 0");
  if (opt.top_k < 0) user_error("llmpi sample: --top-k must be >= 0");
  if (!(opt.top_p > 0 && opt.top_p <= 1)) user_error("llmpi sample: --top-p must be in (0, 1]");
  if (prompts.empty()) prompts.emplace_back();

  auto be = make_backend_option(backend, "llmpi sample");
  LoadedModel lm = load_model(pos[0], *be);
  lm.store->refresh_compute(*be);  // the load wrote the f32 master; bf16 weights on CUDA
  const std::string tpath = tok_path ? *tok_path : lm.config.data.tokenizer;
  if (tpath.empty())
    user_error("llmpi sample: the model's config names no tokenizer; pass --tokenizer FILE");
  const Tokenizer tok = load_tokenizer(tpath);
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
    for (int64_t i = 0; i < n_tokens; ++i) {
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
      if (uint32_t(next) == tok.eot_id() && !keep_going) break;
      ctx.push_back(uint32_t(next));
      generated.push_back(uint32_t(next));
    }
    std::cout << "--- sample " << pi + 1 << " (seed " << seed << ", temperature "
              << opt.temperature << ")\n"
              << prompts[pi] << tok.decode(generated) << "\n";
  }
  return 0;
}

}  // namespace llmpi
