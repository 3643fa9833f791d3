// Chat templates (data/chat_template.h): the built-in templates rendered exactly, answer
// spans (content through end-of-turn, nothing of the headers), the system prompt in the first
// round only, no double BOS, generation prompts, a template given as strings with sections and
// escaped braces, and the errors for malformed templates and conversations.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "data/chat_template.h"

using namespace llmpi;

namespace {

std::vector<ChatMessage> chat(std::vector<std::pair<ChatRole, std::string>> turns) {
  std::vector<ChatMessage> m;
  for (auto& [r, c] : turns) m.push_back({r, c, ""});
  return m;
}

constexpr auto S = ChatRole::system, U = ChatRole::user, A = ChatRole::assistant;

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

std::vector<std::string> spans(const RenderedChat& r) {
  std::vector<std::string> out;
  for (const ByteSpan& s : r.answers) out.push_back(r.text.substr(s.begin, s.end - s.begin));
  return out;
}

}  // namespace

TEST(ChatTemplate, ChatMl) {
  const ChatTemplate t = ChatTemplate::builtin("chatml");
  const RenderedChat r = t.render(chat({{S, "Be brief."}, {U, "Hi"}, {A, "Hello!"},
                                        {U, "2+2?"}, {A, "4"}}));
  EXPECT_EQ(r.text,
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n");
  EXPECT_EQ(spans(r), (std::vector<std::string>{"Hello!<|im_end|>", "4<|im_end|>"}));
  std::vector<std::string> data;
  for (const ByteSpan& d : r.data) data.push_back(r.text.substr(d.begin, d.end - d.begin));
  EXPECT_EQ(data, (std::vector<std::string>{"Be brief.", "Hi", "Hello!", "2+2?", "4"}));
  const RenderedChat g = t.render(chat({{U, "Hi"}}), true);
  EXPECT_EQ(g.text, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_TRUE(g.answers.empty());
}

TEST(ChatTemplate, Llama2SystemInsideTheFirstRoundOnly) {
  const ChatTemplate t = ChatTemplate::builtin("llama2");
  const RenderedChat r =
      t.render(chat({{S, "SYS"}, {U, "u1"}, {A, "a1"}, {U, "u2"}, {A, "a2"}, {U, "u3"}, {A, "a3"}}));
  EXPECT_EQ(r.text,
            "<s>[INST] <<SYS>>\nSYS\n<</SYS>>\n\nu1 [/INST] a1 </s>"
            "<s>[INST] u2 [/INST] a2 </s><s>[INST] u3 [/INST] a3 </s>");
  EXPECT_EQ(spans(r), (std::vector<std::string>{"a1 </s>", "a2 </s>", "a3 </s>"}));
  EXPECT_EQ(count(r.text, "SYS\n"), 1u);
  EXPECT_EQ(r.text.rfind("<s><s>", 0), std::string::npos);  // one BOS at the start
}

TEST(ChatTemplate, Llama3OneBos) {
  const ChatTemplate t = ChatTemplate::builtin("llama3");
  const RenderedChat r = t.render(chat({{S, "S"}, {U, "U"}, {A, "A"}, {U, "V"}, {A, "B"}}));
  EXPECT_EQ(r.text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nV<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nB<|eot_id|>");
  EXPECT_EQ(count(r.text, "<|begin_of_text|>"), 1u);
  EXPECT_EQ(count(r.text, "system<|end_header_id|>"), 1u);
  EXPECT_EQ(spans(r), (std::vector<std::string>{"A<|eot_id|>", "B<|eot_id|>"}));
}

TEST(ChatTemplate, AlpacaWithAndWithoutInput) {
  const ChatTemplate t = ChatTemplate::builtin("alpaca", "</s>");
  std::vector<ChatMessage> m = chat({{U, "Add the numbers."}, {A, "5"}});
  m[0].input = "2 and 3";
  const std::string preamble =
      "Below is an instruction that describes a task. Write a response that appropriately "
      "completes the request.\n\n";
  RenderedChat r = t.render(m);
  EXPECT_EQ(r.text, preamble +
                        "### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n"
                        "### Response:\n5</s>\n\n");
  EXPECT_EQ(spans(r), std::vector<std::string>{"5</s>"});
  m[0].input.clear();
  r = t.render(m);
  EXPECT_EQ(r.text, preamble + "### Instruction:\nAdd the numbers.\n\n### Response:\n5</s>\n\n");
  // A given system prompt replaces the default preamble.
  r = t.render(chat({{S, "You add."}, {U, "1+1"}, {A, "2"}}));
  EXPECT_EQ(r.text, "You add.\n\n### Instruction:\n1+1\n\n### Response:\n2</s>\n\n");
}

TEST(ChatTemplate, SpanEndsAtTheTemplatesMarkerNotOneInsideTheAnswer) {
  const ChatTemplate t = ChatTemplate::builtin("chatml");
  const RenderedChat r = t.render(chat({{U, "q"}, {A, "say <|im_end|> then stop"}}));
  EXPECT_EQ(spans(r), std::vector<std::string>{"say <|im_end|> then stop<|im_end|>"});
}

TEST(ChatTemplate, GivenAsStrings) {
  ChatTemplateSpec s;
  s.bos = "<bos>";
  s.system = "{content}|";
  s.user = "{?system}[sys {system}]{/system}<u>{content}{?input} ({input}){/input}</u>";
  s.assistant = "<a>{content}<eot>{{done}}</a>\n";
  s.end_of_turn = "<eot>";
  const ChatTemplate t(s, "mine", "sft.template");
  std::vector<ChatMessage> m = chat({{S, "S"}, {U, "q1"}, {A, "r1"}, {U, "q2"}, {A, "r2"}});
  m[3].input = "x";
  const RenderedChat r = t.render(m);
  EXPECT_EQ(r.text,
            "<bos>[sys S|]<u>q1</u><a>r1<eot>{done}</a>\n<u>q2 (x)</u><a>r2<eot>{done}</a>\n");
  EXPECT_EQ(spans(r), (std::vector<std::string>{"r1<eot>", "r2<eot>"}));
  std::vector<std::string> data;  // the system prompt inside the user turn, the input too
  for (const ByteSpan& d : r.data) data.push_back(r.text.substr(d.begin, d.end - d.begin));
  EXPECT_EQ(data, (std::vector<std::string>{"S", "q1", "r1", "q2", "x", "r2"}));
  EXPECT_EQ(t.render(chat({{U, "q"}}), true).text, "<bos><u>q</u><a>");
}

TEST(ChatTemplate, MalformedTemplatesAreUserErrors) {
  auto make = [](auto edit) {
    ChatTemplateSpec s;
    s.system = "{content}\n";
    s.user = "{system}U: {content}\n";
    s.assistant = "A: {content}<end>\n";
    s.end_of_turn = "<end>";
    edit(s);
    return ChatTemplate(s, "t", "sft.template");
  };
  auto expect_error = [&](auto edit, const std::string& part) {
    try {
      make(edit);
      ADD_FAILURE() << "no error for a template that should need: " << part;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  EXPECT_NO_THROW(make([](ChatTemplateSpec&) {}));
  expect_error([](ChatTemplateSpec& s) { s.user = "{sytem}{content}"; }, "sft.template.user: unknown placeholder {sytem}");
  expect_error([](ChatTemplateSpec& s) { s.assistant = "{content}<end>{input}"; }, "unknown placeholder {input}");
  expect_error([](ChatTemplateSpec& s) { s.user = "{content"; }, "unmatched '{'");
  expect_error([](ChatTemplateSpec& s) { s.user = "{content}}"; }, "unmatched '}'");
  expect_error([](ChatTemplateSpec& s) { s.user = "{?input}{content}"; }, "never closed");
  expect_error([](ChatTemplateSpec& s) { s.user = "{content}{/input}"; }, "closes no open");
  expect_error([](ChatTemplateSpec& s) { s.user = "{system}"; }, ".user: needs {content}");
  expect_error([](ChatTemplateSpec& s) { s.assistant = "A: <end>"; }, ".assistant: needs {content}");
  expect_error([](ChatTemplateSpec& s) { s.assistant = "<end>{content}"; }, "does not follow {content}");
  expect_error([](ChatTemplateSpec& s) { s.end_of_turn = ""; }, "end_of_turn: empty");
  expect_error([](ChatTemplateSpec& s) { s.bos = "<s>"; s.user = "<s>{content}"; }, "double BOS");
  expect_error([](ChatTemplateSpec& s) { s.user = "{content}"; s.default_system = "x"; }, "no {system}");
  expect_error([](ChatTemplateSpec& s) { s.system = "{?system}{content}{/system}"; }, ".system: unknown section");
  EXPECT_THROW(ChatTemplate::builtin("vicuna"), UserError);
}

TEST(ChatTemplate, MalformedConversationsAreUserErrors) {
  const ChatTemplate t = ChatTemplate::builtin("chatml");
  EXPECT_THROW(t.render(chat({{U, "a"}, {S, "late system"}, {A, "b"}})), UserError);
  EXPECT_THROW(t.render(chat({{U, "a"}, {U, "b"}})), UserError);
  EXPECT_THROW(t.render(chat({{A, "b"}})), UserError);
  EXPECT_THROW(t.render(chat({{U, ""}, {A, "b"}})), UserError);
  EXPECT_THROW(t.render(chat({{U, "a"}, {A, ""}})), UserError);
  EXPECT_THROW(t.render(chat({{S, ""}, {U, "a"}, {A, "b"}})), UserError);
  EXPECT_THROW(t.render(chat({{U, "a"}, {A, "b"}, {U, "c"}})), UserError);  // no answer
  EXPECT_THROW(t.render(chat({{U, "a"}, {A, "b"}}), true), UserError);      // nothing to prompt
  EXPECT_THROW(t.render(chat({{S, "s"}})), UserError);
  ChatTemplateSpec s;
  s.user = "{content}";
  s.assistant = "{content}.";
  s.end_of_turn = ".";
  const ChatTemplate no_system(s, "plain", "sft.template");
  EXPECT_THROW(no_system.render(chat({{S, "s"}, {U, "a"}, {A, "b"}})), UserError);
  EXPECT_EQ(no_system.render(chat({{U, "a"}, {A, "b"}})).text, "ab.");
}
