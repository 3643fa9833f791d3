// `llmpi sample MODEL [--prompt TEXT ...] [--chat]`: text generation from a trained model.
#include <memory>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <optional>

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
#include "jobs/exit_codes.h"
#include "jobs/stop_signals.h"
#include "train/chat_prompt.h"
#include "train/generate.h"
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

--chat: each prompt is a user message, rendered through the chat template of the model's
fine-tuning data (the prepare.json beside its data.train shards; or --template NAME /
--template-file FILE) with the assistant header after it, and generation stops at the
template's end-of-turn marker. Without --prompt, an interactive session when stdin is a
terminal (one message per line, an empty line or end of input ends it), else each line of
stdin is a prompt.

SIGINT (Ctrl-C) or SIGTERM during a generation stops it before the next token: the text
generated so far is printed as that sample's, a line on stderr says where it stopped, and
the command exits with 128 + the signal (130, 143) without starting another sample. A second
signal, or one outside a generation, ends it at once (what was printed before is complete:
each sample is flushed when done).
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
  bool chat = false;
  std::string template_name, template_file;
  std::string backend = "host";
};

// The chat template for --chat: --template-file, --template, or the model's data's.
ChatTemplate sample_template(const SampleArgs& a, const Config& model_config) {
  if (!a.template_file.empty()) return ChatTemplate::from_file(a.template_file);
  if (!a.template_name.empty()) return ChatTemplate::builtin(a.template_name);
  Config c = model_config;
  if (c.train.objective == Objective::lm) c.train.objective = Objective::sft;  // look anyway
  const std::string path = data_prepare_json(c);
  if (path.empty())
    user_error("llmpi sample --chat: the model's data.train (\"", model_config.data.train,
               "\") has no prepare.json beside it; pass --template NAME or --template-file FILE");
  return ChatTemplate::from_prepare_json(path);
}

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
  Generator gen(*be, *lm.model, T);
  GenerateOptions go;
  go.max_new = a.tokens;
  go.sampling = opt;
  go.key = rng_key(seed, "sample");
  go.stop_at_eot = !a.keep_going;
  std::optional<ChatTemplate> tmpl;
  if (a.chat) {
    tmpl = sample_template(a, lm.config);
    go.stop_text = tmpl->end_of_turn();
  }
  // SIGINT and SIGTERM are caught during a generation only (elsewhere they end the command at
  // once, with every finished sample already flushed, and an interactive read stays
  // interruptible): the first one stops it before the next token.
  int signo = 0;
  auto one = [&](size_t pi, const std::string& prompt) {
    std::vector<uint32_t> ctx;
    if (tmpl) {
      ctx = chat_prompt_ids(tok, *tmpl, prompt);
    } else {
      ctx.push_back(tok.eot_id());
      tok.encode_append(prompt, ctx);
    }
    const StopSignals signals("TERM");
    GenerateOptions o = go;
    o.stream = uint64_t(pi);
    o.stop = [&signals] { return signals.pending() != 0; };
    const Generation g = gen.run(tok, std::move(ctx), o);
    if (g.interrupted) signo = signals.pending();
    return g;
  };
  // After a sample cut short by a signal (printed as it is): where it stopped, and the exit code.
  auto interrupted = [&](size_t pi, const Generation& g) {
    std::cerr << "llmpi sample: SIG" << signal_name(signo) << ": sample " << pi + 1
              << " stopped after " << g.ids.size() << " generated tokens; exit "
              << kExitSignalBase + signo << "\n";
    return kExitSignalBase + signo;
  };
  if (a.chat && a.prompts.empty()) {
    const bool tty = ::isatty(STDIN_FILENO) != 0;
    std::string line;
    for (size_t pi = 0;; ++pi) {
      if (tty) std::cout << "user> " << std::flush;
      if (!std::getline(std::cin, line) || (tty && line.empty())) break;
      if (line.empty()) continue;
      const Generation g = one(pi, line);
      std::cout << (tty ? "assistant> " : "") << g.text << "\n" << std::flush;
      if (g.interrupted) return interrupted(pi, g);
    }
    return 0;
  }
  for (size_t pi = 0; pi < prompts.size(); ++pi) {
    const Generation g = one(pi, prompts[pi]);
    std::cout << "--- sample " << pi + 1 << " (seed " << seed << ", temperature "
              << opt.temperature << ")\n";
    if (tmpl)
      std::cout << "user: " << prompts[pi] << "\nassistant: " << g.text << "\n";
    else
      std::cout << prompts[pi] << g.text << "\n";
    std::cout << std::flush;
    if (g.interrupted) return interrupted(pi, g);
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
            add_value(app, "--seed", a->seed, "S", "sampling seed (default 1); same seed, same text")
                ->check(at_least(0));  // -1 was taken as 2^64 - 1
            add_value(app, "--tokenizer", a->tokenizer, "PATH",
                      "tokenizer: .bpe, tokenizer.json or a GPT-2 vocab directory (default: "
                      "the data.tokenizer of the model's config)");
            add_switch(app, "--keep-going", a->keep_going, "do not stop at the end-of-text token");
            Opt chat = add_switch(app, "--chat", a->chat,
                       "prompts are user messages in the data's chat template; stop at the "
                       "end of the turn (without --prompt: interactive, or lines of stdin)");
            add_value(app, "--template", a->template_name, "NAME",
                      "with --chat: a built-in template (chatml, llama2, llama3, alpaca)")
                ->needs(chat);
            add_value(app, "--template-file", a->template_file, "FILE",
                      "with --chat: a template file (JSON, as prepare.json records it)")
                ->needs(chat);
            add_backend_option(app, a->backend);
            return [a](CommandEnv& env) { return run_sample(*a, env); };
          }};
}

}  // namespace llmpi
