// Chat prompts for generation (chat_prompt.h).
#include "train/chat_prompt.h"

#include <filesystem>
#include <glob.h>

#include "core/error.h"
#include "data/chat_tokenize.h"

namespace llmpi {

namespace fs = std::filesystem;

std::string data_prepare_json(const Config& cfg) {
  // data.train may be a glob: its first match (sorted), or the pattern's own directory.
  glob_t g{};
  std::string first = cfg.data.train;
  if (::glob(cfg.data.train.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0) first = g.gl_pathv[0];
  globfree(&g);
  const fs::path p = fs::path(first).parent_path() / "prepare.json";
  return fs::exists(p) ? p.string() : "";
}

std::optional<ChatTemplate> run_chat_template(const Config& cfg) {
  if (cfg.train.objective == Objective::lm) return std::nullopt;
  const std::string path = data_prepare_json(cfg);
  if (path.empty())
    user_error("data.train = \"", cfg.data.train, "\": no prepare.json beside it, so the chat "
               "template of this fine-tuning data is unknown (prepare it with `llmpi prepare "
               "--format sft`, or give the template explicitly)");
  return ChatTemplate::from_prepare_json(path);
}

std::vector<uint32_t> chat_prompt_ids(const Tokenizer& tok, const ChatTemplate& tmpl,
                                      const std::string& message) {
  const RenderedChat chat = tmpl.render({ChatMessage{ChatRole::user, message, ""}},
                                        /*add_generation_prompt=*/true);
  return tokenize_chat(tok, chat, special_tokens(tok)).ids;
}

}  // namespace llmpi
