// `llmpi eval MODEL --data SHARD`: mean loss and perplexity of a model on token shards; on
// fine-tuning shards (with a loss mask) the masked loss, over packed rows of whole documents.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "backend/backend.h"
#include "cli/backend_option.h"
#include "cli/command.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/runtime.h"
#include "data/token_dataset.h"
#include "data/tokenizer_id.h"
#include "train/loaded_model.h"
#include "train/evaluate.h"
#include "train/paths.h"
#include "train/step_rows.h"

namespace llmpi {

namespace {
constexpr const char* kDescription = R"(Mean cross-entropy (nats/token) and perplexity of MODEL (a model/checkpoint .h5 file or a
run directory) on token shards, read in order in sequences of the model's training length.
The loss is printed with 6 decimals, enough to tell runs apart.
On fine-tuning shards (llmpi prepare --format sft) only the tokens in the loss mask count (the
answers): the masked perplexity, documents packed into rows as in training (docs/finetuning.md).
)";

struct EvalArgs {
  std::string model;
  std::string data;
  int64_t batches = 0;
  int64_t batch_size = 0;
  std::string backend = "host";
};

int run_eval(const EvalArgs& a, CommandEnv& env) {
  env.runtime();  // MPI (the backend finds its node-local rank) and Kokkos
  int64_t batches = a.batches, B = a.batch_size;
  auto be = make_backend_option(a.backend, "llmpi eval");
  LoadedModel lm = load_model(a.model, *be);
  lm.store->refresh_compute(*be);  // the load wrote the f32 master; bf16 weights on CUDA
  const std::string pattern = a.data.empty() ? lm.config.data.val : a.data;
  if (pattern.empty()) user_error("llmpi eval: no --data given and the model's config has no data.val");
  TokenDataset ds(expand_data_paths(pattern, "--data"), lm.config.model.vocab_size);
  const std::string warning =
      check_same_tokenizer(TokenizerId::recorded(lm.meta.tokenizer, lm.path), lm.path,
                           ds.tokenizer(), "the data " + ds.shards().front().path());
  if (!warning.empty()) std::cerr << "llmpi eval: " << warning << "\n";
  const int64_t T = lm.config.train.seq_len;
  if (B == 0) B = lm.config.train.batch_size;
  const StepRows rows = StepRows::for_eval(lm.config, ds);
  if (batches == 0) batches = (rows.n_rows() + B - 1) / B;

  const LossSum ls = evaluate_loss(*lm.model, *be, rows, T, B, batches);
  const double sum = ls.sum;
  const int64_t count = ls.count;
  const double loss = count ? sum / double(count) : 0.0;
  std::printf("model %s (step %lld) on %s\n", lm.path.c_str(), (long long)lm.meta.step,
              ds.describe().c_str());
  std::printf("%stokens %lld | loss %.6f nats/token | perplexity %.3f\n",
              rows.has_documents() ? "masked (answer) " : "", (long long)count, loss,
              std::exp(loss));
  return 0;
}

}  // namespace

CommandSpec eval_command() {
  return {"eval", "MODEL [options]", "loss and perplexity of a model on token shards", kDescription,
          [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<EvalArgs>();
            add_value(app, "MODEL", a->model, "MODEL",
                      "a model/checkpoint .h5 file, or a run directory")->required();
            add_value(app, "--data", a->data, "PATH|GLOB",
                      "token shard(s) (default: the data.val of the model's config)");
            add_value(app, "--batches", a->batches, "N",
                      "evaluate N batches (default 0 = every sequence once)")->check(at_least(0));
            add_value(app, "--batch-size", a->batch_size, "B",
                      "sequences per batch (default: the model's train.batch_size)")
                ->check(at_least(1));  // 0 was taken as "the default"
            add_backend_option(app, a->backend);
            return [a](CommandEnv& env) { return run_eval(*a, env); };
          }};
}

}  // namespace llmpi
