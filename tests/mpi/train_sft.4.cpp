// [train] objective = "sft" under layouts of 4 ranks, each against one rank
// (train_equivalence.h): fine-tuning shards (documents + loss mask), rows packed several
// documents to a row (block-diagonal attention, positions restarting) through tp2 with
// sequence parallelism and dp2 ZeRO 1, tp2·dp2 ZeRO 3 (just-in-time units), dp4 ZeRO 2;
// unpacked rows through pp2·dp2 (1F1B); packed rows under pp refused by the config.
#include "core/error.h"
#include "train_equivalence.h"

using namespace llmpi;
using namespace llmpi::testing;

TEST(TrainSft4, PackedUnderTpSpDpAndZero) {
  const auto d = shared_corpus("sft_packed4");
  expect_layout_matches(d, {.arch = "llama", .tp = 2, .dp = 2, .zero = 1, .sp = true,
                            .objective = "sft"});
  expect_layout_matches(d, {.arch = "gpt2", .tp = 2, .dp = 2, .zero = 3, .objective = "sft"});
  expect_layout_matches(d, {.arch = "llama", .dp = 4, .zero = 2, .objective = "sft"});
}

TEST(TrainSft4, UnpackedUnderPipeline) {
  const auto d = shared_corpus("sft_pp4");
  expect_layout_matches(d, {.arch = "gpt2", .pp = 2, .dp = 2, .zero = 1, .micro = 2,
                            .objective = "sft", .packing = false});
}

TEST(TrainSft4, PackedUnderPipelineIsRefused) {
  const auto d = shared_corpus("sft_pp_refused4");
  LayoutCase c{.arch = "gpt2", .pp = 2, .dp = 2, .micro = 2, .steps = 1, .objective = "sft"};
  auto be = make_host_backend();
  std::ostringstream log;
  std::string message = "no error";
  try {
    Trainer t(case_config(d, c, false), *be, MPI_COMM_WORLD, log);
    t.run(RunOptions{.write_model = false, .checkpoints = false});
  } catch (const UserError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("train.packing"), std::string::npos) << message;
  EXPECT_NE(message.find("pipeline stages do not carry document starts"), std::string::npos)
      << message;
}
