// Configuration layer: malformed configs (table-driven, each with the message it must give,
// line numbers included), defaults and derived defaults, --set overrides, every preset in
// configs/ loads, to_toml round-trips, the "did you mean" matcher, docs cover every key.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/config_schema.h"
#include "config/did_you_mean.h"
#include "core/error.h"
#include "core/excerpt.h"

using namespace llmpi;

namespace {

// A valid config; the line numbers below are those the expected messages name.
const char* const kBase =
    "[model]\n"                // 1
    "arch = \"gpt2\"\n"        // 2
    "vocab_size = 256\n"       // 3
    "n_layer = 2\n"            // 4
    "n_head = 4\n"             // 5
    "d_model = 64\n"           // 6
    "max_seq_len = 32\n"       // 7
    "\n"                       // 8
    "[train]\n"                // 9
    "steps = 10\n"             // 10
    "batch_size = 2\n"         // 11
    "seq_len = 32\n"           // 12
    "lr = 1e-3\n"              // 13
    "min_lr = 1e-4\n"          // 14
    "warmup_steps = 2\n"       // 15
    "\n"                       // 16
    "[data]\n"                 // 17
    "train = \"data/x.bin\"\n" // 18
    "\n"                       // 19
    "[parallel]\n"             // 20
    "tp = 1\n"                 // 21
    "\n"                       // 22
    "[run]\n"                  // 23
    "dir = \"runs/test\"\n";   // 24

// The llama shape of kBase: d_ff is required for llama.
const std::vector<std::pair<std::string, std::string>> kLlama = {
    {"arch = \"gpt2\"", "arch = \"llama\""}, {"max_seq_len = 32", "max_seq_len = 32\nd_ff = 176"}};

struct Edit {
  std::string from, to;
};

// The last line of kBase, and it followed by a [lora] section of `keys` (from line 25 on).
const char* const kRunDir = "dir = \"runs/test\"";
std::string lora(const std::string& keys) { return std::string(kRunDir) + "\n[lora]\n" + keys; }
// The same with a [dpo] or [eval] section (its header at line 25, keys from line 26 on).
std::string section(const std::string& name, const std::string& keys) {
  return std::string(kRunDir) + "\n[" + name + "]\n" + keys;
}
const std::vector<std::string> kDpo = {"train.objective=dpo"};

// kBase with each `from` (a whole line or run of lines, first occurrence) replaced by `to`.
std::string edited(const std::vector<Edit>& edits) {
  std::string text = std::string("\n") + kBase;  // so that every line starts after a '\n'
  for (const Edit& e : edits) {
    const size_t at = text.find("\n" + e.from + "\n");
    if (at == std::string::npos) throw std::logic_error("test edit not found: " + e.from);
    text.replace(at + 1, e.from.size(), e.to);
  }
  return text.substr(1);
}

std::vector<Edit> llama(std::vector<Edit> more = {}) {
  std::vector<Edit> edits;
  for (const auto& [from, to] : kLlama) edits.push_back({from, to});
  edits.insert(edits.end(), more.begin(), more.end());
  return edits;
}

// The UserError message of parsing, or "" when it parses.
std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(text, "test.toml", overrides);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

struct BadCase {
  const char* name;
  std::vector<Edit> edits;
  std::vector<std::string> overrides;
  std::string expected;  // a fragment of the message
};

std::vector<BadCase> bad_cases() {
  return {
      {"unknown_key", {{"n_layer = 2", "n_layer = 2\nfoo_bar = 1"}}, {},
       "test.toml:5: key 'model.foo_bar': unknown key; expected one of the keys of [model]: arch, "
       "vocab_size, n_layer"},
      {"typo_suggestion", {{"n_head = 4", "n_heads = 4"}}, {},
       "test.toml:5: key 'model.n_heads': unknown key; expected a key of [model]; did you mean "
       "'n_head'?"},
      {"key_in_wrong_section", {{"n_layer = 2", "n_layer = 2\nlr = 0.1"}}, {},
       "test.toml:5: key 'model.lr': unknown key; expected a key of [model]; 'lr' belongs in [train]"},
      {"key_suggested_from_other_section", {{"n_layer = 2", "n_layer = 2\nwarmup = 3"}}, {},
       "test.toml:5: key 'model.warmup': unknown key; expected a key of [model]; did you mean "
       "'train.warmup_steps'?"},
      {"unknown_section", {{"[run]", "[runs]"}}, {},
       "test.toml:23: section [runs]: unknown section; expected one of [model], [train], [data], "
       "[parallel], [checkpoint], [run], [watchdog], [logbook], [lora], [dpo], [eval]; did you mean [run]?"},
      {"key_outside_sections", {{"[model]", "steps = 3\n[model]"}}, {},
       "test.toml:1: key 'steps': outside any section; expected it under [train] (as train.steps)"},
      {"section_not_a_table", {{"[model]", "run = 5\n[model]"}, {"[run]\ndir = \"runs/test\"", ""}}, {},
       "test.toml:1: key 'run': 5 is an integer; expected a table [run]"},
      {"string_for_int", {{"n_layer = 2", "n_layer = \"two\""}}, {},
       "test.toml:4: key 'model.n_layer': \"two\" is a string; expected an integer in 1..2147483647"},
      // Model sizes are bounded: d_model = 2^62 made the default d_ff (4 * d_model) overflow
      // to 0, reported as "model.d_ff = 0", a key the file does not set; max_seq_len = 2^63 - 1
      // made "needs -9223372036854775808 tokens" of the data.
      {"huge_d_model", {{"d_model = 64", "d_model = 4611686018427387904"}, {"n_head = 4", "n_head = 1"}}, {},
       "test.toml:6: key 'model.d_model': 4611686018427387904 is out of range; expected an integer in 1..2147483647"},
      {"huge_max_seq_len", {{"max_seq_len = 32", "max_seq_len = 9223372036854775807"}}, {},
       "test.toml:7: key 'model.max_seq_len': 9223372036854775807 is out of range; expected an integer in 1..2147483647"},
      {"vocab_past_32_bit_ids", {}, {"model.vocab_size=2147483648"},
       "--set model.vocab_size=2147483648: key 'model.vocab_size': 2147483648 is out of range; expected an integer in 1..2147483647"},
      {"float_for_int", {{"batch_size = 2", "batch_size = 2.5"}}, {},
       "test.toml:11: key 'train.batch_size': 2.5 is a floating-point number; expected an integer >= 1"},
      {"whole_float_for_int", {{"steps = 10", "steps = 1e3"}}, {},
       "test.toml:10: key 'train.steps': 1000.0 is a floating-point number; expected an integer >= 1"},
      {"bool_for_float", {{"lr = 1e-3", "lr = true"}}, {},
       "test.toml:13: key 'train.lr': true is a boolean; expected a finite number > 0"},
      {"nan_for_float", {{"lr = 1e-3", "lr = nan"}}, {},
       "test.toml:13: key 'train.lr': nan is a floating-point number; expected a finite number > 0"},
      {"negative_size", {{"vocab_size = 256", "vocab_size = -5"}}, {},
       "test.toml:3: key 'model.vocab_size': -5 is out of range; expected an integer in 1..2147483647"},
      {"zero_size", {{"d_model = 64", "d_model = 0"}}, {},
       "test.toml:6: key 'model.d_model': 0 is out of range; expected an integer in 1..2147483647"},
      {"zero_lr", {{"lr = 1e-3", "lr = 0"}}, {},
       "test.toml:13: key 'train.lr': 0.0 is out of range; expected a finite number > 0"},
      {"n_head_not_dividing_d_model", {{"n_head = 4", "n_head = 3"}}, {},
       "test.toml:5: key 'model.n_head': 3 does not divide model.d_model = 64; expected a divisor "
       "of d_model"},
      {"n_kv_head_not_dividing_n_head", llama({{"n_head = 4", "n_head = 4\nn_kv_head = 3"}}), {},
       "test.toml:6: key 'model.n_kv_head': 3 does not divide model.n_head = 4; expected a divisor "
       "of n_head"},
      {"gpt2_with_gqa", {{"n_head = 4", "n_head = 4\nn_kv_head = 2"}}, {},
       "test.toml:6: key 'model.n_kv_head': 2 differs from model.n_head = 4; expected n_kv_head == "
       "n_head for arch \"gpt2\""},
      {"llama_odd_head_dim", llama({{"d_model = 64", "d_model = 36"}}), {},
       "test.toml:5: key 'model.n_head': head_dim = d_model / n_head = 36 / 4 = 9 is odd; expected "
       "an even head_dim for arch \"llama\""},
      {"llama_without_d_ff", {{"arch = \"gpt2\"", "arch = \"llama\""}}, {},
       "test.toml:1: key 'model.d_ff': missing (required for arch \"llama\"); expected an integer >= 1"},
      {"unknown_arch", {{"arch = \"gpt2\"", "arch = \"gpt3\""}}, {},
       "test.toml:2: key 'model.arch': \"gpt3\" is not a known value (did you mean \"gpt2\"?); "
       "expected one of \"gpt2\" or \"llama\""},
      {"unknown_decay", {{"warmup_steps = 2", "warmup_steps = 2\ndecay = \"cosin\""}}, {},
       "test.toml:16: key 'train.decay': \"cosin\" is not a known value (did you mean \"cosine\"?); "
       "expected one of \"cosine\", \"linear\" or \"constant\""},
      {"unknown_recompute", {{"warmup_steps = 2", "warmup_steps = 2\nrecompute = \"ful\""}}, {},
       "test.toml:16: key 'train.recompute': \"ful\" is not a known value (did you mean \"full\"?); "
       "expected one of \"none\", \"selective\" or \"full\""},
      {"recompute_not_a_string", {{"warmup_steps = 2", "warmup_steps = 2\nrecompute = true"}}, {},
       "test.toml:16: key 'train.recompute': true is a boolean; expected one of \"none\", "
       "\"selective\" or \"full\""},
      {"unknown_cuda_graphs", {{"warmup_steps = 2", "warmup_steps = 2\ncuda_graphs = \"yes\""}}, {},
       "test.toml:16: key 'train.cuda_graphs': \"yes\" is not a known value; expected one of "
       "\"auto\", \"on\" or \"off\""},
      {"beta2_equal_one", {{"warmup_steps = 2", "warmup_steps = 2\nbeta2 = 1.0"}}, {},
       "test.toml:16: key 'train.beta2': 1.0 is out of range; expected a finite number in [0, 1)"},
      {"beta1_negative", {{"warmup_steps = 2", "warmup_steps = 2\nbeta1 = -0.1"}}, {},
       "test.toml:16: key 'train.beta1': -0.1 is out of range; expected a finite number in [0, 1)"},
      {"min_lr_above_lr", {{"min_lr = 1e-4", "min_lr = 1e-2"}}, {},
       "test.toml:14: key 'train.min_lr': 0.01 exceeds train.lr = 0.001; expected a number in [0, lr]"},
      {"warmup_above_steps", {{"warmup_steps = 2", "warmup_steps = 20"}}, {},
       "test.toml:15: key 'train.warmup_steps': 20 exceeds train.steps = 10; expected an integer in "
       "0..10"},
      {"seq_len_above_max", {{"seq_len = 32", "seq_len = 64"}}, {},
       "test.toml:12: key 'train.seq_len': 64 exceeds model.max_seq_len = 32; expected an integer in "
       "1..32"},
      {"empty_data_path", {{"train = \"data/x.bin\"", "train = \"\""}}, {},
       "test.toml:18: key 'data.train': the string is empty; expected a non-empty string"},
      {"zero_stage_4", {{"tp = 1", "tp = 1\nzero_stage = 4"}}, {},
       "test.toml:22: key 'parallel.zero_stage': 4 is out of range; expected an integer in 0..3"},
      {"sequence_parallel_without_tp", {{"tp = 1", "tp = 1\nsequence_parallel = true"}}, {},
       "test.toml:22: key 'parallel.sequence_parallel': true with parallel.tp = 1; expected tp > 1"},
      {"virtual_stages_without_pp", {{"tp = 1", "tp = 1\nvirtual_stages = 2"}}, {},
       "test.toml:22: key 'parallel.virtual_stages': 2 with parallel.pp = 1; expected "
       "virtual_stages = 1 without pipeline parallelism, or pp > 1"},
      {"tp_not_dividing_heads", {{"tp = 1", "tp = 3"}}, {},
       "test.toml:21: key 'parallel.tp': 3 does not divide model.n_head = 4; expected a divisor of "
       "n_head"},
      {"tp_not_dividing_kv_heads",
       llama({{"n_head = 4", "n_head = 12\nn_kv_head = 4"}, {"d_model = 64", "d_model = 96"},
              {"tp = 1", "tp = 6"}}),
       {}, "test.toml:23: key 'parallel.tp': 6 does not divide model.n_kv_head = 4"},
      {"too_many_pipeline_chunks", {{"tp = 1", "pp = 2\nvirtual_stages = 2\nmicro_batches = 4"}}, {},
       "test.toml:21: key 'parallel.pp': pp * virtual_stages = 2 * 2 = 4 exceeds model.n_layer = 2"},
      {"keep_every_not_multiple", {{"[run]", "[checkpoint]\nevery = 10\nkeep_every = 15\n\n[run]"}}, {},
       "test.toml:25: key 'checkpoint.keep_every': 15 is not a multiple of checkpoint.every = 10"},
      {"toml_syntax_error", {{"lr = 1e-3", "lr = = 1e-3"}}, {}, "test.toml:13:"},
      {"toml_duplicate_key", {{"lr = 1e-3", "lr = 1e-3\nlr = 2e-3"}}, {}, "test.toml:14:"},
      {"missing_vocab_size", {{"vocab_size = 256", ""}}, {},
       "test.toml:1: key 'model.vocab_size': missing from [model]; expected an integer in 1..2147483647"},
      {"missing_section", {{"[data]\ntrain = \"data/x.bin\"", ""}}, {},
       "test.toml: key 'data.train': missing (there is no [data] section); expected a non-empty "
       "string"},
      {"set_without_equals", {}, {"train.lr"},
       "--set train.lr: missing '='; expected section.key=value"},
      {"set_without_section", {}, {"lr=1e-3"},
       "--set lr=1e-3: key 'lr': not of the form section.key; expected section.key=value; did you "
       "mean 'train.lr'?"},
      {"set_unknown_key", {}, {"train.lrr=1e-3"},
       "--set train.lrr=1e-3: key 'train.lrr': unknown key; expected a key of [train]; did you "
       "mean 'lr'?"},
      {"set_unknown_section", {}, {"optim.lr=1e-3"},
       "--set optim.lr=1e-3: section [optim]: unknown section"},
      {"set_wrong_type", {}, {"train.steps=many"},
       "--set train.steps=many: key 'train.steps': \"many\" is a string; expected an integer >= 1"},
      {"set_float_for_int", {}, {"train.steps=1.5"},
       "--set train.steps=1.5: key 'train.steps': 1.5 is a floating-point number"},
      {"set_array_for_string", {}, {"data.train=[1, 2]"},
       "--set data.train=[1, 2]: key 'data.train':"},
      {"set_cannot_inject_keys", {}, {"train.steps=5\nseed = 7"},
       "--set train.steps=5\\nseed = 7: key 'train.steps': \"5\\nseed = 7\" is a string; expected "
       "an integer >= 1"},
      {"set_breaks_consistency", {}, {"train.seq_len=64"},
       "--set train.seq_len=64: key 'train.seq_len': 64 exceeds model.max_seq_len = 32"},
      // [lora] (lines 25.. after the edit of line 24)
      {"lora_without_rank", {{kRunDir, lora("alpha = 32")}}, {},
       "test.toml:25: key 'lora.rank': missing from [lora]; expected an integer >= 1 (the "
       "adapters' rank), or 0 for no adapters"},
      {"lora_negative_rank", {{kRunDir, lora("rank = -4")}}, {},
       "test.toml:26: key 'lora.rank': -4 is out of range; expected an integer >= 0"},
      {"lora_zero_alpha", {{kRunDir, lora("rank = 4\nalpha = 0")}}, {},
       "test.toml:27: key 'lora.alpha': 0.0 is out of range; expected a finite number > 0"},
      {"lora_dropout_out_of_range", {{kRunDir, lora("rank = 4\ndropout = 1.0")}}, {},
       "test.toml:27: key 'lora.dropout': 1.0 is out of range; expected a finite number in [0, 1)"},
      {"lora_dropout_not_yet", {{kRunDir, lora("rank = 4\ndropout = 0.05")}}, {},
       "test.toml:27: key 'lora.dropout': 0.05 is not supported yet; expected 0 (adapters train "
       "without dropout)"},
      {"lora_targets_not_strings", {{kRunDir, lora("rank = 4\ntarget_modules = [\"q\", 2]")}}, {},
       "test.toml:27: key 'lora.target_modules': element 1: 2 is an integer; expected an array of "
       "strings"},
      {"lora_targets_not_array", {{kRunDir, lora("rank = 4\ntarget_modules = \"q,v\"")}}, {},
       "test.toml:27: key 'lora.target_modules': \"q,v\" is a string; expected an array of strings"},
      {"lora_unknown_module", {{kRunDir, lora("rank = 4\ntarget_modules = [\"q\", \"down\", \"gat\"]")}},
       {}, "test.toml:27: key 'lora.target_modules': element 2: \"gat\" is not a module name (did "
           "you mean \"gate\"?); expected module names among q, k, v, o, gate, up, down, head"},
      {"lora_module_twice", {{kRunDir, lora("rank = 4\ntarget_modules = [\"q\", \"v\", \"q\"]")}}, {},
       "test.toml:27: key 'lora.target_modules': element 2: \"q\" is listed twice; expected each "
       "module at most once"},
      {"lora_no_modules", {{kRunDir, lora("rank = 4\ntarget_modules = []")}}, {},
       "test.toml:27: key 'lora.target_modules': an empty list; expected one or more module names"},
      {"lora_gate_on_gpt2", {{kRunDir, lora("rank = 4\ntarget_modules = [\"gate\"]")}}, {},
       "test.toml:27: key 'lora.target_modules': element 0: \"gate\" with model.arch = \"gpt2\" "
       "(no gate projection); expected q, k, v, o, up, down or head for arch \"gpt2\""},
      {"lora_unknown_base_dtype", {{kRunDir, lora("rank = 4\nbase_dtype = \"int4\"")}}, {},
       "test.toml:27: key 'lora.base_dtype': \"int4\" is not a base storage; expected \"auto\" "
       "(the compute dtype) or \"nf4\" (QLoRA's 4-bit base)"},
      {"lora_base_dtype_without_adapters", {{kRunDir, lora("rank = 0\nbase_dtype = \"nf4\"")}}, {},
       "test.toml:27: key 'lora.base_dtype': given without adapters; expected lora.rank >= 1"},
      {"lora_base_dtype_not_a_string", {{kRunDir, lora("rank = 4\nbase_dtype = 4")}}, {},
       "test.toml:27: key 'lora.base_dtype': 4 is an integer; expected a string"},
      // [dpo] and [train] objective = "dpo"
      {"dpo_unknown_objective", {}, {"train.objective=dop"},
       "key 'train.objective': \"dop\" is not a known value (did you mean \"dpo\"?); expected one of "
       "\"lm\", \"sft\" or \"dpo\""},
      {"dpo_unknown_loss", {{kRunDir, section("dpo", "loss = \"hinge\"")}}, kDpo,
       "test.toml:26: key 'dpo.loss': \"hinge\" is not a known value; expected one of \"sigmoid\" "
       "or \"ipo\""},
      {"dpo_zero_beta", {{kRunDir, section("dpo", "beta = 0.0")}}, kDpo,
       "test.toml:26: key 'dpo.beta': 0.0 is out of range; expected a finite number > 0"},
      {"dpo_beta_not_a_number", {{kRunDir, section("dpo", "beta = \"0.1\"")}}, kDpo,
       "test.toml:26: key 'dpo.beta': \"0.1\" is a string; expected a finite number > 0"},
      {"dpo_smoothing_half", {{kRunDir, section("dpo", "label_smoothing = 0.5")}}, kDpo,
       "test.toml:26: key 'dpo.label_smoothing': 0.5 is out of range; expected a finite number in "
       "[0, 0.5)"},
      {"dpo_smoothing_with_ipo", {{kRunDir, section("dpo", "loss = \"ipo\"\nlabel_smoothing = 0.1")}},
       kDpo, "test.toml:27: key 'dpo.label_smoothing': 0.1 with dpo.loss = \"ipo\"; expected 0 "
             "(label smoothing applies to the sigmoid loss only)"},
      {"dpo_section_without_objective", {{kRunDir, section("dpo", "beta = 0.2")}}, {},
       "test.toml:25: key 'dpo': a [dpo] section with train.objective = \"lm\"; expected "
       "train.objective = \"dpo\""},
      {"dpo_unknown_key", {{kRunDir, section("dpo", "betta = 0.2")}}, kDpo,
       "key 'dpo.betta': unknown key; expected a key of [dpo]; did you mean 'beta'?"},
      // [eval]
      {"eval_empty_prompt", {{kRunDir, section("eval", "prompts = [\"Define cat\", \"\"]")}},
       {"data.tokenizer=tok.bpe"},
       "test.toml:26: key 'eval.prompts': entry 2 is an empty string; expected non-empty prompts"},
      {"eval_prompts_without_tokenizer", {{kRunDir, section("eval", "prompts = [\"Define cat\"]")}},
       {}, "test.toml:26: key 'eval.prompts': given without data.tokenizer"},
      {"eval_prompts_under_tp", {{kRunDir, section("eval", "prompts = [\"Hello\"]")}, {"tp = 1", "tp = 2"}},
       {"data.tokenizer=tok.bpe"}, "key 'eval.prompts': with parallel.tp = 2, pp = 1; expected tp = pp = 1"},
      {"eval_prompts_not_strings", {{kRunDir, section("eval", "prompts = [1]")}}, {},
       "test.toml:26: key 'eval.prompts': element 0: 1 is an integer; expected an array of strings"},
      {"eval_zero_tokens", {{kRunDir, section("eval", "max_new_tokens = 0")}}, {},
       "test.toml:26: key 'eval.max_new_tokens': 0 is out of range; expected an integer >= 1"},
      {"lora_set_unknown_key", {}, {"lora.ranks=8"},
       "--set lora.ranks=8: key 'lora.ranks': unknown key; expected a key of [lora]; did you mean "
       "'rank'?"},
  };
}

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class ConfigBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigBad, GivesItsMessage) {
  const BadCase& c = GetParam();
  const std::string msg = error_of(edited(c.edits), c.overrides);
  ASSERT_FALSE(msg.empty()) << "config was accepted";
  EXPECT_NE(msg.find(c.expected), std::string::npos)
      << "message:\n" << msg << "\nlacks:\n" << c.expected;
}

INSTANTIATE_TEST_SUITE_P(Config, ConfigBad, ::testing::ValuesIn(bad_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

void expect_same_model(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.n_layer, b.n_layer);
  EXPECT_EQ(a.n_head, b.n_head);
  EXPECT_EQ(a.n_kv_head, b.n_kv_head);
  EXPECT_EQ(a.d_model, b.d_model);
  EXPECT_EQ(a.d_ff, b.d_ff);
  EXPECT_EQ(a.max_seq_len, b.max_seq_len);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.init_std, b.init_std);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
}

void expect_round_trip(const Config& c) {
  const std::string text = to_toml(c);
  const Config back = parse_config(text, "round-trip.toml");
  expect_same_model(back.model, c.model);
  EXPECT_EQ(back.train, c.train);
  EXPECT_EQ(back.data, c.data);
  EXPECT_EQ(back.parallel, c.parallel);
  EXPECT_EQ(back.checkpoint, c.checkpoint);
  EXPECT_EQ(back.run, c.run);
  EXPECT_EQ(back.lora, c.lora);
  EXPECT_EQ(back.source_text, text);
}

std::vector<std::filesystem::path> presets() {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(std::string(LLMPI_SOURCE_DIR) + "/configs"))
    if (e.path().extension() == ".toml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST(Config, BaseParsesWithDefaults) {
  const Config c = parse_config(kBase, "test.toml");
  EXPECT_EQ(c.source_path, "test.toml");
  EXPECT_EQ(c.model.arch, Arch::gpt2);
  EXPECT_EQ(c.model.n_kv_head, 4);              // = n_head
  EXPECT_EQ(c.model.d_ff, 256);                 // = 4 * d_model for gpt2
  EXPECT_TRUE(c.model.tied_embeddings);         // gpt2 default
  EXPECT_EQ(c.train.lr, 1e-3);
  EXPECT_EQ(c.train.beta2, 0.95);               // struct default
  EXPECT_EQ(c.train.decay, LrDecay::cosine);
  EXPECT_EQ(c.data.train, "data/x.bin");        // kept as written
  EXPECT_EQ(c.run.dir, "runs/test");
  EXPECT_EQ(c.source_text, to_toml(c));
}

TEST(Config, LlamaDerivedDefaults) {
  const Config c = parse_config(edited(llama()), "test.toml");
  EXPECT_EQ(c.model.arch, Arch::llama);
  EXPECT_EQ(c.model.n_kv_head, 4);
  EXPECT_EQ(c.model.d_ff, 176);
  EXPECT_FALSE(c.model.tied_embeddings);  // llama default
  const Config tied = parse_config(edited(llama({{"d_model = 64", "d_model = 64\ntied_embeddings = true"}})),
                                   "test.toml");
  EXPECT_TRUE(tied.model.tied_embeddings);
}

// [train] recompute lands in the ModelConfig the Transformer is built from; default "none";
// written back under [train].
TEST(Config, RecomputeIsReadIntoTheModelConfig) {
  EXPECT_EQ(parse_config(kBase, "test.toml").model.recompute, Recompute::none);
  const Config c = parse_config(edited({{"warmup_steps = 2", "warmup_steps = 2\nrecompute = \"full\""}}),
                                "test.toml", {"train.recompute=selective"});
  EXPECT_EQ(c.model.recompute, Recompute::selective);
  const size_t at = c.source_text.find("\nrecompute = \"selective\"\n");
  ASSERT_NE(at, std::string::npos);
  EXPECT_LT(c.source_text.find("[train]\n"), at);
  EXPECT_GT(c.source_text.find("[data]\n"), at);
  EXPECT_EQ(parse_config(c.source_text, "again.toml").model, c.model);
}

TEST(Config, IntegerAcceptedWhereNumberExpected) {
  const Config c = parse_config(edited({{"lr = 1e-3", "lr = 1"}, {"min_lr = 1e-4", "min_lr = 0"}}), "t");
  EXPECT_EQ(c.train.lr, 1.0);
  EXPECT_EQ(c.train.min_lr, 0.0);
}

TEST(Config, ReportsEveryKeyErrorAtOnceInLineOrder) {
  // TOML++ keeps keys sorted by name; the messages must come in the order of the file.
  const std::string msg = error_of(
      edited({{"n_layer = 2", "zz_unknown = 0"}, {"n_head = 4", "n_head = 4\naa_unknown = 0"},
              {"batch_size = 2", "batch_size = \"x\""}}),
      {"train.lr=-1"});
  const std::vector<std::string> expected_order = {
      "test.toml:1: key 'model.n_layer': missing", "test.toml:4: key 'model.zz_unknown'",
      "test.toml:6: key 'model.aa_unknown'", "test.toml:12: key 'train.batch_size'",
      "--set train.lr=-1: key 'train.lr': -1.0 is out of range"};
  size_t last = 0;
  for (const std::string& part : expected_order) {
    const size_t at = msg.find(part);
    ASSERT_NE(at, std::string::npos) << "lacks " << part << " in:\n" << msg;
    EXPECT_GE(at, last) << part << " out of order in:\n" << msg;
    last = at;
  }
}

TEST(Config, OverridesApply) {
  const Config c = parse_config(
      kBase, "test.toml",
      {"train.lr=2e-3", "model.n_layer = 3", "data.val=data/v.bin", "run.dir=\"runs/a b\"",
       "parallel.tp=2", "parallel.sequence_parallel=true", "train.decay=linear",
       "train.steps=100", "train.steps=200", "checkpoint.log_spaced=true"});
  EXPECT_EQ(c.train.lr, 2e-3);
  EXPECT_EQ(c.model.n_layer, 3);
  EXPECT_EQ(c.data.val, "data/v.bin");     // a bare word is a string
  EXPECT_EQ(c.run.dir, "runs/a b");        // a quoted TOML string
  EXPECT_EQ(c.parallel.tp, 2);
  EXPECT_TRUE(c.parallel.sequence_parallel);
  EXPECT_EQ(c.train.decay, LrDecay::linear);
  EXPECT_EQ(c.train.steps, 200);           // the last override wins
  EXPECT_TRUE(c.checkpoint.log_spaced);    // a section absent from the file is created
  EXPECT_NE(c.source_text.find("lr = 0.002\n"), std::string::npos) << c.source_text;
  EXPECT_NE(c.source_text.find("n_layer = 3\n"), std::string::npos) << c.source_text;
}

TEST(Config, OverrideMayRepairTheFile) {
  const std::string bad = edited({{"seq_len = 32", "seq_len = 64"}});
  EXPECT_FALSE(error_of(bad).empty());
  EXPECT_EQ(parse_config(bad, "test.toml", {"model.max_seq_len=64"}).train.seq_len, 64);
}

TEST(Config, MissingFile) {
  try {
    load_config("/nonexistent/dir/none.toml");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/none.toml: no such file"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(load_config(std::string(LLMPI_SOURCE_DIR) + "/configs"), UserError);  // a directory
}

TEST(Config, LoadsFromFileWithItsPathInMessages) {
  const auto dir = std::filesystem::temp_directory_path() / "llmpi_test_config";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "bad.toml").string();
  std::ofstream(path) << edited({{"n_head = 4", "n_head = 5"}});
  try {
    load_config(path);
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":5: key 'model.n_head'"), std::string::npos) << e.what();
  }
  std::ofstream(path) << kBase;
  EXPECT_EQ(load_config(path).source_path, path);
  std::filesystem::remove_all(dir);
}

TEST(Config, EveryPresetLoads) {
  const auto files = presets();
  ASSERT_GE(files.size(), 4u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    Config c;
    ASSERT_NO_THROW(c = load_config(f.string())) << f;
    EXPECT_EQ(c.source_path, f.string());
    expect_round_trip(c);
  }
}

TEST(Config, PresetShapes) {
  const std::string dir = std::string(LLMPI_SOURCE_DIR) + "/configs/";
  auto tokens_per_step = [](const Config& c) {
    return c.parallel.dp * c.parallel.micro_batches * c.train.batch_size * c.train.seq_len;
  };
  const Config tiny = load_config(dir + "tiny.toml");
  EXPECT_EQ(tiny.model.d_ff, 4 * tiny.model.d_model);
  EXPECT_EQ(tiny.data.train, "data/fortunes/train.bin");
  const Config tl = load_config(dir + "tiny-llama.toml");
  EXPECT_EQ(tl.model.arch, Arch::llama);
  EXPECT_EQ(tl.model.n_kv_head, 2);
  EXPECT_FALSE(tl.model.tied_embeddings);
  const Config g = load_config(dir + "gpt2-124m.toml");
  EXPECT_EQ(g.model.d_ff, 3072);
  EXPECT_EQ(tokens_per_step(g), 524288);
  const Config t = load_config(dir + "tinyllama-1.1b.toml");
  EXPECT_EQ(t.model.head_dim(), 64);
  EXPECT_EQ(tokens_per_step(t), 2097152);
  // A preset keeps its global batch when dp divides micro_batches.
  const Config t16 = load_config(dir + "tinyllama-1.1b.toml", {"parallel.dp=16", "parallel.micro_batches=8"});
  EXPECT_EQ(tokens_per_step(t16), 2097152);
}

TEST(Config, RoundTripsAwkwardValues) {
  Config c = parse_config(edited(llama()), "test.toml");
  c.data.val = "dir with \"quotes\"\\ and\nnewline\tand tab and \x01 and é";
  c.data.tokenizer = "";
  c.train.lr = 0.1 + 0.2;           // not the shortest decimal of 0.3
  c.train.min_lr = 1e-300;
  c.train.eps = 5e-324;             // the smallest subnormal
  c.train.weight_decay = 1.5e300;
  c.model.rope_theta = 500000.0;    // an integral float must stay a float
  c.train.seed = 9007199254740993;  // not representable as a double
  c.train.cuda_graphs = CudaGraphs::off;
  expect_round_trip(c);
}

// [lora]: off by default; a section with its rank turns adapters on; the keys round-trip.
TEST(Config, LoraSection) {
  const Config base = parse_config(kBase, "test.toml");
  EXPECT_FALSE(base.lora.enabled());
  EXPECT_EQ(base.lora.target_modules, (std::vector<std::string>{"q", "v"}));
  const Config c = parse_config(
      edited(llama({{kRunDir, lora("rank = 8\nalpha = 32\nrslora = true\n"
                                   "target_modules = [\"q\", \"k\", \"v\", \"o\", \"gate\", \"up\", \"down\"]")}})),
      "test.toml");
  EXPECT_TRUE(c.lora.enabled());
  EXPECT_EQ(c.lora.rank, 8);
  EXPECT_EQ(c.lora.alpha, 32.0);
  EXPECT_TRUE(c.lora.rslora);
  EXPECT_EQ(c.lora.dropout, 0.0);
  EXPECT_EQ(c.lora.target_modules.size(), 7u);
  expect_round_trip(c);
  // An explicit rank 0 is "no adapters"; the other keys are then not checked against the model.
  const Config off = parse_config(edited({{kRunDir, lora("rank = 0\ntarget_modules = [\"gate\"]")}}),
                                  "test.toml", {"parallel.tp=2"});
  EXPECT_FALSE(off.lora.enabled());
  // Overrides reach the section.
  const Config set = parse_config(kBase, "test.toml", {"lora.rank=4", "lora.target_modules=[\"up\"]"});
  EXPECT_EQ(set.lora.rank, 4);
  EXPECT_EQ(set.lora.target_modules, (std::vector<std::string>{"up"}));
}

TEST(Config, SchemaIsConsistent) {
  for (const auto& k : config::config_keys()) {
    SCOPED_TRACE(k.path());
    EXPECT_EQ(config::find_config_key(k.section, k.name), &k);  // no duplicates
    const auto& s = config::config_sections();
    EXPECT_NE(std::find(s.begin(), s.end(), k.section), s.end());
    EXPECT_FALSE(k.expected().empty());
  }
}

TEST(Config, DocsDescribeEveryKey) {
  std::ifstream in(std::string(LLMPI_SOURCE_DIR) + "/docs/config.md");
  ASSERT_TRUE(in) << "docs/config.md is missing";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  for (std::string_view s : config::config_sections())
    EXPECT_NE(doc.find("## [" + std::string(s) + "]"), std::string::npos) << s;
  for (const auto& k : config::config_keys())
    EXPECT_NE(doc.find("| `" + std::string(k.name) + "` |"), std::string::npos) << k.path();
}

TEST(DidYouMean, FindsPlausibleTypos) {
  EXPECT_EQ(edit_distance("n_haed", "n_head"), 1u);  // transposition
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  const std::vector<std::string> names = {"n_head", "n_kv_head", "warmup_steps", "lr"};
  EXPECT_EQ(did_you_mean("n_heads", names), "n_head");
  EXPECT_EQ(did_you_mean("warmup", names), "warmup_steps");  // a prefix
  EXPECT_EQ(did_you_mean("lt", names), "lr");
  EXPECT_EQ(did_you_mean("dropout", names), std::nullopt);
}

// Issue #13 item 7: a huge value (10 MB in the report; 2 MB here, for time) is cut in every
// message that quotes it, and the "did you mean" matcher does not build a table of its
// length (it took ~1 GB for 10 MB).
TEST(Config, HugeValuesAreCutInMessages) {
  const std::string huge(2u << 20, 'x');
  const std::vector<std::vector<Edit>> cases = {
      {{"arch = \"gpt2\"", "arch = \"" + huge + "\""}},   // an enumeration
      {{"n_layer = 2", "n_layer = \"" + huge + "\""}},   // a string for an integer
      {{"tp = 1", huge + " = 1"}},                       // an unknown key
      {{"[run]", "[" + huge + "]"}},                     // an unknown section
  };
  for (const auto& edits : cases) {
    try {
      parse_config(edited(edits), "big.toml");
      ADD_FAILURE() << "accepted a 2 MB value";
    } catch (const UserError& e) {
      const std::string msg = e.what();
      EXPECT_LT(msg.size(), 2000u) << msg.substr(0, 300);
      EXPECT_NE(msg.find("... (20971"), std::string::npos) << msg.substr(0, 300);  // 2097152+
    }
  }
  try {
    parse_config(kBase, "big.toml", {"model.arch=" + huge});
    ADD_FAILURE() << "accepted a 2 MB override";
  } catch (const UserError& e) {
    EXPECT_LT(std::string(e.what()).size(), 2000u);
  }
  EXPECT_EQ(excerpt("short"), "short");
  EXPECT_EQ(excerpt("h\xc3\xa9llo", 2), "h... (6 bytes)");  // never half a UTF-8 character
}
