// Chat templates: parsing and checking the template strings, the built-in templates, and
// rendering with answer spans (chat_template.h).
#include "data/chat_template.h"

#include <algorithm>

#include "core/error.h"
#include "core/file_kind.h"

#include <fstream>
#include <nlohmann/json.hpp>

namespace llmpi {

namespace {

using Kind = TemplatePiece::Kind;

// "{a}, {b}" (with a prefix inside the braces), or "none".
std::string brace_list(const std::vector<std::string>& names, const char* prefix) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "{" : ", {") + (prefix + n) + "}";
  return out.empty() ? "none" : out;
}

// Parses one template string; `fields` / `sections` are the names allowed in this part.
std::vector<TemplatePiece> parse(const std::string& t, const std::string& key,
                                 const std::vector<std::string>& fields,
                                 const std::vector<std::string>& sections) {
  std::vector<TemplatePiece> out;
  std::vector<std::string> open;
  auto text = [&out](char c) {
    if (out.empty() || out.back().kind != Kind::text) out.push_back({Kind::text, ""});
    out.back().s += c;
  };
  auto allowed = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if ((c == '{' || c == '}') && i + 1 < t.size() && t[i + 1] == c) {
      text(c);
      ++i;
      continue;
    }
    if (c == '}') user_error(key, ": unmatched '}' at byte ", i, " (write }} for a brace)");
    if (c != '{') {
      text(c);
      continue;
    }
    const size_t close = t.find('}', i);
    if (close == std::string::npos)
      user_error(key, ": unmatched '{' at byte ", i, " (write {{ for a brace)");
    std::string name = t.substr(i + 1, close - i - 1);
    Kind kind = Kind::field;
    if (!name.empty() && (name[0] == '?' || name[0] == '/')) {
      kind = name[0] == '?' ? Kind::open : Kind::close;
      name.erase(0, 1);
    }
    if (kind == Kind::field && !allowed(fields, name))
      user_error(key, ": unknown placeholder {", name, "} (this part takes ",
                 brace_list(fields, ""), ")");
    if (kind != Kind::field && !allowed(sections, name))
      user_error(key, ": unknown section {", kind == Kind::open ? "?" : "/", name,
                 "} (this part takes ", brace_list(sections, "?"), ")");
    if (kind == Kind::open) open.push_back(name);
    if (kind == Kind::close) {
      if (open.empty() || open.back() != name)
        user_error(key, ": {/", name, "} closes no open {?", name, "}");
      open.pop_back();
    }
    out.push_back({kind, name});
    i = close;
  }
  if (!open.empty()) user_error(key, ": section {?", open.back(), "} is never closed");
  return out;
}

size_t count_field(const std::vector<TemplatePiece>& p, const std::string& name) {
  return static_cast<size_t>(std::count_if(p.begin(), p.end(), [&](const TemplatePiece& x) {
    return x.kind == Kind::field && x.s == name;
  }));
}

struct Fields {
  const std::string* content = nullptr;
  const std::string* system = nullptr;
  const std::string* input = nullptr;
  const std::string& get(const std::string& n) const {
    static const std::string none;
    const std::string* v = n == "content" ? content : n == "system" ? system : input;
    return v ? *v : none;
  }
};

// Appends pieces [first, last) to out; sections whose field is empty are skipped. data (if
// given) receives the spans of the fields' text: content and input whole, and for {system}
// the block's own data spans (system_data, relative to the block) shifted into place.
void expand(const std::vector<TemplatePiece>& p, size_t first, size_t last, const Fields& f,
            std::string& out, std::vector<ByteSpan>* data = nullptr,
            const std::vector<ByteSpan>* system_data = nullptr) {
  for (size_t i = first; i < last; ++i) {
    const TemplatePiece& x = p[i];
    if (x.kind == Kind::text) {
      out += x.s;
    } else if (x.kind == Kind::field) {
      const size_t at = out.size();
      out += f.get(x.s);
      if (!data || out.size() == at) continue;
      if (x.s != "system") data->push_back({at, out.size()});
      else if (system_data)
        for (const ByteSpan& d : *system_data) data->push_back({at + d.begin, at + d.end});
    } else if (x.kind == Kind::open && f.get(x.s).empty()) {
      int depth = 1;  // skip to the matching close
      while (depth > 0 && ++i < last) {
        if (p[i].kind == Kind::open) ++depth;
        if (p[i].kind == Kind::close) --depth;
      }
    }
  }
}

}  // namespace

const char* chat_role_name(ChatRole r) {
  switch (r) {
    case ChatRole::system: return "system";
    case ChatRole::user: return "user";
    case ChatRole::assistant: return "assistant";
  }
  return "?";
}

ChatTemplate::ChatTemplate(ChatTemplateSpec spec, std::string name, const std::string& where)
    : spec_(std::move(spec)), name_(std::move(name)) {
  system_ = parse(spec_.system, where + ".system", {"content"}, {});
  user_ = parse(spec_.user, where + ".user", {"content", "system", "input"}, {"system", "input"});
  assistant_ = parse(spec_.assistant, where + ".assistant", {"content"}, {});
  if (count_field(user_, "content") != 1)
    user_error(where, ".user: needs {content} exactly once");
  if (count_field(user_, "system") > 1) user_error(where, ".user: {system} more than once");
  if (count_field(assistant_, "content") != 1)
    user_error(where, ".assistant: needs {content} exactly once");
  if (spec_.end_of_turn.empty())
    user_error(where, ".end_of_turn: empty (an answer must end with a marker the model learns)");
  for (size_t i = 0; i < assistant_.size(); ++i)
    if (assistant_[i].kind == Kind::field) assistant_content_ = i;
  std::string after;
  expand(assistant_, assistant_content_ + 1, assistant_.size(), {}, after);
  if (after.find(spec_.end_of_turn) == std::string::npos)
    user_error(where, ".assistant: the end_of_turn marker \"", spec_.end_of_turn,
               "\" does not follow {content}");
  const bool has_system_slot = count_field(user_, "system") == 1;
  if (!spec_.default_system.empty() && !has_system_slot)
    user_error(where, ".default_system: the user template has no {system} to put it in");
  if (!spec_.bos.empty() && spec_.user.rfind(spec_.bos, 0) == 0)
    user_error(where, ".user: starts with the bos \"", spec_.bos,
               "\" already written at the start of the text (a double BOS)");
}

std::vector<std::string> ChatTemplate::builtin_names() {
  return {"chatml", "llama2", "llama3", "alpaca"};
}

ChatTemplate ChatTemplate::builtin(const std::string& name, const std::string& eos) {
  ChatTemplateSpec s;
  if (name == "chatml") {
    s.system = "<|im_start|>system\n{content}<|im_end|>\n";
    s.user = "{system}<|im_start|>user\n{content}<|im_end|>\n";
    s.assistant = "<|im_start|>assistant\n{content}<|im_end|>\n";
    s.end_of_turn = "<|im_end|>";
  } else if (name == "llama2") {
    // <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s><s>[INST] ...:
    // every round opens with its own <s> (the first one is the text's only BOS).
    s.system = "<<SYS>>\n{content}\n<</SYS>>\n\n";
    s.user = "<s>[INST] {system}{content} [/INST]";
    s.assistant = " {content} </s>";
    s.end_of_turn = "</s>";
  } else if (name == "llama3") {
    s.bos = "<|begin_of_text|>";
    s.system = "<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>";
    s.user = "{system}<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>";
    s.assistant = "<|start_header_id|>assistant<|end_header_id|>\n\n{content}<|eot_id|>";
    s.end_of_turn = "<|eot_id|>";
  } else if (name == "alpaca") {
    s.system = "{content}\n\n";
    s.default_system =
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.";
    s.user = "{system}### Instruction:\n{content}\n\n{?input}### Input:\n{input}\n\n{/input}"
             "### Response:\n";
    s.assistant = "{content}" + eos + "\n\n";
    s.end_of_turn = eos;
  } else {
    std::string known;
    for (const std::string& n : builtin_names()) known += (known.empty() ? "" : ", ") + n;
    user_error("unknown chat template \"", name, "\" (built in: ", known,
               "; or give the template's strings in the config)");
  }
  // Braces in the eos text would be read as placeholders.
  for (char c : eos)
    LLMPI_CHECK(c != '{' && c != '}', "eos text ", eos, " has a brace");
  return ChatTemplate(std::move(s), name, "chat template " + name);
}

RenderedChat ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                  bool add_generation_prompt) const {
  size_t first = 0;
  std::string system_prompt = spec_.default_system;
  if (!messages.empty() && messages[0].role == ChatRole::system) {
    system_prompt = messages[0].content;
    if (system_prompt.empty()) user_error("empty system message");
    first = 1;
  }
  const size_t turns = messages.size() - first;
  if (turns == 0) user_error("no user turn");
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const ChatRole want = (i - first) % 2 == 0 ? ChatRole::user : ChatRole::assistant;
    if (m.role == ChatRole::system)
      user_error("a system message at position ", i + 1, " (only the first message may be one)");
    if (m.role != want)
      user_error("message ", i + 1, " is a ", chat_role_name(m.role), " turn where ",
                 want == ChatRole::user ? "a user" : "an assistant",
                 " turn was expected (turns must alternate, user first)");
    if (m.content.empty()) user_error("message ", i + 1, ": empty ", chat_role_name(m.role), " turn");
  }
  if (add_generation_prompt && turns % 2 == 0)
    user_error("the conversation ends with an answer; a generation prompt needs a user turn last");
  if (!add_generation_prompt && turns % 2 == 1)
    user_error("the conversation ends with a user turn that has no answer");

  std::string system_block;
  std::vector<ByteSpan> system_data;
  if (!system_prompt.empty()) {
    if (count_field(user_, "system") == 0)
      user_error("chat template ", name_, " has no place for a system prompt");
    expand(system_, 0, system_.size(), {&system_prompt, nullptr, nullptr}, system_block,
           &system_data);
  }
  RenderedChat r;
  r.text = spec_.bos;
  const std::string none;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == ChatRole::user) {
      const bool round0 = i == first;
      expand(user_, 0, user_.size(), {&m.content, round0 ? &system_block : &none, &m.input},
             r.text, &r.data, &system_data);
      continue;
    }
    const Fields f{&m.content, nullptr, nullptr};
    expand(assistant_, 0, assistant_content_, f, r.text);
    ByteSpan span;
    span.begin = r.text.size();
    r.text += m.content;
    r.data.push_back({span.begin, r.text.size()});
    const size_t after = r.text.size();
    expand(assistant_, assistant_content_ + 1, assistant_.size(), f, r.text);
    span.end = r.text.find(spec_.end_of_turn, after) + spec_.end_of_turn.size();
    r.answers.push_back(span);
  }
  if (add_generation_prompt) expand(assistant_, 0, assistant_content_, {}, r.text);
  return r;
}

namespace {

// A template from a JSON object of ChatTemplateSpec strings (`where` names it in messages).
ChatTemplate template_from_json(const nlohmann::json& j, const std::string& path,
                                const std::string& where) {
  if (!j.is_object())
    user_error(where, ": not a JSON object (expected {\"user\": ..., \"assistant\": ..., ...})");
  ChatTemplateSpec spec;
  const std::pair<const char*, std::string*> keys[] = {
      {"bos", &spec.bos},           {"system", &spec.system},
      {"user", &spec.user},         {"assistant", &spec.assistant},
      {"end_of_turn", &spec.end_of_turn}, {"default_system", &spec.default_system}};
  std::string name = path;
  for (const auto& [key, value] : j.items()) {
    std::string* field = nullptr;
    for (const auto& [k, dst] : keys)
      if (key == k) field = dst;
    if (key == "name") {  // prepare.json's record of the template's name
      if (value.is_string()) name = value.get<std::string>();
      continue;
    }
    if (!field)
      user_error(where, ": unknown key \"", key,
                 "\" (expected bos, system, user, assistant, end_of_turn, default_system)");
    if (!value.is_string()) user_error(where, ": \"", key, "\" must be a string");
    *field = value.get<std::string>();
  }
  return ChatTemplate(spec, name, where);
}

nlohmann::json read_json(const std::string& path, const char* what) {
  require_regular_file(path, std::string("the ") + what);
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error(path, ": cannot open the ", what);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

ChatTemplate ChatTemplate::from_file(const std::string& path) {
  return template_from_json(read_json(path, "chat template file"), path, path + ": template");
}

ChatTemplate ChatTemplate::from_prepare_json(const std::string& path) {
  const nlohmann::json j = read_json(path, "prepare summary");
  if (!j.is_object() || !j.contains("template"))
    user_error(path, ": no \"template\" (not the prepare.json of `llmpi prepare --format sft`)");
  return template_from_json(j["template"], path, path + ": template");
}

}  // namespace llmpi
