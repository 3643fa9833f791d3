// Fine-tuning records (data/sft_records.h) and their tokenization (data/chat_tokenize.h):
// every record shape normalised to messages, 27 malformed records with the message each gets
// (parsed and rendered, as `prepare --format sft` does), special tokens spelled in markup but
// not in data, and the loss mask from the answer spans.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "data/chat_tokenize.h"
#include "data/sft_records.h"

using namespace llmpi;

namespace {

std::vector<std::pair<ChatRole, std::string>> turns(const SftRecord& r) {
  std::vector<std::pair<ChatRole, std::string>> t;
  for (const ChatMessage& m : r.messages) t.emplace_back(m.role, m.content);
  return t;
}

constexpr auto S = ChatRole::system, U = ChatRole::user, A = ChatRole::assistant;
using Turns = std::vector<std::pair<ChatRole, std::string>>;

}  // namespace

TEST(SftRecords, Shapes) {
  SftRecord r = parse_sft_record(
      R"({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                       {"role": "assistant", "content": "a"}]})");
  EXPECT_EQ(r.shape, "chat");
  EXPECT_EQ(turns(r), (Turns{{S, "s"}, {U, "q"}, {A, "a"}}));

  r = parse_sft_record(R"({"conversation": [{"system": "s", "input": "q1", "output": "a1"},
                                            {"input": "q2", "output": "a2"}]})");
  EXPECT_EQ(r.shape, "conversation");
  EXPECT_EQ(turns(r), (Turns{{S, "s"}, {U, "q1"}, {A, "a1"}, {U, "q2"}, {A, "a2"}}));

  r = parse_sft_record(R"({"instruction": "Add.", "input": "2, 3", "output": "5"})");
  EXPECT_EQ(r.shape, "alpaca");
  EXPECT_EQ(turns(r), (Turns{{U, "Add."}, {A, "5"}}));
  EXPECT_EQ(r.messages[0].input, "2, 3");

  r = parse_sft_record(
      R"({"text": "### Human: Hi there ### Assistant: Hello!\n### Human: Bye? ### Assistant: Bye. ### Human: more?"})");
  EXPECT_EQ(r.shape, "text");
  EXPECT_EQ(turns(r), (Turns{{U, "Hi there"}, {A, "Hello!"}, {U, "Bye?"}, {A, "Bye."}}))
      << "the last human turn has no answer: dropped";

  r = parse_sft_record(R"({"prompt": "Define cat.", "chosen": "A small feline.", "rejected": "A tree."})");
  EXPECT_EQ(r.kind, RecordKind::preference);
  EXPECT_EQ(turns(r), (Turns{{U, "Define cat."}}));
  EXPECT_EQ(r.chosen, "A small feline.");
  EXPECT_EQ(r.rejected, "A tree.");

  r = parse_sft_record(
      R"({"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
          "chosen": [{"role": "assistant", "content": "good"}],
          "rejected": [{"role": "assistant", "content": "bad"}]})");
  EXPECT_EQ(turns(r), (Turns{{S, "s"}, {U, "q"}}));
  EXPECT_EQ(r.chosen, "good");

  r = parse_sft_record(
      R"({"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "good"}],
          "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "bad"}]})");
  EXPECT_EQ(turns(r), (Turns{{U, "q"}}));
  EXPECT_EQ(r.rejected, "bad");
  // A pair renders as two conversations sharing the prompt, one answer span each.
  const std::vector<RenderedChat> two = render_record(ChatTemplate::builtin("chatml"), r);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].text, "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\nbad<|im_end|>\n");
  ASSERT_EQ(two[0].answers.size(), 1u);
}

TEST(SftRecords, MalformedRecordsSayWhatIsWrong) {
  const ChatTemplate t = ChatTemplate::builtin("chatml");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not valid JSON at byte"},
      {"{\"text\": \"\xff\"}", "not valid JSON"},
      {"[1, 2]", "a JSON array, expected an object"},
      {R"({"foo": 1, "bar": 2})", "no known record shape"},
      {R"({"messages": [], "instruction": "x"})", "fields \"messages\" and \"instruction\" of two record shapes"},
      {R"({"messages": "hi"})", "field \"messages\" is string, expected a list of messages"},
      {R"({"messages": [{"role": "bot", "content": "x"}]})", "messages[0]: unknown role \"bot\""},
      {R"({"messages": [{"role": "user"}]})", "messages[0]: missing field \"content\""},
      {R"({"messages": [{"role": "user", "content": 5}]})", "field \"content\" is number"},
      {R"({"messages": [3]})", "messages[0]: a number, expected {\"role\""},
      {R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})",
       "message 2 is a user turn where an assistant turn was expected"},
      {R"({"messages": [{"role": "assistant", "content": "a"}]})", "where a user turn was expected"},
      {R"({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "b"}]})",
       "message 1: empty user turn"},
      {R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                        {"role": "system", "content": "s"}]})",
       "a system message at position 3"},
      {R"({"messages": [{"role": "user", "content": "a"}]})", "ends with a user turn that has no answer"},
      {R"({"instruction": "x"})", "missing field \"output\""},
      {R"({"output": "y"})", "missing field \"instruction\""},
      {R"({"instruction": "x", "output": ""})", "empty assistant turn"},
      {R"({"conversation": [{"input": "a"}]})", "conversation[0]: missing field \"output\""},
      {R"({"conversation": [{"input": "a", "output": "b"}, {"system": "s", "input": "c", "output": "d"}]})",
       "conversation[1]: a system prompt after the first round"},
      {R"({"conversation": []})", "must be a non-empty list"},
      {R"({"text": "hello"})", "does not start with \"### Human:\""},
      {R"({"text": "### Human: only a question"})", "no user turn"},
      {R"({"text": "### Human: a ### Human: b ### Assistant: c"})", "two \"### Human:\" turns in a row"},
      {R"({"prompt": "p", "chosen": "a"})", "missing field \"rejected\""},
      {R"({"prompt": "p", "chosen": "a", "rejected": "a"})", "the same answer"},
      {R"({"prompt": "p", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"})",
       "must be a string or one assistant message"},
      {R"({"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
           "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "b"}]})",
       "differ before their last message"},
      {R"({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
           "chosen": "x", "rejected": "y"})",
       "a generation prompt needs a user turn last"},
  };
  for (const auto& [line, fragment] : cases) {
    try {
      render_record(t, parse_sft_record(line));
      ADD_FAILURE() << "accepted: " << line;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << "record: " << line << "\nmessage: " << e.what() << "\nexpected: " << fragment;
    }
  }
}

TEST(ChatTokenize, SpecialsInMarkupOnlyAndMaskFromSpans) {
  const Tokenizer tok;  // bytes + <|endoftext|>
  const std::vector<SpecialToken> specials = special_tokens(tok);
  // Alpaca ends answers with the end-of-text token, spelled in the template.
  const ChatTemplate t = ChatTemplate::builtin("alpaca");
  std::vector<ChatMessage> m = {{ChatRole::system, "S", ""},
                                {ChatRole::user, "say <|endoftext|>", ""},
                                {ChatRole::assistant, "ok", ""}};
  const RenderedChat r = t.render(m);
  const TokenizedChat c = tokenize_chat(tok, r, specials);
  ASSERT_EQ(c.ids.size(), c.loss_mask.size());
  size_t eot = 0;
  for (uint32_t id : c.ids) eot += id == tok.eot_id();
  EXPECT_EQ(eot, 1u) << "the user's \"<|endoftext|>\" is text; the template's is the token";
  // The mask covers exactly "ok" and the end-of-text token, the last three learned tokens.
  std::vector<uint32_t> learned;
  for (size_t i = 0; i < c.ids.size(); ++i)
    if (c.loss_mask[i]) learned.push_back(c.ids[i]);
  EXPECT_EQ(learned, (std::vector<uint32_t>{'o', 'k', tok.eot_id()}));
  // Decoding gives the rendered text back.
  EXPECT_EQ(tok.decode(c.ids), r.text);
}
