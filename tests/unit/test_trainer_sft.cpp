// [train] objective = "sft" end to end through the Trainer, in f64 on the host backend:
// the same documents packed several to a row (block-diagonal attention, positions restarting)
// and unpacked (one per row) give the same losses, gradient norms, weights and validation
// loss when every step holds all documents (the masked loss is a mean per counted token, so
// row boundaries do not matter); on both architectures. And the errors: sft on pre-training
// shards, a document longer than seq_len, an unknown objective, LoRA
// (refused until the model carries adapters).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <unistd.h>

#include "backend/backend.h"
#include "config/config.h"
#include "core/error.h"
#include "data/token_shard.h"
#include "train/step_rows.h"
#include "train/trainer.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

// Six documents (5+6+4 | 7+3+6 tokens: two packed rows of 16), answers masked in the second
// half of each.
fs::path make_sft_data(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("llmpi_sft_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  TokenShardWriter w((d / "train.bin").string(), 2, ShardContent::documents_with_mask);
  uint32_t t = 1;
  for (int len : {5, 6, 4, 7, 3, 6}) {
    std::vector<uint32_t> ids;
    std::vector<uint8_t> mask;
    for (int i = 0; i < len; ++i) {
      ids.push_back(t = (t * 7 + 3) % 61);
      mask.push_back(i >= len / 2 ? 1 : 0);
    }
    w.append_document(ids, mask);
  }
  w.commit();
  write_token_shard((d / "plain.bin").string(), std::vector<uint32_t>(100, 3), 64);
  return d;
}

Config sft_config(const fs::path& d, const std::string& arch, bool packing, int64_t batch,
                  int64_t seq_len = 16, const std::string& train = "train.bin") {
  std::ostringstream t;
  t << "[model]\narch = \"" << arch << "\"\nvocab_size = 64\nn_layer = 2\nn_head = 4\n"
    << (arch == "llama" ? "n_kv_head = 2\nd_ff = 64\n" : "") << "d_model = 32\nmax_seq_len = 16\n"
    << "[train]\nobjective = \"sft\"\npacking = " << (packing ? "true" : "false")
    << "\nsteps = 3\nbatch_size = " << batch << "\nseq_len = " << seq_len
    << "\nlr = 1e-2\nlog_every = 1\neval_batches = 1\n"
    << "[data]\ntrain = \"" << (d / train).string() << "\"\nval = \"" << (d / "train.bin").string()
    << "\"\n[run]\ndir = \"" << (d / "run").string() << "\"\n";
  Config c = parse_config(t.str(), "sft.toml");
  c.train.master_dtype = DType::f64;
  return c;
}

std::vector<double> weights(Trainer& tr) {
  const Tensor& m = tr.params().master();
  return std::vector<double>(m.ptr<double>(), m.ptr<double>() + m.numel());
}

}  // namespace

TEST(TrainerSft, PackedEqualsUnpacked) {
  const fs::path d = make_sft_data("pack");
  auto be = make_host_backend();
  for (const char* arch : {"gpt2", "llama"}) {
    const Config packed_cfg = sft_config(d, arch, true, 2), plain_cfg = sft_config(d, arch, false, 6);
    const TokenDataset data({(d / "train.bin").string()}, 64);
    ASSERT_EQ(StepRows(packed_cfg, data).n_rows(), 2);  // every step holds all six documents
    ASSERT_EQ(StepRows(plain_cfg, data).n_rows(), 6);
    std::ostringstream log;
    Trainer packed(packed_cfg, *be, MPI_COMM_SELF, log), plain(plain_cfg, *be, MPI_COMM_SELF, log);
    RunOptions o;
    o.write_model = o.checkpoints = false;
    const TrainSummary a = packed.run(o), b = plain.run(o);
    ASSERT_EQ(a.steps.size(), 3u);
    for (size_t s = 0; s < 3; ++s) {
      EXPECT_NEAR(a.steps[s].loss, b.steps[s].loss, 1e-12) << arch << " step " << s + 1;
      EXPECT_NEAR(a.steps[s].grad_norm, b.steps[s].grad_norm, 1e-12) << arch;
    }
    EXPECT_NEAR(a.steps[0].loss, std::log(64.0), 0.3) << "an untrained model, masked tokens only";
    ASSERT_EQ(a.val_losses.size(), 2u);  // before and after training
    EXPECT_NEAR(a.val_losses.back().second, b.val_losses.back().second, 1e-12) << arch;
    EXPECT_LT(a.val_losses.back().second, a.val_losses.front().second) << arch;
    const std::vector<double> wa = weights(packed), wb = weights(plain);
    ASSERT_EQ(wa.size(), wb.size());
    double worst = 0;
    for (size_t i = 0; i < wa.size(); ++i) worst = std::max(worst, std::abs(wa[i] - wb[i]));
    EXPECT_LT(worst, 1e-12) << arch;
    EXPECT_NE(log.str().find("2 rows of 16 (6 documents, packed)"), std::string::npos) << log.str();
  }
  fs::remove_all(d);
}

TEST(TrainerSft, BadDataAndConfig) {
  const fs::path d = make_sft_data("bad");
  auto be = make_host_backend();
  std::ostringstream log;
  auto message = [&](const Config& c) -> std::string {
    try {
      Trainer t(c, *be, MPI_COMM_SELF, log);
    } catch (const UserError& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string plain = message(sft_config(d, "gpt2", true, 2, 16, "plain.bin"));
  EXPECT_NE(plain.find("not fine-tuning data"), std::string::npos) << plain;
  EXPECT_NE(plain.find("prepare --format sft"), std::string::npos) << plain;
  const std::string longer = message(sft_config(d, "gpt2", true, 2, 6));
  EXPECT_NE(longer.find("7 tokens, more than seq_len 6"), std::string::npos) << longer;
  // Adapters are not in the model yet: a LoRA config is refused, not trained as full FT.
  Config lora = sft_config(d, "gpt2", true, 2);
  lora.lora.rank = 4;
  const std::string no_lora = message(lora);
  EXPECT_NE(no_lora.find("lora.rank = 4: LoRA training is not supported yet"), std::string::npos)
      << no_lora;
  auto config_error = [](const std::string& train, const std::string& parallel) -> std::string {
    try {
      parse_config("[model]\nvocab_size = 64\nn_layer = 2\nn_head = 1\nd_model = 8\n"
                   "max_seq_len = 8\n[train]\n" + train + "\nsteps = 1\nbatch_size = 1\n"
                   "seq_len = 8\n[data]\ntrain = \"x\"\n[parallel]\n" + parallel + "\n",
                   "o.toml");
    } catch (const UserError& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string dpo = config_error("objective = \"dop\"", "");
  EXPECT_NE(dpo.find("train.objective"), std::string::npos) << dpo;
  EXPECT_NE(dpo.find("\"dpo\""), std::string::npos) << dpo;
  // Pipeline stages carry document starts: packing under pp is accepted.
  EXPECT_EQ(config_error("objective = \"sft\"", "pp = 2"), "no error");
  EXPECT_EQ(config_error("objective = \"sft\"\npacking = false", "pp = 2"), "no error");
  fs::remove_all(d);
}
