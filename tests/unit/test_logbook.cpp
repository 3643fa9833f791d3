// logbook.h5 and LOGBOOK.md: every field round-trips; a reopened logbook appends a new segment
// and keeps redone steps; a writer killed with kill -9 (a real separate process) loses only
// what it had not flushed and the next run rewrites its file and goes on; a damaged logbook
// or one of another model is set aside, never an error; an unwritable run directory disables
// the logbook without throwing.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../helpers/logbook_rows.h"
#include "analysis/logbook_tables.h"
#include "core/error.h"
#include "io/logbook.h"
#include "io/logbook_file.h"
#include "jobs/run_events.h"
#include "llmpi_binary.h"

extern char** environ;

using namespace llmpi;
using namespace llmpi::testing;
namespace fs = std::filesystem;

namespace {

fs::path temp_run(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("llmpi_logbook_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// Every field of `got` equals synthetic_step(step) (segment aside).
void expect_synthetic(const StepMetrics& got, int64_t step) {
  const StepMetrics want = synthetic_step(step);
  for (const StepField& f : step_fields())
    std::visit(
        [&](auto member) {
          if (f.name == "segment") return;
          EXPECT_TRUE(same(double(got.*member), double(want.*member)))
              << "step " << step << " field " << f.name << ": " << got.*member << " vs " << want.*member;
        },
        f.member);
}

void noop(const std::string&) {}

}  // namespace

TEST(Logbook, EveryFieldRoundTripsAndLogbookMdIsWritten) {
  const fs::path dir = temp_run("roundtrip");
  {
    Logbook book(dir.string(), synthetic_schema(), 0, noop);
    EXPECT_TRUE(book.enabled());
    EXPECT_EQ(book.segment(), 0);
    for (int64_t s = 1; s <= 25; ++s) {
      book.add_step(synthetic_step(s));
      if (s % 5 == 0) book.add_layers(synthetic_layers(s));
      if (s % 10 == 0) book.add_event(synthetic_event(s));
    }
    EXPECT_TRUE(book.has_pending());
    book.flush();
    EXPECT_FALSE(book.has_pending());
  }
  const LogbookContents c = read_logbook_file((dir / "logbook.h5").string());
  EXPECT_TRUE(c.notes.empty());
  EXPECT_EQ(c.schema, synthetic_schema());
  ASSERT_EQ(c.steps.size(), 25u);
  for (int64_t s = 1; s <= 25; ++s) {
    expect_synthetic(c.steps[size_t(s - 1)], s);
    EXPECT_EQ(c.steps[size_t(s - 1)].segment, 0);
  }
  ASSERT_EQ(c.layers.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    const LayerStats want = synthetic_layers(int64_t(5 * (i + 1)));
    EXPECT_EQ(c.layers[i].step, want.step);
    EXPECT_EQ(c.layers[i].param_norm, want.param_norm);
    EXPECT_EQ(c.layers[i].grad_norm, want.grad_norm);
    EXPECT_EQ(c.layers[i].update_ratio, want.update_ratio);
    EXPECT_EQ(c.layers[i].activation_rms, want.activation_rms);
  }
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[1].type, "checkpoint_saved");
  EXPECT_EQ(c.events[1].step, 20);
  EXPECT_EQ(c.events[1].segment, 0);
  EXPECT_FALSE(c.events[1].host.empty());
  EXPECT_EQ(c.events[1].details, synthetic_event(20).details);
  const std::string md = slurp(dir / "LOGBOOK.md");
  EXPECT_NE(md.find("checkpoints/step_20.h5 saved: 20 KB in 0.5 s (0.04 GB/s)"), std::string::npos) << md;
  EXPECT_NE(md.find("segment 0: no start record; trained steps 1–25"), std::string::npos) << md;
  fs::remove_all(dir);
}

TEST(Logbook, ReopenedLogbookAppendsANewSegmentAndKeepsRedoneSteps) {
  const fs::path dir = temp_run("segments");
  {
    Logbook book(dir.string(), synthetic_schema(), 0, noop);
    book.add_event(make_event(EventType::run_start, 0, {{"layout", "tp2·dp2"}, {"world_size", 4}}));
    for (int64_t s = 1; s <= 10; ++s) book.add_step(synthetic_step(s));
  }  // the destructor flushes
  {
    // A fall-back to the checkpoint of step 5: steps 6..12 are trained again.
    Logbook book(dir.string(), synthetic_schema(), 0, noop);
    EXPECT_EQ(book.segment(), 1);
    EXPECT_EQ(book.previous_last_step(), 10);
    EXPECT_EQ(book.events().size(), 1u);  // the earlier segment's events are known
    book.add_event(make_event(EventType::resume, 5, {{"from_step", 5}, {"layout", "dp4"},
                                                     {"checkpoint", "step_00000005.h5"}}));
    for (int64_t s = 6; s <= 12; ++s) book.add_step(synthetic_step(s));
    book.add_event(make_event(EventType::run_end, 12, {{"status", "finished"}}));
  }
  // The checkpoint's segment wins over a logbook that lost its history.
  { Logbook book(dir.string(), synthetic_schema(), 7, noop); EXPECT_EQ(book.segment(), 7); }
  const LogbookContents c = read_logbook_file((dir / "logbook.h5").string());
  ASSERT_EQ(c.steps.size(), 17u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(c.steps[i].segment, 0);
  for (size_t i = 10; i < 17; ++i) {
    EXPECT_EQ(c.steps[i].segment, 1);
    expect_synthetic(c.steps[i], int64_t(i) - 4);
  }
  const std::string md = slurp(dir / "LOGBOOK.md");
  EXPECT_NE(md.find("- segment 0: started at step 0 on tp2·dp2; trained steps 1–10; no end record "
                    "(killed, or still running)"), std::string::npos) << md;
  EXPECT_NE(md.find("- segment 1: resumed from step 5 on dp4; trained steps 6–12; ended at step 12: "
                    "finished"), std::string::npos) << md;
  fs::remove_all(dir);
}

namespace {

// Starts the writer child on `dir`: its stdin (one byte per step) and stdout on pipes.
pid_t start_writer(const fs::path& dir, FILE** out, int* go) {
  int fds[2], in[2];
  if (pipe(fds) != 0 || pipe(in) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, in[1]);
  const std::string exe = LLMPI_LOGBOOK_CHILD, arg = dir.string();
  char* argv[] = {const_cast<char*>(exe.c_str()), const_cast<char*>(arg.c_str()), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  close(in[0]);
  if (rc != 0) {
    close(fds[0]);
    close(in[1]);
    return -1;
  }
  *out = fdopen(fds[0], "r");
  *go = in[1];
  return pid;
}

}  // namespace

TEST(Logbook, KillNineLosesOnlyUnflushedStepsAndTheNextRunGoesOn) {
  const fs::path dir = temp_run("kill");
  int64_t total_rows = 0;
  // Three writers killed at different points, each appending a segment to the same logbook.
  const int64_t kill_after[] = {3, 41, 17};
  for (int round = 0; round < 3; ++round) {
    FILE* out = nullptr;
    int go = -1;
    const pid_t pid = start_writer(dir, &out, &go);
    ASSERT_GT(pid, 0) << "cannot start " << LLMPI_LOGBOOK_CHILD;
    long long flushed = 0;
    char line[64];
    while (flushed < kill_after[round] && write(go, "s", 1) == 1 && std::fgets(line, sizeof line, out))
      std::sscanf(line, "flushed %lld", &flushed);
    ASSERT_EQ(write(go, "s", 1), 1);  // one more step, killed while it runs (perhaps mid-flush)
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    std::fclose(out);
    close(go);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer ended on its own";
    ASSERT_EQ(flushed, kill_after[round]);

    const LogbookContents c = read_logbook_file((dir / "logbook.h5").string());
    // Everything flushed before the kill is there, intact; at most the step being written when
    // the kill came is extra.
    const int64_t rows = int64_t(c.steps.size()) - total_rows;
    EXPECT_GE(rows, flushed) << "round " << round;
    EXPECT_LE(rows, flushed + 1) << "round " << round;
    for (int64_t i = 0; i < rows; ++i) {
      expect_synthetic(c.steps[size_t(total_rows + i)], i + 1);
      EXPECT_EQ(c.steps[size_t(total_rows + i)].segment, round);
    }
    total_rows += rows;
    int64_t events_this_round = 0;
    for (const Event& e : c.events)
      if (e.segment == round) {
        ++events_this_round;
        EXPECT_EQ(e.details, synthetic_event(e.step).details);
      }
    EXPECT_GE(events_this_round, flushed / 10);
  }
  // The next (clean) run rewrites the killed writer's file and appends segment 3.
  std::vector<std::string> reports;
  {
    Logbook book(dir.string(), synthetic_schema(), 0, [&](const std::string& l) { reports.push_back(l); });
    EXPECT_TRUE(book.enabled());
    EXPECT_EQ(book.segment(), 3);
    book.add_step(synthetic_step(1));
    book.add_event(make_event(EventType::run_end, 1, {{"status", "finished"}}));
  }
  ASSERT_FALSE(reports.empty());
  EXPECT_NE(reports[0].find("left open by a killed writer"), std::string::npos) << reports[0];
  const LogbookContents c = read_logbook_file((dir / "logbook.h5").string());
  ASSERT_EQ(int64_t(c.steps.size()), total_rows + 1);
  EXPECT_EQ(c.steps.back().segment, 3);
  const std::string md = slurp(dir / "LOGBOOK.md");
  EXPECT_NE(md.find("segment 1: no start record; trained steps 1–"), std::string::npos) << md;
  EXPECT_NE(md.find("segment 3: no start record; trained steps 1–1; ended at step 1: finished"),
            std::string::npos) << md;
  fs::remove_all(dir);
}

TEST(Logbook, DamagedOrForeignLogbookIsSetAsideNeverAnError) {
  const fs::path dir = temp_run("damaged");
  std::ofstream(dir / "logbook.h5") << "not an HDF5 file at all";
  std::vector<std::string> reports;
  auto report = [&](const std::string& l) { reports.push_back(l); };
  {
    Logbook book(dir.string(), synthetic_schema(), 0, report);
    EXPECT_TRUE(book.enabled());
    book.add_step(synthetic_step(1));
  }
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("could not be read"), std::string::npos) << reports[0];
  int aside = 0;
  for (const auto& e : fs::directory_iterator(dir))
    aside += e.path().filename().string().rfind("logbook.h5.damaged-", 0) == 0;
  EXPECT_EQ(aside, 1);
  LogbookContents c = read_logbook_file((dir / "logbook.h5").string());
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].type, "logbook_reset");
  EXPECT_EQ(c.steps.size(), 1u);
  // A logbook of another model (other parameter names) is set aside too.
  LogbookSchema other = synthetic_schema();
  other.params.push_back("extra.weight");
  reports.clear();
  { Logbook book(dir.string(), other, 0, report); EXPECT_TRUE(book.enabled()); }
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("another model"), std::string::npos) << reports[0];
  c = read_logbook_file((dir / "logbook.h5").string());
  EXPECT_EQ(c.schema, other);
  EXPECT_TRUE(c.steps.empty());
  fs::remove_all(dir);
}

TEST(Logbook, UnwritableRunDirectoryDisablesTheLogbookWithoutThrowing) {
  const fs::path dir = temp_run("unwritable");
  const fs::path not_a_dir = dir / "file";
  std::ofstream(not_a_dir) << "x";
  std::vector<std::string> reports;
  Logbook book(not_a_dir.string(), synthetic_schema(), 0, [&](const std::string& l) { reports.push_back(l); });
  EXPECT_FALSE(book.enabled());
  book.add_step(synthetic_step(1));
  EXPECT_FALSE(book.has_pending());
  book.flush();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("training continues without a logbook"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Logbook, ReaderRejectsWhatIsNotALogbook) {
  const fs::path dir = temp_run("reader");
  EXPECT_THROW(read_logbook_file((dir / "none.h5").string()), UserError);
  std::ofstream(dir / "junk.h5") << "junk";
  EXPECT_THROW(read_logbook_file((dir / "junk.h5").string()), UserError);
  // `llmpi logbook` (a fresh process: nothing else has opened an HDF5 file) says only what is
  // wrong, without HDF5's own error stack (it printed 10 lines of H5F__super_read first).
  std::ofstream(dir / "logbook.h5") << "junk";
  const auto [rc, out] = run_llmpi("logbook " + dir.string());
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("logbook.h5: cannot be read as an HDF5 logbook"), std::string::npos) << out;
  EXPECT_EQ(out.find("HDF5-DIAG"), std::string::npos) << out;
  fs::remove_all(dir);
}

TEST(Logbook, FormatDocDescribesEveryFieldStatAndEventType) {
  std::ifstream in(std::string(LLMPI_SOURCE_DIR) + "/docs/logbook-format.md");
  ASSERT_TRUE(in) << "docs/logbook-format.md is missing";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  for (const StepField& f : step_fields())
    EXPECT_NE(doc.find("| `" + std::string(f.name) + "` |"), std::string::npos) << f.name;
  for (const LayerStatField& f : layer_stat_fields())
    EXPECT_NE(doc.find("| `" + std::string(f.name) + "` |"), std::string::npos) << f.name;
  for (const EventTypeInfo& t : event_types())
    EXPECT_NE(doc.find("| `" + std::string(t.name) + "` |"), std::string::npos) << t.name;
  for (const char* d : {"/journal/time_unix", "/journal/details_offset", "/journal/details ", "/layers/params"})
    EXPECT_NE(doc.find(d), std::string::npos) << d;
}

// Every run event becomes a journal event of the same name (train/logbook_observer.h), so each
// needs a row in io/journal.h: its severity and LOGBOOK.md sentence (and, through the test
// above, a row in docs/logbook-format.md).
TEST(Logbook, EveryRunEventIsAJournalType) {
#define LLMPI_EXPECT_JOURNAL_TYPE(name) \
  EXPECT_TRUE(find_event_type(event_name(RunEventKind::name)).has_value()) << #name;
  LLMPI_RUN_EVENTS(LLMPI_EXPECT_JOURNAL_TYPE)
#undef LLMPI_EXPECT_JOURNAL_TYPE
}

TEST(Logbook, ExportsCarryEveryFieldAndEvent) {
  LogbookContents lb;
  lb.schema = synthetic_schema();
  for (int64_t s = 1; s <= 3; ++s) lb.steps.push_back(synthetic_step(s));
  lb.layers.push_back(synthetic_layers(2));
  lb.events.push_back(synthetic_event(3));
  const Table steps = steps_table(lb.steps);
  ASSERT_EQ(steps.columns.size(), step_fields().size());
  ASSERT_EQ(steps.rows.size(), 3u);
  const std::string csv = to_csv(steps);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "step,segment,tokens_seen,wall_unix,loss,val_loss,lr,grad_norm,clipped,"
                                           "skipped,spike,loss_z,grad_z,tokens_per_s,mfu,peak_memory_bytes,"
                                           "time_step_s,time_data_s,time_forward_s,time_backward_s,"
                                           "time_optimizer_s,time_comm_s,time_checkpoint_s,"
                                           "dpo_chosen_reward,dpo_rejected_reward,dpo_reward_margin,"
                                           "dpo_reward_accuracy");
  // Values read back exactly; NaN is an empty cell.
  EXPECT_EQ(std::get<double>(steps.rows[1][steps.column("loss")]), synthetic_step(2).loss);
  EXPECT_NE(csv.find("," + number_cell(synthetic_step(2).loss) + ","), std::string::npos);
  EXPECT_EQ(number_cell(std::nan("")), "");
  const Table layers = layer_stats_table(lb);
  EXPECT_EQ(layers.rows.size(), 3u * 3u + 2u);  // 3 per-tensor stats × 3 tensors + 2 blocks
  std::ostringstream jl;
  write_jsonl(lb, jl);
  std::vector<nlohmann::json> lines;
  std::istringstream in(jl.str());
  for (std::string l; std::getline(in, l);) lines.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(lines.size(), 1u + 3u + 1u + 1u);
  EXPECT_EQ(lines[0]["record"], "schema");
  EXPECT_EQ(lines[0]["params"].size(), 3u);
  EXPECT_EQ(lines[2]["record"], "step");
  EXPECT_EQ(lines[2]["loss"].get<double>(), synthetic_step(2).loss);
  EXPECT_TRUE(lines[1]["val_loss"].is_null());  // NaN → null
  EXPECT_EQ(lines[4]["record"], "layers");
  EXPECT_EQ(lines[5]["record"], "event");
  EXPECT_EQ(lines[5]["details"], synthetic_event(3).details);
  EXPECT_EQ(lines[5]["sentence"], render_sentence(synthetic_event(3)));
}
