// `llmpi eval MODEL --data SHARD`: mean loss and perplexity of a model on token shards.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "backend/backend.h"
#include "cli/args.h"
#include "cli/backend_option.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/runtime.h"
#include "data/batch_loader.h"
#include "data/token_dataset.h"
#include "train/loaded_model.h"
#include "train/paths.h"

namespace llmpi {

namespace {
constexpr const char* kHelp = R"(usage: llmpi eval MODEL [options]

Mean cross-entropy (nats/token) and perplexity of MODEL (a model/checkpoint .h5 file or a
run directory) on token shards, read in order in sequences of the model's training length.

options:
  --data PATH|GLOB     token shard(s) (default: the data.val of the model's config)
  --batches N          evaluate N batches (default 0 = every sequence once)
  --batch-size B       sequences per batch (default: the model's train.batch_size)
)";
}  // namespace

int cmd_eval(const std::vector<std::string>& argv, Runtime& /*rt*/) {
  Args args(argv, "llmpi eval");
  if (args.help_requested()) {
    std::cout << kHelp << kBackendOptionHelp;
    return 0;
  }
  auto data = args.get("--data");
  int64_t batches = args.get_int("--batches", 0);
  int64_t B = args.get_int("--batch-size", 0);
  const std::string backend = args.get("--backend", "host");
  const auto pos = args.positionals();
  args.finish();
  if (pos.size() != 1) user_error("llmpi eval: expected exactly one MODEL (see --help)");
  if (batches < 0) user_error("llmpi eval: --batches must be >= 0");
  if (B < 0) user_error("llmpi eval: --batch-size must be >= 1");

  auto be = make_backend_option(backend, "llmpi eval");
  LoadedModel lm = load_model(pos[0], *be);
  lm.store->refresh_compute(*be);  // the load wrote the f32 master; bf16 weights on CUDA
  const std::string pattern = data ? *data : lm.config.data.val;
  if (pattern.empty()) user_error("llmpi eval: no --data given and the model's config has no data.val");
  TokenDataset ds(expand_data_paths(pattern, "--data"), lm.config.model.vocab_size);
  const int64_t T = lm.config.train.seq_len;
  if (B == 0) B = lm.config.train.batch_size;
  ValLoader loader(ds, T);
  if (batches == 0) batches = (loader.n_samples() + B - 1) / B;

  Activations acts = lm.model->alloc_activations(*be, B, T);
  Buffer ids = be->alloc(Shape{B * T}, DType::i32), targets = be->alloc(Shape{B * T}, DType::i32);
  std::vector<int32_t> hi(size_t(B * T)), ht(size_t(B * T));
  double sum = 0.0;
  int64_t count = 0;
  for (int64_t k = 0; k < batches; ++k) {
    loader.fill(k, B, hi.data(), ht.data());
    // The last batch wraps around to the first samples: count each sample once.
    const int64_t first = k * B;
    for (int64_t b = 0; b < B; ++b)
      if (first + b >= loader.n_samples() && batches * B > loader.n_samples())
        for (int64_t t = 0; t < T; ++t) ht[size_t(b * T + t)] = -1;
    be->copy(ids, Tensor{hi.data(), Shape{B * T}, DType::i32, Device::host});
    be->copy(targets, Tensor{ht.data(), Shape{B * T}, DType::i32, Device::host});
    lm.model->forward(*be, acts, ids);
    const LossSum ls = lm.model->loss(*be, acts, targets);
    sum += ls.sum;
    count += ls.count;
  }
  const double loss = count ? sum / double(count) : 0.0;
  std::printf("model %s (step %lld) on %s\n", lm.path.c_str(), (long long)lm.meta.step,
              ds.describe().c_str());
  std::printf("tokens %lld | loss %.4f nats/token | perplexity %.3f\n", (long long)count, loss,
              std::exp(loss));
  return 0;
}

}  // namespace llmpi
