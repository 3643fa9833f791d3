// Fine-tuning record shapes → chat messages (sft_records.h), with nlohmann-json.
#include "data/sft_records.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace llmpi {

namespace {

using json = nlohmann::json;

const std::string& string_field(const json& o, const char* key, const std::string& where) {
  const auto it = o.find(key);
  if (it == o.end()) user_error(where, "missing field \"", key, "\"");
  if (!it->is_string())
    user_error(where, "field \"", key, "\" is ", it->type_name(), ", expected a string");
  return it->get_ref<const std::string&>();
}

std::string optional_string(const json& o, const char* key, const std::string& where) {
  return o.contains(key) ? string_field(o, key, where) : std::string();
}

std::string trimmed(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

ChatRole role_of(const std::string& r, const std::string& where) {
  if (r == "system") return ChatRole::system;
  if (r == "user") return ChatRole::user;
  if (r == "assistant") return ChatRole::assistant;
  user_error(where, "unknown role \"", r, "\" (expected system, user or assistant)");
}

std::vector<ChatMessage> messages_of(const json& list, const std::string& key) {
  if (!list.is_array()) user_error("field \"", key, "\" is ", list.type_name(), ", expected a list of messages");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = key + "[" + std::to_string(i) + "]: ";
    if (!list[i].is_object())
      user_error(where, "a ", list[i].type_name(), ", expected {\"role\": ..., \"content\": ...}");
    out.push_back({role_of(string_field(list[i], "role", where), where),
                   string_field(list[i], "content", where), ""});
  }
  return out;
}

SftRecord from_chat(const json& o) {
  SftRecord r;
  r.shape = "chat";
  r.messages = messages_of(o.at("messages"), "messages");
  return r;
}

SftRecord from_conversation(const json& o) {
  const json& list = o.at("conversation");
  if (!list.is_array() || list.empty())
    user_error("field \"conversation\" must be a non-empty list of {\"input\", \"output\"} rounds");
  SftRecord r;
  r.shape = "conversation";
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = "conversation[" + std::to_string(i) + "]: ";
    if (!list[i].is_object()) user_error(where, "a ", list[i].type_name(), ", expected an object");
    const std::string system = optional_string(list[i], "system", where);
    if (!system.empty() && i > 0)
      user_error(where, "a system prompt after the first round");
    if (!system.empty()) r.messages.push_back({ChatRole::system, system, ""});
    r.messages.push_back({ChatRole::user, string_field(list[i], "input", where), ""});
    r.messages.push_back({ChatRole::assistant, string_field(list[i], "output", where), ""});
  }
  return r;
}

SftRecord from_alpaca(const json& o) {
  SftRecord r;
  r.shape = "alpaca";
  const std::string system = optional_string(o, "system", "");
  if (!system.empty()) r.messages.push_back({ChatRole::system, system, ""});
  r.messages.push_back(
      {ChatRole::user, string_field(o, "instruction", ""), optional_string(o, "input", "")});
  r.messages.push_back({ChatRole::assistant, string_field(o, "output", ""), ""});
  return r;
}

SftRecord from_text(const json& o) {
  static constexpr std::string_view kHuman = "### Human:", kAssistant = "### Assistant:";
  const std::string& text = string_field(o, "text", "");
  SftRecord r;
  r.shape = "text";
  size_t pos = text.find_first_not_of(" \t\r\n");
  if (pos == std::string::npos || text.compare(pos, kHuman.size(), kHuman) != 0)
    user_error("field \"text\" does not start with \"### Human:\"");
  bool human = true;
  while (pos != std::string::npos) {
    pos += (human ? kHuman : kAssistant).size();
    const std::string_view next_marker = human ? kAssistant : kHuman;
    const size_t next = text.find(next_marker, pos);
    // A marker of the same speaker before the other's: two turns in a row.
    const size_t same = text.find(human ? kHuman : kAssistant, pos);
    if (same != std::string::npos && (next == std::string::npos || same < next))
      user_error("two \"", human ? "### Human:" : "### Assistant:", "\" turns in a row");
    r.messages.push_back({human ? ChatRole::user : ChatRole::assistant,
                          trimmed(std::string_view(text).substr(pos, next == std::string::npos
                                                                         ? std::string::npos
                                                                         : next - pos)),
                          ""});
    pos = next;
    human = !human;
  }
  if (r.messages.back().role == ChatRole::user) r.messages.pop_back();  // no answer: no loss
  return r;
}

// One answer: a string, or a list holding one assistant message.
std::string answer_of(const json& v, const char* key) {
  if (v.is_string()) return v.get<std::string>();
  const std::vector<ChatMessage> m = messages_of(v, key);
  if (m.size() != 1 || m[0].role != ChatRole::assistant)
    user_error("field \"", key, "\" must be a string or one assistant message");
  return m[0].content;
}

SftRecord from_preference(const json& o) {
  SftRecord r;
  r.kind = RecordKind::preference;
  r.shape = "preference";
  for (const char* k : {"chosen", "rejected"})
    if (!o.contains(k)) user_error("missing field \"", k, "\" of a preference pair");
  if (o.contains("prompt")) {
    const json& p = o.at("prompt");
    if (p.is_string()) r.messages.push_back({ChatRole::user, p.get<std::string>(), ""});
    else r.messages = messages_of(p, "prompt");
    r.chosen = answer_of(o.at("chosen"), "chosen");
    r.rejected = answer_of(o.at("rejected"), "rejected");
  } else {
    // Implicit prompt: two conversations that differ only in their last message.
    std::vector<ChatMessage> c = messages_of(o.at("chosen"), "chosen");
    std::vector<ChatMessage> j = messages_of(o.at("rejected"), "rejected");
    if (c.empty() || j.empty() || c.back().role != ChatRole::assistant ||
        j.back().role != ChatRole::assistant)
      user_error("without \"prompt\", chosen and rejected must be conversations ending with "
                 "an assistant message");
    const bool same_prompt =
        c.size() == j.size() && std::equal(c.begin(), c.end() - 1, j.begin(), [](auto& a, auto& b) {
          return a.role == b.role && a.content == b.content;
        });
    if (!same_prompt)
      user_error("chosen and rejected conversations differ before their last message");
    r.chosen = c.back().content;
    r.rejected = j.back().content;
    c.pop_back();
    r.messages = std::move(c);
  }
  if (r.chosen.empty()) user_error("empty \"chosen\" answer");
  if (r.rejected.empty()) user_error("empty \"rejected\" answer");
  if (r.chosen == r.rejected) user_error("\"chosen\" and \"rejected\" are the same answer");
  return r;
}

}  // namespace

SftRecord parse_sft_record(std::string_view json_line) {
  json o;
  try {
    o = json::parse(json_line);
  } catch (const json::parse_error& e) {
    user_error("not valid JSON at byte ", e.byte, ": ", e.what());
  } catch (const json::exception& e) {  // e.g. out_of_range: a number beyond a double (1e999)
    user_error("not valid JSON: ", e.what());
  }
  if (!o.is_object()) user_error("a JSON ", o.type_name(), ", expected an object");
  // Each shape and the keys that announce it.
  const std::pair<const char*, std::vector<const char*>> shapes[] = {
      {"messages", {"messages"}},
      {"conversation", {"conversation"}},
      {"instruction", {"instruction", "output"}},
      {"text", {"text"}},
      {"chosen", {"chosen", "rejected", "prompt"}}};
  std::vector<std::string> found;
  for (const auto& [shape, keys] : shapes)
    for (const char* k : keys)
      if (o.contains(k)) {
        found.push_back(k);
        break;
      }
  if (found.size() > 1)
    user_error("fields \"", found[0], "\" and \"", found[1], "\" of two record shapes in one record");
  if (found.empty()) {
    std::string keys;
    for (auto it = o.begin(); it != o.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
    user_error("no known record shape (expected \"messages\", \"conversation\", \"instruction\"/"
               "\"output\", \"text\" or \"prompt\"/\"chosen\"/\"rejected\"; found: ",
               keys.empty() ? "no fields" : keys, ")");
  }
  const std::string& k = found[0];
  if (k == "messages") return from_chat(o);
  if (k == "conversation") return from_conversation(o);
  if (k == "instruction" || k == "output") return from_alpaca(o);
  if (k == "text") return from_text(o);
  return from_preference(o);
}

std::vector<RenderedChat> render_record(const ChatTemplate& t, const SftRecord& r) {
  if (r.kind == RecordKind::sft) return {t.render(r.messages)};
  t.render(r.messages, /*add_generation_prompt=*/true);  // the prompt must end with a user turn
  std::vector<RenderedChat> out;
  for (const std::string* answer : {&r.chosen, &r.rejected}) {
    std::vector<ChatMessage> m = r.messages;
    m.push_back({ChatRole::assistant, *answer, ""});
    out.push_back(t.render(m));
  }
  return out;
}

}  // namespace llmpi
