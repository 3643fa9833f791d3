#include "slurm/run_status.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include "config/config.h"
#include "core/error.h"
#include "core/file_kind.h"
#include "core/subprocess.h"
#include "core/text_file.h"
#include "jobs/checkpoint_dir.h"
#include "jobs/deadline.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string hms(double s) {
  if (s < 0) return "-";
  const long long t = (long long)(s + 0.5);
  char buf[32];
  if (t >= 86400)
    std::snprintf(buf, sizeof buf, "%lldd %lldh%02lldm", t / 86400, t / 3600 % 24, t / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

std::string when(double unix_s) {
  if (unix_s <= 0) return "-";
  const std::time_t t = std::time_t(unix_s);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// "KEY=value" fields of `scontrol show job -o` output.
std::map<std::string, std::string> fields(const std::string& line) {
  std::map<std::string, std::string> f;
  std::istringstream in(line);
  for (std::string w; in >> w;) {
    const size_t eq = w.find('=');
    if (eq != std::string::npos) f[w.substr(0, eq)] = w.substr(eq + 1);
  }
  return f;
}

void query_state(JobState& j) {
  const std::string& id = j.record.job_id;
  const ProcessResult sc = run_process({"scontrol", "show", "job", "-o", id}, 20.0);
  if (sc.ok() && sc.out.find("JobId=") != std::string::npos) {
    auto f = fields(sc.out);
    j.state = f.count("JobState") ? f["JobState"] : "unknown";
    j.reason = f.count("Reason") && f["Reason"] != "None" ? f["Reason"] : "";
    j.exit_code = f.count("ExitCode") ? f["ExitCode"] : "";
    if (f.count("Restarts")) j.restarts = std::atoll(f["Restarts"].c_str());
    return;
  }
  const ProcessResult sa = run_process({"sacct", "-n", "-P", "-X", "-j", id, "-o", "State,ExitCode"}, 20.0);
  const std::string line = trim(sa.out.substr(0, sa.out.find('\n')));
  if (sa.ok() && !line.empty() && line.find('|') != std::string::npos) {
    j.state = line.substr(0, line.find('|'));
    j.exit_code = line.substr(line.find('|') + 1);
    return;
  }
  j.state = "unknown";
  j.reason = "not known to scontrol or sacct";
}

}  // namespace

std::vector<Segment> parse_job_output(const std::string& job_id, const std::string& text) {
  static const std::regex say(R"(^\[llmpi-slurm (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\] (.*)$)");
  static const std::regex start(R"(^job \S+ on .*restart (\d+) )");
  static const std::regex resume(R"(^resuming from \S+ at step (\d+))");
  static const std::regex step(R"(^step +(\d+)/(\d+) )");
  static const std::regex rc(R"(\(exit (\d+)\))");
  std::vector<Segment> segs;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, say)) {
      const double t = parse_local_time(m[1]).value_or(0.0);
      const std::string what = m[2];
      std::smatch k;
      if (std::regex_search(what, k, start)) {
        Segment s;
        s.job_id = job_id;
        s.restart = std::atoll(k[1].str().c_str());
        s.start_unix = t;
        s.outcome = "running";
        segs.push_back(s);
      } else if (segs.empty()) {
        continue;
      } else if (what.rfind("requeueing job", 0) == 0) {
        segs.back().requeued = true;
      } else if (what.rfind("training finished", 0) == 0) {
        segs.back().outcome = "finished";
        segs.back().end_unix = t;
      } else if (std::regex_search(what, k, rc) && segs.back().outcome == "running") {
        const std::string code = k[1];
        segs.back().end_unix = t;
        segs.back().outcome = what.rfind("preempted", 0) == 0      ? "preempted (exit " + code + ")"
                              : what.rfind("time limit", 0) == 0   ? "time limit (exit " + code + ")"
                              : what.rfind("the watchdog", 0) == 0 ? "hang, ended by the watchdog (exit " + code + ")"
                                                                   : "failed (exit " + code + ")";
      }
      continue;
    }
    if (segs.empty()) continue;
    Segment& s = segs.back();
    if (std::regex_search(line, m, resume)) {
      s.resumed_from = std::atoll(m[1].str().c_str());
    } else if (std::regex_search(line, m, step)) {
      const int64_t n = std::atoll(m[1].str().c_str());
      if (s.first_step < 0) s.first_step = n;
      s.last_step = n;
    } else if (line.rfind("stopping after step", 0) == 0 || line.rfind("llmpi: watchdog:", 0) == 0) {
      s.notes.push_back(line);
    }
  }
  return segs;
}

RunStatus read_run_status(const std::string& run_dir, bool query_slurm, double now_unix) {
  RunStatus s;
  s.run_dir = run_dir;
  std::error_code ec;
  require_run_directory(run_dir);
  const fs::path cfg = fs::path(run_dir) / "config.toml";
  if (fs::exists(cfg, ec)) {
    try {
      s.total_steps = parse_config(read_text_file_if_exists(cfg.string()), cfg.string()).train.steps;
    } catch (const UserError&) {
      s.total_steps = 0;  // a config of another version: progress without a total
    }
  }
  const std::vector<CheckpointFile> cks = list_checkpoints(run_dir);
  if (!cks.empty()) {
    s.checkpoint_step = cks.back().step;
    s.checkpoint_path = cks.back().path;
    const auto mtime = fs::last_write_time(cks.back().path, ec);
    if (!ec)
      s.checkpoint_unix = double(std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                                     .count());
  }
  const std::vector<JobRecord> records = read_job_records(run_dir);
  if (records.empty() && cks.empty() && !fs::exists(cfg, ec))
    user_error(run_dir, ": not a run directory (no config.toml, checkpoints/ or slurm/jobs.jsonl)");
  for (const JobRecord& r : records) {
    JobState j;
    j.record = r;
    if (query_slurm) query_state(j);
    s.jobs.push_back(j);
    for (Segment& seg : parse_job_output(r.job_id, read_text_file_if_exists(job_output_path(r)))) {
      s.requeues += seg.requeued;
      s.last_step = std::max(s.last_step, seg.last_step);
      s.segments.push_back(std::move(seg));
    }
  }
  s.last_step = std::max(s.last_step, s.checkpoint_step);
  // ETA from the segment still running: its steps over its time so far.
  for (const Segment& seg : s.segments)
    if (seg.outcome == "running" && seg.last_step > 0 && s.total_steps > 0) {
      const int64_t from = seg.resumed_from >= 0 ? seg.resumed_from : 0;
      const double took = now_unix - seg.start_unix;
      if (seg.last_step > from && took > 0)
        s.eta_s = double(s.total_steps - seg.last_step) * took / double(seg.last_step - from);
    }
  return s;
}

std::string format_run_status(const RunStatus& s, double now_unix) {
  std::ostringstream o;
  char buf[512];
  o << "run " << s.run_dir << "\n";
  if (s.total_steps > 0) {
    const int64_t at = std::max<int64_t>(0, s.last_step);
    std::snprintf(buf, sizeof buf, "progress: step %lld of %lld (%.0f%%)", (long long)at,
                  (long long)s.total_steps, 100.0 * double(at) / double(s.total_steps));
    o << buf;
    if (s.eta_s >= 0) o << ", ETA " << hms(s.eta_s) << " (at " << when(now_unix + s.eta_s) << ")";
    else if (at >= s.total_steps) o << ", done";
    o << "\n";
  }
  if (s.checkpoint_step >= 0)
    o << "last checkpoint: step " << s.checkpoint_step << ", " << s.checkpoint_path << " ("
      << when(s.checkpoint_unix) << ")\n";
  else
    o << "last checkpoint: none yet\n";
  o << "requeues: " << s.requeues << "\n";
  if (s.jobs.empty()) {
    o << "jobs: none recorded (submit with llmpi slurm submit)\n";
    return o.str();
  }
  o << "\njobs:\n";
  std::snprintf(buf, sizeof buf, "  %-10s %-6s %-12s %-9s %-6s %-19s %s\n", "job", "chain", "state",
                "restarts", "exit", "submitted", "output");
  o << buf;
  for (const JobState& j : s.jobs) {
    const std::string chain = std::to_string(j.record.chain_index) + "/" + std::to_string(j.record.chain_length);
    const std::string state = j.state + (j.reason.empty() ? "" : " (" + j.reason + ")");
    std::snprintf(buf, sizeof buf, "  %-10s %-6s %-12s %-9s %-6s %-19s %s\n", j.record.job_id.c_str(),
                  chain.c_str(), state.c_str(), j.restarts >= 0 ? std::to_string(j.restarts).c_str() : "-",
                  j.exit_code.empty() ? "-" : j.exit_code.c_str(), when(j.record.submitted_unix).c_str(),
                  job_output_path(j.record).c_str());
    o << buf;
  }
  o << "\nsegments (one per launch of the training step):\n";
  if (s.segments.empty()) o << "  none started yet\n";
  int n = 0;
  for (const Segment& g : s.segments) {
    const std::string from = g.resumed_from >= 0 ? "resumed at step " + std::to_string(g.resumed_from) : "fresh start";
    const std::string steps = g.first_step >= 0 ? "steps " + std::to_string(g.first_step) + "-" + std::to_string(g.last_step)
                                                : "no step logged";
    const double dur = (g.end_unix > 0 ? g.end_unix : now_unix) - g.start_unix;
    std::snprintf(buf, sizeof buf, "  %2d. job %s restart %lld, %s: %s, %s, %s%s\n", ++n, g.job_id.c_str(),
                  (long long)g.restart, when(g.start_unix).c_str(), from.c_str(), steps.c_str(),
                  (g.outcome + (g.end_unix > 0 || g.outcome == "running" ? " after " + hms(dur) : "")).c_str(),
                  g.requeued ? ", requeued" : "");
    o << buf;
    for (const std::string& note : g.notes) o << "      " << note << "\n";
  }
  return o.str();
}

}  // namespace llmpi
