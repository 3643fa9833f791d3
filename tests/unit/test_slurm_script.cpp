// The sbatch script (slurm/batch_script.h): Slurm time formats, shell quoting, what the
// rendered text must say, its refusals, and — run by bash with fake `srun`, `mpirun` and
// `scontrol` on PATH — what it does with each exit code of the training step and with a
// forwarded stop signal. No Slurm needed; the real cluster runs in tests/slurm/.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/subprocess.h"
#include "jobs/exit_codes.h"
#include "jobs/stop_signals.h"
#include "slurm/batch_script.h"
#include "slurm/submit.h"
#include "test_model_util.h"

using namespace llmpi;
namespace fs = std::filesystem;

namespace {

BatchSpec sample_spec() {
  BatchSpec b;
  b.job_name = "llmpi-tiny";
  b.res.nodes = 2;
  b.res.tasks_per_node = 4;
  b.res.time_limit_s = 3600;
  b.workdir = "/work/project";
  b.output = "/work/project/runs/tiny/slurm/%j.out";
  b.run_dir = "/work/project/runs/tiny";
  b.llmpi_bin = "/opt/llmpi/bin/llmpi";
  b.llmpi_version = "llmpi 0.1.0 (git abcdef123456)";
  b.train_args = {"train", "/work/project/configs/tiny.toml", "--set", "train.lr=1e-3"};
  b.submitted_with = "llmpi slurm submit configs/tiny.toml --nodes 2";
  return b;
}

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_exec(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  fs::permissions(p, fs::perms::owner_all);
}

// A scratch directory with fake Slurm commands: `srun`/`mpirun` record their arguments and
// exit with $FAKE_STEP_RC, or — with FAKE_STEP_WAIT=1 — wait for the stop signal and then
// exit with it; `scontrol` records its arguments.
struct FakeSlurm {
  fs::path dir;
  FakeSlurm() {
    dir = fs::temp_directory_path() / ("llmpi_fake_slurm_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "bin");
    const std::string step = R"(#!/bin/bash
echo "$(basename "$0") $*" >> "$FAKE_LOG"
if [ -n "${FAKE_HANG_DIR:-}" ]; then  # the watchdog of rank 1 fired, srun ended rank 0
  mkdir -p "$FAKE_HANG_DIR"
  echo '{"rank": 1}' > "$FAKE_HANG_DIR/rank-00001.json"
fi
if [ "${FAKE_STEP_WAIT:-0}" = 1 ]; then
  trap 'echo "step got USR1" >> "$FAKE_LOG"; exit "$FAKE_STEP_RC"' USR1
  echo ready > "$FAKE_READY"
  for _ in $(seq 200); do sleep 0.05; done
  exit 99
fi
exit "$FAKE_STEP_RC"
)";
    write_exec(dir / "bin/srun", step);
    write_exec(dir / "bin/mpirun", step);
    // FAKE_LATE_SIGNAL=1: Slurm's stop signal reaches the batch shell while it requeues.
    write_exec(dir / "bin/scontrol",
               "#!/bin/bash\necho \"scontrol $*\" >> \"$FAKE_LOG\"\n"
               "if [ \"${FAKE_LATE_SIGNAL:-0}\" = 1 ]; then kill -USR1 $PPID; sleep 0.2; fi\n");
    write_exec(dir / "llmpi", "#!/bin/bash\necho 'llmpi 0.1.0 (git abcdef123456)'\n");
  }
  ~FakeSlurm() { fs::remove_all(dir); }

  struct Outcome {
    int rc = -1;
    std::string log, out;
  };
  // Runs the script rendered from `b` under bash with these extra environment settings.
  Outcome run(BatchSpec b, const std::vector<std::string>& env, bool send_signal = false) {
    b.llmpi_bin = (dir / "llmpi").string();
    b.run_dir = (dir / "run").string();
    const fs::path script = dir / "job.sbatch";
    std::ofstream(script) << render_batch_script(b);
    fs::remove(dir / "log");
    fs::remove(dir / "ready");
    std::vector<std::string> argv = {"env", "PATH=" + (dir / "bin").string() + ":/usr/bin:/bin",
                                     "FAKE_LOG=" + (dir / "log").string(),
                                     "FAKE_READY=" + (dir / "ready").string(),
                                     "SLURM_JOB_ID=4242"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back("bash");
    argv.push_back(script.string());
    Outcome o;
    if (!send_signal) {
      const ProcessResult p = run_process(argv, 30.0);
      EXPECT_TRUE(p.started && !p.timed_out) << p.error;
      o.rc = p.exit_code;
      o.out = p.out + p.err;
    } else {
      // The batch shell gets the stop signal the way `scancel --signal=USR1 --batch` sends it.
      const fs::path pidfile = dir / "pid";
      const std::string cmd = "echo $$ > " + pidfile.string() + "; exec " + [&] {
        std::string s;
        for (const auto& a : argv) s += shell_quote(a) + " ";
        return s;
      }() + "> " + (dir / "out").string() + " 2>&1";
      std::thread sender([&] {
        for (int i = 0; i < 200 && !fs::exists(dir / "ready"); ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(25));
        const pid_t pid = std::stoi(read_file(pidfile));
        ::kill(pid, SIGUSR1);
      });
      const ProcessResult p = run_process({"bash", "-c", cmd}, 30.0);
      sender.join();
      o.rc = p.exit_code;
      o.out = read_file(dir / "out");
    }
    o.log = read_file(dir / "log");
    return o;
  }
};

}  // namespace

TEST(SlurmTime, ParsesEverySlurmFormat) {
  EXPECT_EQ(parse_slurm_time("90", "--time"), 90 * 60);
  EXPECT_EQ(parse_slurm_time("1:30", "--time"), 90);
  EXPECT_EQ(parse_slurm_time("2:00:00", "--time"), 7200);
  EXPECT_EQ(parse_slurm_time("1-12", "--time"), 36 * 3600);
  EXPECT_EQ(parse_slurm_time("1-12:30", "--time"), 36 * 3600 + 30 * 60);
  EXPECT_EQ(parse_slurm_time("2-00:00:01", "--time"), 2 * 86400 + 1);
  for (const char* bad : {"", "abc", "1:2:3:4", "-5", "0", "0:00", "1-", "1.5", "1-2:3:4:5", "x-1"}) {
    SCOPED_TRACE(bad);
    try {
      parse_slurm_time(bad, "--time");
      ADD_FAILURE() << "accepted";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("--time"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(format_slurm_time(59), "00:00:59");
  EXPECT_EQ(format_slurm_time(7200), "02:00:00");
  EXPECT_EQ(format_slurm_time(86400 + 3661), "1-01:01:01");
  for (int64_t s : {1, 61, 3599, 86399, 86400, 200000})
    EXPECT_EQ(parse_slurm_time(format_slurm_time(s), "t"), s);
}

TEST(SlurmScript, ShellQuotingSurvivesBash) {
  for (const std::string w : {"plain", "two words", "it's", "$HOME", "a\"b", "`x`", "*", "", "a\\b",
                              "line\nbreak", "--set=train.lr=1e-3"}) {
    const ProcessResult p = run_process({"bash", "-c", "printf %s " + shell_quote(w)});
    EXPECT_EQ(p.out, w) << shell_quote(w);
  }
  EXPECT_EQ(shell_quote("/a/b-c.toml"), "/a/b-c.toml");  // nothing to quote
}

TEST(SlurmScript, SaysWhatTheIssueAsks) {
  BatchSpec b = sample_spec();
  b.res.cpus_per_task = 8;
  b.res.partition = "gpu";
  b.res.account = "proj42";
  b.res.qos = "normal";
  b.res.constraint = "a100&ib";
  b.env = {{"NCCL_DEBUG", "WARN"}};
  const std::string s = render_batch_script(b);
  for (const char* line :
       {"#!/bin/bash", "#SBATCH --job-name=llmpi-tiny", "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4", "#SBATCH --cpus-per-task=8", "#SBATCH --partition=gpu",
        "#SBATCH --account=proj42", "#SBATCH --qos=normal", "#SBATCH --time=01:00:00",
        "#SBATCH --constraint='a100&ib'", "#SBATCH --signal=B:USR1@180", "#SBATCH --requeue",
        "#SBATCH --open-mode=append", "#SBATCH --output=/work/project/runs/tiny/slurm/%j.out",
        "#SBATCH --chdir=/work/project", "LLMPI_BIN=${LLMPI_BIN:-/opt/llmpi/bin/llmpi}",
        "export NCCL_DEBUG=WARN", "export LLMPI_SIGNAL_MARGIN=180", "export SRUN_CPUS_PER_TASK=${SLURM_CPUS_PER_TASK:-8}",
        "launch=(srun --mpi=pmix --kill-on-bad-exit=1)",
        "train_args=(train /work/project/configs/tiny.toml --set train.lr=1e-3)",
        "trap forward \"$stop_signal\"", "  if scontrol requeue \"$job\"; then exit 0; fi",
        "  job=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"}) {
    EXPECT_TRUE(has_line(s, line)) << "missing line: " << line << "\n" << s;
  }
  // Exit codes come from jobs/exit_codes.h, one case each.
  for (int code : {kExitPreempted, kExitDeadline, kExitWatchdog})
    EXPECT_TRUE(has_line(s, "  " + std::to_string(code) + ")")) << code;
  // Nothing requested that was not asked for; nothing built; the binary is logged.
  EXPECT_EQ(s.find("--gpus"), std::string::npos);
  EXPECT_EQ(s.find("cmake"), std::string::npos);
  EXPECT_EQ(s.find("make "), std::string::npos);
  EXPECT_NE(s.find("say \"binary $LLMPI_BIN: $version\""), std::string::npos);
  const fs::path f = fs::temp_directory_path() / ("llmpi_render_" + std::to_string(::getpid()));
  std::ofstream(f) << s;
  const ProcessResult syntax = run_process({"bash", "-n", f.string()});
  fs::remove(f);
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;
}

TEST(SlurmScript, GpusAndMpirun) {
  BatchSpec b = sample_spec();
  b.res.gpus_per_task = 2;
  b.launcher = Launcher::mpirun;
  b.stop_signal = "USR2";
  b.env = {{"NCCL_IB_HCA", "mlx5"}, {"NCCL_DEBUG", "INFO"}};
  const std::string s = render_batch_script(b);
  EXPECT_TRUE(has_line(s, "#SBATCH --gpus-per-node=8"));
  EXPECT_TRUE(has_line(s, "#SBATCH --signal=B:USR2@180"));
  EXPECT_NE(s.find("launch=(mpirun -n 8 --map-by ppr:4:node --bind-to none -x NCCL_IB_HCA -x "
                   "NCCL_DEBUG -x OMP_NUM_THREADS -x LLMPI_SIGNAL_MARGIN"),
            std::string::npos)
      << s;
  EXPECT_EQ(s.find("launch=(srun"), std::string::npos);
}

TEST(SlurmScript, RefusesInconsistentSpecs) {
  auto refused = [](BatchSpec b, const std::string& needle) {
    try {
      render_batch_script(b);
      ADD_FAILURE() << "accepted; expected an error naming " << needle;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  BatchSpec b = sample_spec();
  b.signal_margin_s = 3600;
  refused(b, "--signal-margin");
  b = sample_spec();
  b.res.nodes = 0;
  refused(b, "--nodes");
  b = sample_spec();
  b.launcher = Launcher::mpirun;
  b.stop_signal = "TERM";
  refused(b, "mpirun");
  b = sample_spec();
  b.stop_signal = "HUP";
  refused(b, "USR1, USR2 or TERM");
  b = sample_spec();
  b.env = {{"NOT A NAME", "x"}};
  refused(b, "NOT A NAME");
  b = sample_spec();
  b.sbatch_extra = {"exclusive"};
  refused(b, "--sbatch-arg");
  b = sample_spec();
  b.chain_length = 0;
  refused(b, "--chain");
  // A line break in any value would end its line of the script and run the rest as a
  // command (the partition's line, the header comment, an export, the launch line).
  b = sample_spec();
  b.res.partition = "gpu\nrm -rf ~";
  refused(b, "--partition: 'gpu\\nrm -rf ~' holds a control character");
  b = sample_spec();
  b.job_name = "x\n#SBATCH --exclusive";
  refused(b, "--job-name");
  b = sample_spec();
  b.env = {{"A", "1\nrm -rf /"}};
  refused(b, "--env A");
  b = sample_spec();
  b.launcher_extra = {"--foo\rbar"};
  refused(b, "--launcher-arg");
  b = sample_spec();
  b.train_args.push_back("run.dir=a\nb");
  refused(b, "--set");
  b = sample_spec();
  b.submitted_with += " --env 'A=1\nrm -rf /'";
  refused(b, "the submitting command line");
}

TEST(SlurmScript, ActsOnEachExitCode) {
  FakeSlurm fake;
  BatchSpec b = sample_spec();
  b.max_requeues = 2;
  // Preempted: requeues itself while under the cap.
  auto o = fake.run(b, {"FAKE_STEP_RC=75", "SLURM_RESTART_COUNT=1"});
  EXPECT_EQ(o.rc, 0) << o.out;
  EXPECT_NE(o.log.find("srun --mpi=pmix --kill-on-bad-exit=1 " + (fake.dir / "llmpi").string() +
                       " train /work/project/configs/tiny.toml --set train.lr=1e-3"),
            std::string::npos)
      << o.log;
  EXPECT_NE(o.log.find("scontrol requeue 4242"), std::string::npos) << o.log;
  EXPECT_NE(o.out.find("restart 2 of at most 2"), std::string::npos) << o.out;
  // A stop signal after the step ended (while requeueing) is ignored, not fatal.
  o = fake.run(b, {"FAKE_STEP_RC=75", "FAKE_LATE_SIGNAL=1"});
  EXPECT_EQ(o.rc, 0) << o.out;
  EXPECT_NE(o.out.find("SIGUSR1 received after the training step ended: ignored"), std::string::npos) << o.out;
  // ... and not at the cap.
  o = fake.run(b, {"FAKE_STEP_RC=75", "SLURM_RESTART_COUNT=2"});
  EXPECT_EQ(o.rc, kExitPreempted);
  EXPECT_EQ(o.log.find("scontrol"), std::string::npos) << o.log;
  EXPECT_NE(o.out.find("not requeued"), std::string::npos) << o.out;
  // An array task requeues itself by <array job>_<task>.
  o = fake.run(b, {"FAKE_STEP_RC=75", "SLURM_ARRAY_JOB_ID=100", "SLURM_ARRAY_TASK_ID=3"});
  EXPECT_NE(o.log.find("scontrol requeue 100_3"), std::string::npos) << o.log;
  // Deadline: the next job of a chain continues; the chain's last job requeues.
  b.chain_length = 2;
  o = fake.run(b, {"FAKE_STEP_RC=76", "LLMPI_CHAIN_INDEX=1"});
  EXPECT_EQ(o.rc, 0);
  EXPECT_EQ(o.log.find("scontrol"), std::string::npos) << o.log;
  o = fake.run(b, {"FAKE_STEP_RC=76", "LLMPI_CHAIN_INDEX=2"});
  EXPECT_NE(o.log.find("scontrol requeue 4242"), std::string::npos) << o.log;
  // Watchdog, failures and success: passed on, never requeued.
  for (int rc : {kExitWatchdog, 1, 2, 0}) {
    o = fake.run(b, {"FAKE_STEP_RC=" + std::to_string(rc)});
    EXPECT_EQ(o.rc, rc);
    EXPECT_EQ(o.log.find("scontrol"), std::string::npos) << rc << ": " << o.log;
  }
  // srun exits 143 after ending the ranks the watchdog's rank left behind: the hang report
  // this launch wrote makes it the watchdog's exit; an old report does not.
  const fs::path hangs = fake.dir / "run/hangs";
  fs::create_directories(hangs);
  std::ofstream(hangs / "rank-00000.json") << "{}";
  fs::last_write_time(hangs / "rank-00000.json", fs::file_time_type::clock::now() - std::chrono::hours(1));
  o = fake.run(b, {"FAKE_STEP_RC=143"});
  EXPECT_EQ(o.rc, 143) << o.out;
  o = fake.run(b, {"FAKE_STEP_RC=143", "FAKE_HANG_DIR=" + hangs.string()});
  EXPECT_EQ(o.rc, kExitWatchdog) << o.out;
  EXPECT_NE(o.out.find("the watchdog ended a hung run"), std::string::npos) << o.out;
  EXPECT_EQ(o.log.find("scontrol"), std::string::npos) << o.log;
  // A binary other than the one submitted is run, with a warning.
  BatchSpec other = sample_spec();
  other.llmpi_version = "llmpi 0.1.0 (git 000000000000)";
  o = fake.run(other, {"FAKE_STEP_RC=0"});
  EXPECT_NE(o.out.find("warning: the job was submitted with"), std::string::npos) << o.out;
}

TEST(SlurmScript, ForwardsTheStopSignalAndWaits) {
  FakeSlurm fake;
  BatchSpec b = sample_spec();
  for (Launcher l : {Launcher::srun, Launcher::mpirun}) {
    b.launcher = l;
    const auto o = fake.run(b, {"FAKE_STEP_WAIT=1", "FAKE_STEP_RC=75"}, /*send_signal=*/true);
    EXPECT_NE(o.log.find("step got USR1"), std::string::npos) << o.log << o.out;
    EXPECT_NE(o.out.find("SIGUSR1 received: forwarding it"), std::string::npos) << o.out;
    // The real exit code of the step, not wait's 128+10, decided what happened next.
    EXPECT_NE(o.log.find("scontrol requeue 4242"), std::string::npos) << o.log << o.out;
    EXPECT_EQ(o.rc, 0) << o.out;
  }
}

// `llmpi slurm submit` picks a free name for its script in <run.dir>/slurm; a dangling
// symbolic link there is taken, not free (fs::exists() says no, and writing it followed the
// link into the file it names). A fake sbatch on PATH answers with a job id.
TEST(SlurmSubmit, NeverWritesTheScriptThroughALink) {
  const fs::path dir = fs::temp_directory_path() / ("llmpi_submit_link_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "bin");
  std::ofstream(dir / "bin/sbatch") << "#!/bin/sh\necho 4242\n";
  fs::permissions(dir / "bin/sbatch", fs::perms::owner_all);
  std::ofstream(dir / "c.toml") << llmpi::testing::tiny_config_toml(Arch::gpt2) << "[run]\ndir = \"run\"\n";
  const char* old_path = std::getenv("PATH");
  const std::string saved = old_path ? old_path : "";
  ::setenv("PATH", ((dir / "bin").string() + ":" + saved).c_str(), 1);
  SubmitOptions opt;
  opt.config_path = (dir / "c.toml").string();
  opt.res.nodes = 1;
  SubmitContext ctx;
  ctx.cwd = dir.string();
  ctx.llmpi_bin = "/usr/bin/true";
  ctx.llmpi_version = "llmpi test";
  ctx.now_unix = 1.7e9;  // both submits: the same timestamp, so the second needs another name
  try {
    const SubmitResult first = submit(opt, ctx);
    ASSERT_EQ(first.jobs.size(), 1u);
    const std::string stem = first.script_path.substr(0, first.script_path.size() - 7);  // ".sbatch"
    const fs::path victim = dir / "victim.txt";
    fs::create_symlink(victim, stem + "-2.sbatch");
    const SubmitResult second = submit(opt, ctx);
    EXPECT_EQ(second.script_path, stem + "-3.sbatch");
    EXPECT_FALSE(fs::exists(victim)) << "the script was written through the link";
    EXPECT_TRUE(fs::is_symlink(stem + "-2.sbatch"));
  } catch (const UserError& e) {
    ADD_FAILURE() << e.what();
  }
  ::setenv("PATH", saved.c_str(), 1);
  fs::remove_all(dir);
}
