// llmpi analyze on a real (small) run: the CSV numbers equal the logbook's and values
// recomputed here, independently, from the checkpoint files (norms, ‖ΔW‖/‖W‖, cosine to the
// final checkpoint) and from the models (loss per checkpoint, memorization); bad inputs give
// clear errors or partial reports.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "analysis/analyze.h"
#include "backend/backend.h"
#include "config/config.h"
#include "core/error.h"
#include "corpus_util.h"
#include "data/batch_loader.h"
#include "data/token_shard.h"
#include "data/token_dataset.h"
#include "io/checkpoint_integrity.h"
#include "io/hdf5.h"
#include "io/logbook.h"
#include "io/tensor_file.h"
#include "jobs/checkpoint_dir.h"
#include "train/loaded_model.h"
#include "train/step_rows.h"
#include "train/trainer.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

// A small run: 40 steps, checkpoints at 10, 20, 30, 40, and a logbook of its steps.
struct SmallRun {
  fs::path dir, run;
};

SmallRun& small_run() {
  static SmallRun r = [] {
    SmallRun s;
    s.dir = llmpi::testing::learnable_corpus("analyze", 7, 20000, 3000);
    s.run = s.dir / "run";
    std::ostringstream t;
    t << "[model]\narch = \"gpt2\"\nvocab_size = 64\nn_layer = 2\nn_head = 4\nd_model = 32\nmax_seq_len = 16\n"
      << "[train]\nsteps = 40\nbatch_size = 4\nseq_len = 16\nlr = 1e-2\nmin_lr = 1e-3\nwarmup_steps = 5\n"
      << "log_every = 10\neval_every = 20\neval_batches = 2\n"
      << "[data]\ntrain = \"" << (s.dir / "train.bin").string() << "\"\nval = \"" << (s.dir / "val.bin").string()
      << "\"\n[checkpoint]\nevery = 10\nkeep_last = 10\n[run]\ndir = \"" << s.run.string() << "\"\n";
    const Config cfg = parse_config(t.str(), "analyze.toml");
    auto be = make_host_backend();
    std::ostringstream log;
    Trainer tr(cfg, *be, MPI_COMM_SELF, log);
    const TrainSummary sum = tr.run();
    // The logbook as the trainer records it (a subset of the fields is enough here).
    Logbook book(s.run.string(), {{"embed.tokens"}, 2}, 0, [](const std::string&) {});
    for (const StepRecord& r : sum.steps) {
      StepMetrics m;
      m.step = r.step;
      m.tokens_seen = r.step * 64;
      m.loss = r.loss;
      m.lr = r.lr;
      m.grad_norm = r.grad_norm;
      m.time_step_s = 0.01;
      book.add_step(m);
    }
    book.add_event(make_event(EventType::run_end, 40, {{"status", "finished"}}));
    return s;
  }();
  return r;
}

std::vector<std::map<std::string, std::string>> read_csv(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
  auto split = [](const std::string& l) {
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false;
    for (char c : l) {
      if (c == '"') quoted = !quoted;
      else if (c == ',' && !quoted) {
        out.push_back(cur);
        cur.clear();
      } else cur += c;
    }
    out.push_back(cur);
    return out;
  };
  if (!std::getline(in, line)) return rows;
  header = split(line);
  while (std::getline(in, line)) {
    const auto cells = split(line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(row);
  }
  return rows;
}

double num(const std::string& s) { return s.empty() ? std::nan("") : std::stod(s); }

// Every tensor of a checkpoint's /params, read directly with HDF5.
std::map<std::string, std::vector<float>> read_params(const std::string& path) {
  std::map<std::string, std::vector<float>> out;
  h5::Id f = h5::open_file(path, MPI_COMM_NULL);
  h5::Id p = h5::open_group(f, "params", path);
  for (const std::string& name : h5::list_names(p, path)) {
    h5::Id d(H5Dopen2(p, name.c_str(), H5P_DEFAULT), H5Dclose);
    h5::Id sp(H5Dget_space(d), H5Sclose);
    std::vector<float> v(size_t(H5Sget_simple_extent_npoints(sp)));
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    out[name] = std::move(v);
  }
  return out;
}

AnalyzeSummary analyze(const fs::path& run, const fs::path& out, const std::string& eval = "",
                       int64_t probes = 4) {
  AnalyzeOptions o;
  o.run_dir = run.string();
  o.out_dir = out.string();
  o.eval_data = eval;
  o.eval_batches = 3;
  o.probe_samples = probes;
  auto be = make_host_backend();
  std::ostringstream log;
  return analyze_run(o, *be, MPI_COMM_SELF, log);
}

}  // namespace

TEST(Analyze, CsvNumbersEqualTheLogbookAndTheCheckpoints) {
  SmallRun& r = small_run();
  const fs::path out = r.dir / "report";
  const AnalyzeSummary s = analyze(r.run, out, (r.dir / "val.bin").string());
  EXPECT_EQ(s.checkpoints, 4);
  EXPECT_EQ(s.rejected, 0);
  ASSERT_TRUE(fs::exists(out / "report.html"));
  ASSERT_TRUE(fs::exists(out / "report.json"));

  // steps.csv is the logbook, number for number.
  const LogbookContents lb = read_logbook_file((r.run / "logbook.h5").string());
  const auto steps = read_csv(out / "data" / "steps.csv");
  ASSERT_EQ(steps.size(), lb.steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(num(steps[i].at("step")), double(lb.steps[i].step));
    EXPECT_EQ(num(steps[i].at("loss")), lb.steps[i].loss);  // bitwise: shortest round-trip form
    EXPECT_EQ(num(steps[i].at("grad_norm")), lb.steps[i].grad_norm);
    EXPECT_EQ(num(steps[i].at("lr")), lb.steps[i].lr);
    // The host backend's peak FLOP/s is unknown: MFU not measured, an empty cell.
    EXPECT_TRUE(std::isnan(lb.steps[i].mfu));
    EXPECT_EQ(steps[i].at("mfu"), "");
  }
  {  // ... and an explicit "n/a" with the reason in the summary.
    std::ifstream json(out / "report.json");
    const std::string mfu = nlohmann::json::parse(json)["summary"].value("MFU", std::string());
    EXPECT_EQ(mfu.rfind("n/a: the peak FLOP/s of the run's device is not known", 0), 0u) << mfu;
  }

  // weights.csv against sums recomputed here from the files.
  const auto files = list_checkpoints(r.run.string());
  ASSERT_EQ(files.size(), 4u);
  std::vector<std::map<std::string, std::vector<float>>> params;
  for (const auto& f : files) params.push_back(read_params(f.path));
  const auto weights = read_csv(out / "data" / "weights.csv");
  ASSERT_EQ(weights.size(), 4 * params[0].size());
  double whole_dot = 0, whole_sq = 0, whole_fin = 0;
  for (const auto& row : weights) {
    const int64_t step = int64_t(num(row.at("step")));
    const size_t c = size_t(step / 10 - 1);
    const auto& x = params[c].at(row.at("tensor"));
    const auto& fin = params[3].at(row.at("tensor"));
    double sq = 0, dot = 0, fsq = 0, dsq = 0, psq = 0;
    for (size_t k = 0; k < x.size(); ++k) {
      sq += double(x[k]) * x[k];
      dot += double(x[k]) * fin[k];
      fsq += double(fin[k]) * fin[k];
      if (c > 0) {
        const double p = params[c - 1].at(row.at("tensor"))[k];
        dsq += (x[k] - p) * (x[k] - p);
        psq += p * p;
      }
    }
    EXPECT_NEAR(num(row.at("norm")), std::sqrt(sq), 1e-12 * std::sqrt(sq)) << row.at("tensor");
    EXPECT_NEAR(num(row.at("cosine_to_final")), dot / std::sqrt(sq * fsq), 1e-12);
    if (c == 0) EXPECT_TRUE(row.at("delta_ratio").empty());
    else EXPECT_NEAR(num(row.at("delta_ratio")), std::sqrt(dsq / psq), 1e-10 * std::sqrt(dsq / psq));
    if (c == 0) {
      whole_dot += dot;
      whole_sq += sq;
      whole_fin += fsq;
    }
  }
  const auto ckpts = read_csv(out / "data" / "checkpoints.csv");
  ASSERT_EQ(ckpts.size(), 4u);
  EXPECT_NEAR(num(ckpts[0].at("cosine_to_final")), whole_dot / std::sqrt(whole_sq * whole_fin), 1e-12);
  EXPECT_EQ(num(ckpts[3].at("cosine_to_final")), 1.0);
  EXPECT_EQ(ckpts[1].at("data_first_step"), "11");
  EXPECT_EQ(ckpts[1].at("data_last_step"), "20");
  EXPECT_EQ(ckpts[1].at("samples"), "40");  // 10 steps × G = 4

  // Loss over checkpoints, recomputed with the model loaded as `llmpi eval` loads it.
  auto be = make_host_backend();
  TokenDataset val({(r.dir / "val.bin").string()}, 64);
  ValLoader loader(val, 16);
  for (size_t c = 0; c < 4; ++c) {
    LoadedModel lm = load_model(files[c].path, *be);
    Activations acts = lm.model->alloc_activations(*be, 4, 16);
    double sum = 0;
    int64_t count = 0;
    std::vector<int32_t> ids(64), tg(64);
    for (int64_t k = 0; k < 3; ++k) {
      loader.fill(k, 4, ids.data(), tg.data());
      lm.model->forward(*be, acts, Tensor{ids.data(), Shape{64}, DType::i32, Device::host});
      const LossSum ls = lm.model->loss(*be, acts, Tensor{tg.data(), Shape{64}, DType::i32, Device::host});
      sum += ls.sum;
      count += ls.count;
    }
    EXPECT_NEAR(num(ckpts[c].at("eval_loss")), sum / double(count), 1e-12) << c;
  }

  // Memorization: each probed sample's score, recomputed one sample at a time (batch of 1).
  const auto memo = read_csv(out / "data" / "memorization.csv");
  ASSERT_EQ(memo.size(), 16u * 4u);  // 4 samples from each of 4 intervals, × 4 checkpoints
  TokenDataset train({(r.dir / "train.bin").string()}, 64);
  int64_t nonzero = 0;
  for (size_t c = 0; c < 4; ++c) {
    LoadedModel lm = load_model(files[c].path, *be);
    Activations acts = lm.model->alloc_activations(*be, 1, 16);
    for (const auto& row : memo) {
      if (int64_t(num(row.at("checkpoint_step"))) != files[c].step) continue;
      std::vector<int32_t> in(16), tg(16);
      read_sample(train, 16, int64_t(num(row.at("sample"))), in.data(), tg.data());
      std::vector<int32_t> seq(in);
      seq.push_back(tg.back());  // the sample's 17 tokens: prompt 8, continuation 8
      std::vector<int32_t> ids(seq.begin(), seq.begin() + 8);
      int matches = 0;
      for (int j = 0; j < 8; ++j) {
        std::vector<int32_t> padded(ids);
        padded.resize(16, 0);
        lm.model->forward(*be, acts, Tensor{padded.data(), Shape{16}, DType::i32, Device::host});
        const std::vector<float> lg = lm.model->logits_at(*be, acts, 8 + j - 1);
        const int32_t next = int32_t(std::max_element(lg.begin(), lg.end()) - lg.begin());
        matches += next == seq[size_t(8 + j)];
        ids.push_back(next);
      }
      EXPECT_EQ(num(row.at("score")), matches / 8.0) << "sample " << row.at("sample") << " at " << files[c].step;
      nonzero += matches > 0;
    }
  }
  EXPECT_GT(nonzero, 0);  // the corpus is learnable: later checkpoints reproduce some tokens

  // The HTML holds every chart, each naming its data file.
  std::ifstream html(out / "report.html");
  std::stringstream ss;
  ss << html.rdbuf();
  for (const char* id : {"chart-loss", "chart-lr", "chart-grad-norm", "chart-throughput", "chart-time-split",
                         "chart-weight-norms", "chart-delta-heatmap", "chart-cosine", "chart-eval-loss",
                         "chart-memorization"})
    EXPECT_NE(ss.str().find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  EXPECT_EQ(ss.str().find("<script"), std::string::npos);  // self-contained, no script
}

TEST(Analyze, BadInputsGiveMessagesOrPartialReports) {
  SmallRun& r = small_run();
  const fs::path base = r.dir / "bad";
  fs::create_directories(base / "empty");
  // Nothing to report: a clear UserError.
  try {
    analyze(base / "empty", base / "out-empty");
    ADD_FAILURE() << "an empty directory was analyzed";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("nothing to analyze"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a run directory"), std::string::npos) << e.what();
  }
  EXPECT_THROW(analyze(base / "missing", base / "out-missing"), UserError);
  EXPECT_FALSE(fs::exists(base / "out-empty"));

  // A logbook and no checkpoints: the training curves only.
  fs::create_directories(base / "nockpt");
  fs::copy_file(r.run / "logbook.h5", base / "nockpt" / "logbook.h5");
  AnalyzeSummary s = analyze(base / "nockpt", base / "out-nockpt");
  EXPECT_EQ(s.checkpoints, 0);
  EXPECT_EQ(s.step_rows, 40);
  EXPECT_TRUE(fs::exists(base / "out-nockpt" / "data" / "steps.csv"));
  EXPECT_FALSE(fs::exists(base / "out-nockpt" / "data" / "weights.csv"));

  // A corrupt logbook and a truncated checkpoint: the other three checkpoints are analyzed.
  fs::copy(r.run, base / "damaged", fs::copy_options::recursive);
  std::ofstream(base / "damaged" / "logbook.h5", std::ios::trunc) << "garbage";
  const std::string victim = checkpoint_path((base / "damaged").string(), 20);
  fs::resize_file(victim, fs::file_size(victim) / 2);
  s = analyze(base / "damaged", base / "out-damaged", "", 0);
  EXPECT_EQ(s.checkpoints, 3);
  EXPECT_EQ(s.rejected, 1);
  EXPECT_EQ(s.step_rows, 0);
  const auto ck = read_csv(base / "out-damaged" / "data" / "checkpoints.csv");
  ASSERT_EQ(ck.size(), 3u);
  EXPECT_EQ(ck[1].at("step"), "30");
  std::ifstream json(base / "out-damaged" / "report.json");
  const auto doc = nlohmann::json::parse(json);
  std::string notes = doc["notes"].dump();
  EXPECT_NE(notes.find("step_00000020.h5 left out"), std::string::npos) << notes;
  EXPECT_NE(notes.find("no training curves"), std::string::npos) << notes;

  // Checkpoints whose stored config was edited to 2,000,000 layers (integrity re-stamped, as an
  // h5py user would): the probes' model was allocated from it (std::bad_alloc, exit 1); now
  // the probes are skipped with a note and the rest of the report is written.
  fs::copy(r.run, base / "huge", fs::copy_options::recursive);
  for (const int64_t step : {10, 20, 30, 40}) {
    const std::string path = checkpoint_path((base / "huge").string(), step);
    {
      h5::Id f = h5::open_file(path, MPI_COMM_NULL, /*writable=*/true);
      std::string cfg = h5::read_attr_string(f, "config", path);
      const size_t at = cfg.find("n_layer = 2\n");
      ASSERT_NE(at, std::string::npos) << cfg;
      cfg.replace(at, 12, "n_layer = 2000000\n");
      h5::write_attr(f, "config", cfg, path);
    }
    stamp_integrity(path, MPI_COMM_NULL);
  }
  s = analyze(base / "huge", base / "out-huge", (r.dir / "val.bin").string());
  EXPECT_EQ(s.checkpoints, 4);
  std::ifstream huge_json(base / "out-huge" / "report.json");
  notes = nlohmann::json::parse(huge_json)["notes"].dump();
  EXPECT_NE(notes.find("model probes (memorization, loss over checkpoints) skipped"), std::string::npos) << notes;
  EXPECT_NE(notes.find("2000000"), std::string::npos) << notes;
}

// Inputs named on the command line are refused before any work (no checkpoint verified, no
// report written), naming the option, the path and what was expected: an --eval that does not
// exist was found after the whole analysis, as a note, and the exit status was 0.
TEST(Analyze, UnusableNamedInputsAreRefusedBeforeAnyWork) {
  SmallRun& r = small_run();
  const fs::path base = r.dir / "named";
  fs::create_directories(base / "a-directory.bin");
  std::ofstream(base / "text.bin") << "plain text, not a token shard\n";
  std::ofstream(base / "report-file") << "x";
  auto refusal = [&](const std::string& name, auto&& set) {
    AnalyzeOptions o;
    o.run_dir = r.run.string();
    o.out_dir = (base / ("out-" + name)).string();
    set(o);
    auto be = make_host_backend();
    std::ostringstream log;
    std::string what = "(analyzed)";
    try {
      analyze_run(o, *be, MPI_COMM_SELF, log);
    } catch (const UserError& e) {
      what = e.what();
    }
    EXPECT_EQ(log.str(), "") << name << ": work began before the refusal";
    EXPECT_FALSE(fs::is_directory(o.out_dir)) << name << ": a report directory was made";
    return what;
  };
  const std::string missing = (base / "missing.bin").string();
  std::string e = refusal("missing", [&](AnalyzeOptions& o) { o.eval_data = missing; });
  EXPECT_NE(e.find("--eval = \"" + missing + "\": no such file"), std::string::npos) << e;
  e = refusal("glob", [&](AnalyzeOptions& o) { o.eval_data = (base / "none*.bin").string(); });
  EXPECT_NE(e.find("--eval = \"" + (base / "none*.bin").string() + "\": the pattern matches no file"),
            std::string::npos) << e;
  e = refusal("text", [&](AnalyzeOptions& o) { o.eval_data = (base / "text.bin").string(); });
  EXPECT_NE(e.find("--eval: " + (base / "text.bin").string() + ": not a token shard: bad magic (expected"),
            std::string::npos) << e;
  e = refusal("dir", [&](AnalyzeOptions& o) { o.eval_data = (base / "a-directory.bin").string(); });
  EXPECT_NE(e.find("--eval: " + (base / "a-directory.bin").string() + ": is a directory; expected a token shard"),
            std::string::npos) << e;
  e = refusal("train", [&](AnalyzeOptions& o) { o.train_data = missing; });
  EXPECT_NE(e.find("--train-data = \"" + missing + "\": no such file"), std::string::npos) << e;
  e = refusal("train-text", [&](AnalyzeOptions& o) { o.train_data = (base / "text.bin").string(); });
  EXPECT_NE(e.find("--train-data: " + (base / "text.bin").string() + ": not a token shard"), std::string::npos) << e;
  e = refusal("out", [&](AnalyzeOptions& o) { o.out_dir = (base / "report-file").string(); });
  EXPECT_NE(e.find((base / "report-file").string() + ": exists and is not a directory"), std::string::npos) << e;
  // A good shard among the options passes: the analysis runs (with its eval loss).
  AnalyzeOptions o;
  o.run_dir = r.run.string();
  o.out_dir = (base / "out-good").string();
  o.eval_data = (r.dir / "val.bin").string();
  o.eval_batches = 1;
  o.probe_samples = 0;
  auto be = make_host_backend();
  std::ostringstream log;
  EXPECT_EQ(analyze_run(o, *be, MPI_COMM_SELF, log).checkpoints, 4);
  EXPECT_EQ(log.str().find("skipped"), std::string::npos) << log.str();
}

// A fine-tuning run's data→checkpoint map holds rows, not pre-training samples: each probed
// row is read back as a row (its first document, the packed record the run trained on), and
// the prompt and continuation shrink to half the shortest probed document.
TEST(Analyze, FineTuningRowsAreProbedByTheirFirstDocument) {
  const fs::path dir = fs::temp_directory_path() / ("llmpi_analyze_sft_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string shard = (dir / "sft.bin").string();
  {  // 200 records of 9..16 tokens: doc k counts from 2 + k % 40 with stride 1 + k % 3.
    TokenShardWriter w(shard, 2, ShardContent::documents_with_mask);
    for (int k = 0; k < 200; ++k) {
      std::vector<uint32_t> d;
      std::vector<uint8_t> m;
      const int len = 9 + k % 8;
      for (int i = 0; i < len; ++i) {
        d.push_back(uint32_t(2 + (k % 40 + (1 + k % 3) * i) % 60));
        m.push_back(i >= len / 2);
      }
      w.append_document(d, m);
    }
    w.commit();
  }
  std::ostringstream t;
  t << "[model]\narch = \"gpt2\"\nvocab_size = 64\nn_layer = 2\nn_head = 4\nd_model = 32\nmax_seq_len = 16\n"
    << "[train]\nobjective = \"sft\"\nsteps = 30\nbatch_size = 4\nseq_len = 16\nlr = 1e-2\nmin_lr = 1e-3\n"
    << "warmup_steps = 5\nlog_every = 10\n[data]\ntrain = \"" << shard << "\"\n"
    << "[checkpoint]\nevery = 10\nkeep_last = 10\n[run]\ndir = \"" << (dir / "run").string() << "\"\n";
  const Config cfg = parse_config(t.str(), "sft.toml");
  {
    auto be = make_host_backend();
    std::ostringstream log;
    Trainer(cfg, *be, MPI_COMM_SELF, log).run();
  }
  analyze(dir / "run", dir / "report", "", 3);

  const TokenDataset ds({shard});
  const StepRows rows(cfg, ds);
  const auto memo = read_csv(dir / "report" / "data" / "memorization.csv");
  ASSERT_EQ(memo.size(), 9u * 3u);  // 3 rows from each of 3 intervals, × 3 checkpoints
  // The probed rows' first documents; P = K = half the shortest (at most 8, T + 1 = 17).
  std::map<int64_t, std::vector<int32_t>> first_doc;
  for (const auto& row : memo) {
    const int64_t r = int64_t(num(row.at("sample")));
    ASSERT_LT(r, rows.n_rows());
    std::vector<int32_t> ids(16), tg(16), st(16);
    std::vector<RowDocument> docs;
    rows.sft()->fill_row(r, ids.data(), tg.data(), st.data(), &docs);
    first_doc[r].assign(ids.begin() + docs[0].begin, ids.begin() + docs[0].begin + docs[0].length);
  }
  size_t shortest = 16;
  for (const auto& [r, d] : first_doc) shortest = std::min(shortest, d.size());
  const int P = int(std::min<size_t>(8, shortest / 2));
  ASSERT_GE(P, 4);
  auto be = make_host_backend();
  const auto files = list_checkpoints((dir / "run").string());
  ASSERT_EQ(files.size(), 3u);
  int64_t nonzero = 0;
  for (const auto& f : files) {
    LoadedModel lm = load_model(f.path, *be);
    Activations acts = lm.model->alloc_activations(*be, 1, 16);
    for (const auto& row : memo) {
      if (int64_t(num(row.at("checkpoint_step"))) != f.step) continue;
      const std::vector<int32_t>& seq = first_doc.at(int64_t(num(row.at("sample"))));
      std::vector<int32_t> ids(seq.begin(), seq.begin() + P);
      int matches = 0;
      for (int j = 0; j < P; ++j) {
        std::vector<int32_t> padded(ids);
        padded.resize(16, 0);
        lm.model->forward(*be, acts, Tensor{padded.data(), Shape{16}, DType::i32, Device::host});
        const std::vector<float> lg = lm.model->logits_at(*be, acts, P + j - 1);
        const int32_t next = int32_t(std::max_element(lg.begin(), lg.end()) - lg.begin());
        matches += next == seq[size_t(P + j)];
        ids.push_back(next);
      }
      EXPECT_EQ(num(row.at("score")), double(matches) / P) << "row " << row.at("sample") << " at " << f.step;
      nonzero += matches > 0;
    }
  }
  EXPECT_GT(nonzero, 0);
  if (P < 8) {
    std::ifstream json(dir / "report" / "report.json");
    const std::string notes = nlohmann::json::parse(json)["notes"].dump();
    EXPECT_NE(notes.find("half the shortest probed document"), std::string::npos) << notes;
  }
  fs::remove_all(dir);
}
