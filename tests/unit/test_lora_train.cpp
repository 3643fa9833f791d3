// LoRA and QLoRA runs on one rank (train/lora_setup.h, parallel/lora_base.h): a base model
// trained first, then adapters from it ([train] init_from): K steps + save + resume + K steps
// ≡ 2K steps bit for bit (losses, adapters), checkpoints that hold only the adapters and
// their moments plus the base's reference, a resume refused when the base file changed, the
// memory table's frozen base; then the run's model file merged (`llmpi lora merge`: W + s·B A)
// and exported with its PEFT adapter files (names, shapes, values, adapter_config.json).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/backend.h"
#include "config/config.h"
#include "core/error.h"
#include "core/text_file.h"
#include "corpus_util.h"
#include "io/checkpoint.h"
#include "io/model_file.h"
#include "io/safetensors.h"
#include "jobs/checkpoint_dir.h"
#include "llmpi_binary.h"
#include "model/lora.h"
#include "parallel/lora_base.h"
#include "parallel/memory_estimate.h"
#include "train/hf_export.h"
#include "train/loaded_model.h"
#include "train/trainer.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

struct LoraCase {
  std::string arch = "llama";
  int steps = 8, every = 4;
  std::string init_from;       // "" = the seeded base
  std::string base_dtype = "auto";
  int lora_rank = 4;           // 0 = a plain run (the base model's pre-training)
  std::string run = "run";
};

Config lora_config(const fs::path& d, const LoraCase& c) {
  std::ostringstream t;
  t << "[model]\narch = \"" << c.arch << "\"\nvocab_size = 64\nn_layer = 2\nn_head = 4\n"
    << (c.arch == "llama" ? "n_kv_head = 2\nd_ff = 64\n" : "") << "d_model = 32\nmax_seq_len = 16\n"
    << "[train]\nsteps = " << c.steps << "\nbatch_size = 2\nseq_len = 16\nlr = 1e-2\n"
    << "min_lr = 1e-3\nwarmup_steps = 2\nlog_every = 100\nseed = 77\n"
    << (c.init_from.empty() ? "" : "init_from = \"" + c.init_from + "\"\n")
    << "[data]\ntrain = \"" << (d / "train.bin").string() << "\"\n[parallel]\nmicro_batches = 2\n"
    << "[checkpoint]\nevery = " << c.every << "\nkeep_last = 5\n[run]\ndir = \""
    << (d / c.run).string() << "\"\n";
  if (c.lora_rank > 0)
    t << "[lora]\nrank = " << c.lora_rank << "\nalpha = 8\nrslora = true\ntarget_modules = "
      << (c.arch == "llama" ? R"(["q", "k", "v", "o", "gate", "up", "down", "head"])"
                            : R"(["q", "v", "o", "up", "down"])")
      << "\nbase_dtype = \"" << c.base_dtype << "\"\n";
  return parse_config(t.str(), "lora_case.toml");
}

RunOptions opts(bool model, int64_t stop_after = -1) {
  RunOptions o;
  o.write_model = model;
  o.stop_after = stop_after;
  return o;
}

std::vector<float> master_copy(Trainer& tr) {
  const Tensor& m = tr.params().master();
  return std::vector<float>(m.ptr<float>(), m.ptr<float>() + m.numel());
}

// A base model trained from the seeded init: <d>/base/model.h5.
std::string train_base(const fs::path& d, const std::string& arch, Backend& be) {
  LoraCase b;
  b.arch = arch;
  b.lora_rank = 0;
  b.steps = 4;
  b.run = "base";
  std::ostringstream log;
  Trainer t(lora_config(d, b), be, MPI_COMM_SELF, log);
  return t.run(opts(true)).model_path;
}

// A fresh trainer of case c, started as `llmpi train` starts it (init_from when fresh).
std::unique_ptr<Trainer> start(const fs::path& d, const LoraCase& c, Backend& be,
                               std::ostream& log, bool resume) {
  const Config cfg = lora_config(d, c);
  auto t = std::make_unique<Trainer>(cfg, be, MPI_COMM_SELF, log);
  const bool resumed = resume && t->resume_latest().has_value();
  if (!resumed && !cfg.train.init_from.empty()) t->init_from(cfg.train.init_from);
  return t;
}

void expect_bitwise_lora_resume(const std::string& arch, const std::string& base_dtype) {
  const fs::path d = llmpi::testing::learnable_corpus("lora_resume_" + arch + base_dtype, 5, 4000);
  auto be = make_host_backend();
  LoraCase c;
  c.arch = arch;
  c.base_dtype = base_dtype;
  c.init_from = train_base(d, arch, *be);
  std::ostringstream log;
  c.run = "straight";
  auto straight = start(d, c, *be, log, false);
  const TrainSummary full = straight->run(opts(false));
  EXPECT_NE(log.str().find("LoRA rank 4 (alpha 8, rsLoRA, scale 4)"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("| frozen base"), std::string::npos) << log.str();
  EXPECT_LT(full.steps.back().loss, full.steps.front().loss) << "the adapters did not learn";
  c.run = "split";
  TrainSummary first, second;
  {
    auto a = start(d, c, *be, log, false);
    first = a->run(opts(false, c.every));
  }
  std::ostringstream rlog;
  auto b = start(d, c, *be, rlog, true);
  ASSERT_EQ(b->start_step(), c.every) << rlog.str();
  second = b->run(opts(false));
  ASSERT_EQ(first.steps.size() + second.steps.size(), full.steps.size());
  for (size_t i = 0; i < full.steps.size(); ++i) {
    const StepRecord& r = i < first.steps.size() ? first.steps[i] : second.steps[i - first.steps.size()];
    EXPECT_EQ(r.loss, full.steps[i].loss) << "step " << i + 1;
    EXPECT_EQ(r.grad_norm, full.steps[i].grad_norm) << "step " << i + 1;
  }
  EXPECT_EQ(master_copy(*straight), master_copy(*b)) << "the adapters differ after the resume";

  // The checkpoint: the adapters (and their moments) only, and the base's reference.
  const std::string ck = checkpoint_path((d / "split").string(), c.every);
  const CheckpointMeta m = read_checkpoint_meta(ck);
  EXPECT_EQ(m.lora_base, c.init_from);
  EXPECT_EQ(m.lora_base_checksum, straight->engine().frozen_base()->checksum());
  EXPECT_NE(m.lora_base_checksum, 0u);
  EXPECT_EQ(straight->params().params().size(), arch == "llama" ? 2u * (7 * 2 + 1) : 2u * 5 * 2);
  for (const ParamInfo& p : straight->params().params())
    EXPECT_TRUE(p.name.ends_with(".lora_A") || p.name.ends_with(".lora_B")) << p.name;
  fs::remove_all(d);
}

}  // namespace

// The start-up memory estimate of a LoRA run is its frozen base: on the host exactly what
// FrozenBase holds (dense, f32, with the f32 gradients of its 1-D parameters), and with an
// NF4 base within the per-tensor rounding of its block and group scales; on a device the
// base is bf16 alone (no f32 master, no moments).
TEST(LoraTrain, MemoryEstimateIsTheFrozenBase) {
  const fs::path d = llmpi::testing::learnable_corpus("lora_estimate", 5, 2000);
  auto be = make_host_backend();
  for (const char* arch : {"llama", "gpt2"})
    for (const char* dtype : {"auto", "nf4"}) {
      SCOPED_TRACE(std::string(arch) + ", base_dtype " + dtype);
      LoraCase c;
      c.arch = arch;
      c.base_dtype = dtype;
      const Config cfg = lora_config(d, c);
      std::ostringstream log;
      Trainer t(cfg, *be, MPI_COMM_SELF, log);
      const double held = double(t.engine().frozen_base()->bytes());
      const MemoryEstimate host = estimate_memory(cfg, Layout{});
      EXPECT_EQ(host.grads, 0.0);
      EXPECT_EQ(host.optimizer, 0.0);
      if (std::string(dtype) == "auto")
        EXPECT_EQ(host.params, held);
      else
        EXPECT_NEAR(host.params, held, 0.02 * held);
      const MemoryEstimate dev = estimate_device_memory(cfg, Layout{});
      if (std::string(dtype) == "auto")  // each dense weight 2 bytes instead of 4
        EXPECT_EQ(dev.params, host.params - 2.0 * host.total_params);
      EXPECT_LT(dev.params, host.params);
    }
}

TEST(LoraTrain, BitwiseResumeOfAdaptersOnABase) { expect_bitwise_lora_resume("llama", "auto"); }

TEST(LoraTrain, BitwiseResumeOfQloraOnAnNf4Base) { expect_bitwise_lora_resume("llama", "nf4"); }

TEST(LoraTrain, ResumeRefusesABaseThatChanged) {
  const fs::path d = llmpi::testing::learnable_corpus("lora_base_changed", 6, 3000);
  auto be = make_host_backend();
  LoraCase c;
  c.steps = 4;
  c.every = 2;
  c.init_from = train_base(d, "llama", *be);
  std::ostringstream log;
  start(d, c, *be, log, false)->run(opts(false, 2));
  // Another base at the same path: a run of another seed's data order.
  LoraCase other = c;
  other.lora_rank = 0;
  other.run = "other";
  other.init_from.clear();
  other.steps = 3;
  Config oc = lora_config(d, other);
  oc.train.seed = 99;
  Trainer ot(oc, *be, MPI_COMM_SELF, log);
  fs::copy_file(ot.run(opts(true)).model_path, c.init_from, fs::copy_options::overwrite_existing);
  std::string message = "no error";
  try {
    start(d, c, *be, log, true);
  } catch (const UserError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("its adapters were trained beside the base \"" + c.init_from), std::string::npos)
      << message;
  EXPECT_NE(message.find("has checksum 0x"), std::string::npos) << message;
  fs::remove_all(d);
}

TEST(LoraTrain, MergeAndPeftExport) {
  const fs::path d = llmpi::testing::learnable_corpus("lora_merge_export", 7, 3000);
  auto be = make_host_backend();
  LoraCase c;
  c.steps = 4;
  c.init_from = train_base(d, "llama", *be);
  std::ostringstream log;
  const std::string model = start(d, c, *be, log, false)->run(opts(true)).model_path;

  // The model file opens as the merged model: W + s·B A for an adapted weight.
  const LoadedModel lm = load_model(model, *be);
  ASSERT_TRUE(lm.lora);
  EXPECT_FALSE(lm.config.lora.enabled());
  const LoraFile& lf = *lm.lora;
  const double s = lora_scale(8.0, 4, true);
  const std::string w = "layers.1.mlp.gate.weight";
  const Tensor W = lf.base->master(w), M = lm.store->master(w);
  const Tensor A = lf.adapters->master("layers.1.mlp.gate.lora_A");
  const Tensor B = lf.adapters->master("layers.1.mlp.gate.lora_B");
  const int64_t I = W.dim(1), o = 5, i = 7;
  double ba = 0;
  for (int64_t k = 0; k < 4; ++k) ba += double(B.ptr<float>()[o * 4 + k]) * A.ptr<float>()[k * I + i];
  EXPECT_NEAR(M.ptr<float>()[o * I + i], W.ptr<float>()[o * I + i] + s * ba, 1e-6);
  EXPECT_NE(ba, 0.0) << "the adapters trained";

  // `llmpi lora merge` writes it as a plain model file.
  const std::string merged = (d / "merged.h5").string();
  const auto [rc, out] = llmpi::testing::run_llmpi("lora merge " + model + " --out " + merged);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("merged " + model), std::string::npos) << out;
  const LoadedModel mm = load_model(merged, *be);
  EXPECT_FALSE(mm.lora);
  EXPECT_EQ(std::vector<float>(mm.store->master().ptr<float>(),
                               mm.store->master().ptr<float>() + mm.store->numel()),
            std::vector<float>(lm.store->master().ptr<float>(),
                               lm.store->master().ptr<float>() + lm.store->numel()));
  const auto [rc2, out2] = llmpi::testing::run_llmpi("lora merge " + merged + " --out " + (d / "x.h5").string());
  EXPECT_EQ(rc2, 2);
  EXPECT_NE(out2.find("holds a full model, not LoRA adapters"), std::string::npos) << out2;

  // The output rule (core/output_rule.h): a merge replaces its own earlier output, marked
  // writer = "llmpi lora merge"; another file only with --force; never the adapters it reads
  // nor the base (they were overwritten without a word).
  EXPECT_EQ(read_model_meta(merged).writer, "llmpi lora merge");
  EXPECT_EQ(llmpi::testing::run_llmpi("lora merge " + model + " --out " + merged).first, 0);
  const auto bytes_of = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string model_bytes = bytes_of(model), base_bytes = bytes_of(c.init_from);
  const std::string foreign = (d / "notes.txt").string();
  std::ofstream(foreign) << "someone's notes\n";
  for (const std::string& target : {foreign, model, c.init_from}) {
    const auto [rc3, out3] = llmpi::testing::run_llmpi("lora merge " + model + " --out " + target);
    EXPECT_EQ(rc3, 2) << out3;
    EXPECT_NE(out3.find(target + ": exists and is not the output of an earlier llmpi lora merge"),
              std::string::npos) << out3;
  }
  for (const auto& [target, what] : {std::pair{model, "is ADAPTERS, the file being merged"},
                                     std::pair{c.init_from, "is the base the adapters are merged into"}}) {
    const auto [rc4, out4] = llmpi::testing::run_llmpi("lora merge " + model + " --out " + target + " --force");
    EXPECT_EQ(rc4, 2) << out4;
    EXPECT_NE(out4.find(target + ": " + what), std::string::npos) << out4;
  }
  EXPECT_EQ(bytes_of(foreign), "someone's notes\n");
  EXPECT_EQ(bytes_of(model), model_bytes);
  EXPECT_EQ(bytes_of(c.init_from), base_bytes);
  const auto [rc5, out5] = llmpi::testing::run_llmpi("lora merge " + model + " --out " + foreign + " --force");
  EXPECT_EQ(rc5, 0) << out5;
  EXPECT_EQ(read_model_meta(foreign).writer, "llmpi lora merge");
  const std::string nowhere = (d / "missing" / "m.h5").string();
  const auto [rc6, out6] = llmpi::testing::run_llmpi("lora merge " + model + " --out " + nowhere);
  EXPECT_EQ(rc6, 2) << out6;
  EXPECT_NE(out6.find(nowhere + ": the directory " + (d / "missing").string() + " does not exist"),
            std::string::npos) << out6;

  // export-hf: the merged model and, in adapter/, PEFT's files.
  HfExportOptions eo;
  eo.out_dir = (d / "hf").string();
  const HfExportReport rep = export_hf(model, eo);
  const nlohmann::json cfg = nlohmann::json::parse(read_text_file((d / "hf/adapter/adapter_config.json").string()));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 8.0);
  EXPECT_EQ(cfg["use_rslora"], true);
  EXPECT_EQ(cfg["base_model_name_or_path"], c.init_from);
  EXPECT_EQ(cfg["target_modules"],
            nlohmann::json({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                            "down_proj", "lm_head"}));
  const SafetensorsFile st((d / "hf/adapter/adapter_model.safetensors").string());
  EXPECT_EQ(st.header().tensors.size(), size_t(2 * (7 * 2 + 1)));
  const StEntry* a = st.find("base_model.model.model.layers.1.mlp.gate_proj.lora_A.weight");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(st.read_f32(*a), std::vector<float>(A.ptr<float>(), A.ptr<float>() + A.numel()));
  const StEntry* b = st.find("base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{64, 4}));
  const StEntry* head = st.find("base_model.model.lm_head.lora_B.weight");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->shape, (std::vector<int64_t>{64, 4}));
  EXPECT_NE(std::find(rep.files.begin(), rep.files.end(), "adapter/adapter_model.safetensors"), rep.files.end());
  fs::remove_all(d);
}

// ParallelEngine::set_adapters_enabled(false) (DPO's reference pass) evaluates the base model
// exactly, after the adapters have trained; on again, the adapted model.
TEST(LoraTrain, AdaptersDisabledEvaluateTheBase) {
  const fs::path d = llmpi::testing::learnable_corpus("lora_disabled", 8, 3000);
  auto be = make_host_backend();
  LoraCase c;
  c.steps = 3;
  c.init_from = train_base(d, "llama", *be);
  std::ostringstream log;
  auto lora = start(d, c, *be, log, false);
  lora->run(opts(false));
  LoraCase p = c;
  p.lora_rank = 0;
  p.run = "plain";
  auto plain = start(d, p, *be, log, false);
  std::vector<int32_t> ids(32), targets(32);
  for (int i = 0; i < 32; ++i) {
    ids[size_t(i)] = (i * 7 + 3) % 64;
    targets[size_t(i)] = (i * 5 + 1) % 64;
  }
  const LossSum base = plain->engine().eval(ids, targets);
  const LossSum on = lora->engine().eval(ids, targets);
  lora->engine().set_adapters_enabled(false);
  const LossSum off = lora->engine().eval(ids, targets);
  lora->engine().set_adapters_enabled(true);
  EXPECT_EQ(off.sum, base.sum);
  EXPECT_NE(on.sum, base.sum);
  EXPECT_EQ(lora->engine().eval(ids, targets).sum, on.sum);
  fs::remove_all(d);
}
