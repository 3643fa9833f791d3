// `llmpi import-hf DIR --out MODEL.h5`: the command-line front end of io/hf_import.h
// (what is read and refused: docs/interop.md). Serial; needs no MPI.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/options.h"
#include "io/hf_import.h"

namespace llmpi {
namespace {

constexpr const char* kDescription = R"(Reads a Hugging Face GPT2LMHeadModel or LlamaForCausalLM directory (config.json,
model.safetensors or shards, F32/BF16/F16; tokenizer.json or vocab.json + merges.txt) and
writes an llmpi model file; the tokenizer goes next to it as MODEL.tokenizer.json. Anything
llmpi would compute differently (another architecture, rope scaling, biases in Llama, ...) is
refused naming the key. An existing file at either path is replaced only if it is an llmpi
model file (and the tokenizer beside one), else only with --force. A tokenizer llmpi cannot
read (Llama 2's SentencePiece-style BPE, ...) is refused too; --no-tokenizer imports the
weights alone. Start a run from it, or from DIR itself, with [train] init_from.
)";

struct ImportArgs {
  std::string dir, out;
  bool force = false;
  bool no_tokenizer = false;
};

int run_import(const ImportArgs& a) {
  const HfImportReport r = import_hf(a.dir, a.out, a.force, !a.no_tokenizer);
  const ModelConfig& m = r.meta.model;
  std::printf("imported %s -> %s: %s, %lld layers, d_model %lld, %lld heads (%lld kv), vocab %lld, "
              "%lld parameters\n",
              a.dir.c_str(), a.out.c_str(), arch_name(m.arch), static_cast<long long>(m.n_layer),
              static_cast<long long>(m.d_model), static_cast<long long>(m.n_head),
              static_cast<long long>(m.kv_heads()), static_cast<long long>(m.vocab_size),
              static_cast<long long>(r.params));
  if (!r.tokenizer_path.empty()) std::printf("  tokenizer -> %s\n", r.tokenizer_path.c_str());
  return 0;
}

}  // namespace

CommandSpec import_hf_command() {
  return {"import-hf", "DIR --out MODEL.h5", "read a Hugging Face GPT-2 or Llama directory",
          kDescription, [](CLI::App& app) -> CommandAction {
            auto a = std::make_shared<ImportArgs>();
            add_value(app, "DIR", a->dir, "DIR", "a Hugging Face model directory")->required();
            add_value(app, "--out", a->out, "MODEL.h5", "the llmpi model file to write")->required();
            add_switch(app, "--force", a->force,
                       "replace files at MODEL.h5 and MODEL.tokenizer.json that are not llmpi's\n"
                       "own earlier output (an llmpi model file is replaced without it)");
            add_switch(app, "--no-tokenizer", a->no_tokenizer,
                       "import the weights only, not DIR's tokenizer (for one llmpi cannot read)");
            return [a](CommandEnv&) { return run_import(*a); };
          }};
}

}  // namespace llmpi
