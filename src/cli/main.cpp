// llmpi: one binary, subcommands. Errors: bad input → message + exit 2 (every rank gives up
// together where the input is shared); an internal error on any rank → MPI_Abort of the
// whole job with that rank's message, so no rank is left hanging.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/version.h"

namespace {

constexpr const char* kUsage = R"(llmpi — train decoder-only transformers over MPI

usage: llmpi <command> [options]       (llmpi <command> --help for each)

commands:
  train CONFIG [--set section.key=value ...]   train a model from a TOML config
  prepare INPUT... --out DIR                   text/JSONL → cleaned, deduplicated token shards
  sample MODEL [--prompt TEXT ...]             generate text (greedy, temperature, top-k, top-p)
  eval MODEL --data SHARD                      perplexity of a model on a token shard
  inspect FILE                                 metadata, layout and tensors of a checkpoint
  export-hf MODEL_OR_RUN --out DIR             write a Hugging Face model directory
  import-hf DIR --out MODEL.h5                 read a Hugging Face GPT-2 or Llama directory
  version                                      print version and git revision
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  if (cmd == "version" || cmd == "--version") {
    std::printf("llmpi %s (git %s)\n", llmpi::kVersion, llmpi::kGitRevision);
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    llmpi::Runtime rt(argc, argv);
    try {
      if (cmd == "train") return llmpi::cmd_train(args, rt);
      if (cmd == "prepare") return llmpi::cmd_prepare(args);
      if (cmd == "sample") return llmpi::cmd_sample(args, rt);
      if (cmd == "eval") return llmpi::cmd_eval(args, rt);
      if (cmd == "inspect") return llmpi::cmd_inspect(args);
      if (cmd == "export-hf") return llmpi::cmd_export_hf(args);
      if (cmd == "import-hf") return llmpi::cmd_import_hf(args);
      std::fprintf(stderr, "llmpi: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
      return 2;
    } catch (const llmpi::UserError& e) {
      // Input checked by every rank alike (config, layout) is agreed on inside the command,
      // which then returns 2 on all ranks. One that reaches here may be one rank's alone:
      // with several ranks, end the whole job rather than leave the others waiting.
      if (rt.world_size() > 1) llmpi::abort_job((cmd + ": " + e.what()).c_str(), 2);
      // Messages may already name the command ("llmpi train: ..."): print it once.
      std::string msg = e.what();
      const std::string prefix = "llmpi " + cmd + ": ";
      if (msg.rfind(prefix, 0) == 0) msg.erase(0, prefix.size());
      std::fprintf(stderr, "%serror: %s\n", prefix.c_str(), msg.c_str());
      return 2;
    } catch (const std::exception& e) {
      if (rt.world_size() > 1) llmpi::abort_job(e.what(), 1);
      std::fprintf(stderr, "llmpi %s: internal error: %s\n", cmd.c_str(), e.what());
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmpi: fatal: %s\n", e.what());
    return 1;
  }
}
