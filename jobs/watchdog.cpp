#include "jobs/watchdog.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "jobs/exit_codes.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

// Writes `text` to `path` with POSIX calls only (tmp + rename): safe while the main thread is
// stuck anywhere.
void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w <= 0) break;
    p += w;
    left -= size_t(w);
  }
  ::fsync(fd);
  ::close(fd);
  ::rename(tmp.c_str(), path.c_str());
}

std::string size_text(int64_t elements, int64_t bytes) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%lld elements, %.1f KiB", (long long)elements, double(bytes) / 1024.0);
  return buf;
}

}  // namespace

double watchdog_limit(const WatchdogSection& w, Phase p, double longest_s) {
  switch (p) {
    case Phase::startup: return w.startup_timeout;
    case Phase::step:
    case Phase::eval: return std::max(w.step_timeout, w.factor * longest_s);
    case Phase::save: return std::max(w.save_timeout, w.factor * longest_s);
    case Phase::idle: return 0.0;
  }
  return 0.0;
}

std::string HangReport::message() const {
  char head[512];
  std::snprintf(head, sizeof head,
                "llmpi: watchdog: rank %d on %s (pid %ld): no progress for %.1f s at step %lld, "
                "phase %s (limit %.1f s)",
                rank, host.c_str(), pid, stalled_s, (long long)step, phase_name(phase), limit_s);
  std::string s = head;
  char tail[384];
  if (!op.empty()) {
    std::snprintf(tail, sizeof tail, "; waiting in %s over the %s group (%s) for %.1f s",
                  op.c_str(), group.empty() ? "?" : group.c_str(),
                  size_text(elements, bytes).c_str(), op_s);
    s += tail;
  } else {
    s += "; not inside a collective";
  }
  if (!device_op.empty()) {
    std::snprintf(tail, sizeof tail,
                  "; oldest unfinished device collective: %s over the %s group (%s), enqueued at "
                  "step %lld, %.1f s ago",
                  device_op.c_str(), device_group.empty() ? "?" : device_group.c_str(),
                  size_text(device_elements, device_bytes).c_str(), (long long)device_step,
                  device_s);
    s += tail;
  }
  return s + "; ending the job (exit " + std::to_string(kExitWatchdog) + ")";
}

nlohmann::json HangReport::to_json() const {
  nlohmann::json j = {{"rank", rank},       {"host", host},        {"pid", pid},
                      {"step", step},       {"phase", phase_name(phase)},
                      {"stalled_s", stalled_s}, {"limit_s", limit_s}, {"time_unix", time_unix}};
  if (!op.empty()) {
    j["collective"] = op;
    j["group"] = group;
    j["elements"] = elements;
    j["bytes"] = bytes;
    j["in_collective_s"] = op_s;
  }
  if (!device_op.empty())
    j["device_collective"] = {{"op", device_op},         {"group", device_group},
                              {"elements", device_elements}, {"bytes", device_bytes},
                              {"step", device_step},     {"in_flight_s", device_s}};
  if (!slurm_job.empty()) j["slurm_job"] = slurm_job;
  return j;
}

Watchdog::Watchdog(const WatchdogSection& w, const Progress& progress, int rank,
                   std::string run_dir, OnHang on_hang, double grace_s)
    : w_(w),
      progress_(progress),
      rank_(rank),
      run_dir_(std::move(run_dir)),
      host_(hostname()),
      on_hang_(std::move(on_hang)),
      grace_s_(grace_s) {
  if (w_.enabled) thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const Progress::Snapshot s = progress_.snapshot();
    // A rank waiting for a peer's timed work is not timed (jobs/progress.h).
    const double limit = s.waiting ? 0.0 : watchdog_limit(w_, s.phase, progress_.longest(s.phase));
    if (limit > 0 && s.stalled_s > limit) {
      HangReport r;
      r.rank = rank_;
      r.host = host_;
      r.pid = long(::getpid());
      r.step = s.step;
      r.phase = s.phase;
      r.stalled_s = s.stalled_s;
      r.limit_s = limit;
      if (s.op) {
        r.op = s.op;
        r.group = s.group ? s.group : "";
        r.elements = s.elements;
        r.bytes = s.bytes;
        r.op_s = s.op_s;
      }
      if (s.device.op) {
        r.device_op = s.device.op;
        r.device_group = s.device.group;
        r.device_elements = s.device.elements;
        r.device_bytes = s.device.bytes;
        r.device_step = s.device.step;
        r.device_s = s.device.age_s;
      }
      r.time_unix = now_unix();
      if (const char* j = std::getenv("SLURM_JOB_ID")) r.slurm_job = j;
      lock.unlock();
      fire(r);
      return;
    }
    // Check ten times per limit, at most once a second.
    const double wait = limit > 0 ? std::clamp(limit / 10.0, 0.05, 1.0) : 1.0;
    if (cv_.wait_for(lock, std::chrono::duration<double>(wait), [this] { return stop_; })) return;
  }
}

void Watchdog::fire(const HangReport& r) {
  if (on_hang_) {
    on_hang_(r);
    return;
  }
  const std::string msg = r.message() + "\n";
  (void)!::write(2, msg.data(), msg.size());
  std::error_code ec;
  const fs::path dir = fs::path(run_dir_) / "hangs";
  fs::create_directories(dir, ec);
  char name[32];
  std::snprintf(name, sizeof name, "rank-%05d.json", r.rank);
  write_file((dir / name).string(), r.to_json().dump() + "\n");
  // Let the other ranks, stuck alike, report too before the launcher ends them.
  std::this_thread::sleep_for(std::chrono::duration<double>(grace_s_));
  ::_exit(kExitWatchdog);
}

std::vector<RunEvent> take_hang_reports(const std::string& run_dir) {
  std::vector<RunEvent> events;
  const fs::path dir = fs::path(run_dir) / "hangs";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return events;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    RunEvent e;
    e.kind = RunEventKind::watchdog;
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
    auto unreadable = [&] {
      e = RunEvent{};
      e.kind = RunEventKind::watchdog;
      e.line = "hang report " + f.string() + " of an earlier launch is unreadable";
      e.details = {{"file", f.string()}, {"error", "unreadable hang report"}};
    };
    if (!j.is_object()) {
      unreadable();
      events.push_back(std::move(e));
      fs::remove(f, ec);
      continue;
    }
    try {  // a field of the wrong type (e.g. "rank": "0") makes it unreadable, not a crash
      e.step = j.value("step", int64_t{-1});
      for (const auto& [k, v] : j.items()) e.details.emplace_back(k, v.is_string() ? v.get<std::string>() : v.dump());
      char line[256];
      std::snprintf(line, sizeof line,
                    "the watchdog ended an earlier launch: rank %lld on %s hung %.0f s at step %lld, "
                    "phase %s",
                    (long long)j.value("rank", int64_t{-1}), j.value("host", std::string("?")).c_str(),
                    j.value("stalled_s", 0.0), (long long)e.step, j.value("phase", std::string("?")).c_str());
      e.line = line;
      if (j.contains("collective"))
        e.line += ", waiting in " + j.value("collective", std::string()) + " over " + j.value("group", std::string());
      if (const auto d = j.find("device_collective"); d != j.end() && d->is_object())
        e.line += ", device collective " + d->value("op", std::string("?")) + " over " +
                  d->value("group", std::string("?")) + " of step " +
                  std::to_string(d->value("step", int64_t{-1})) + " unfinished";
    } catch (const nlohmann::json::exception&) {
      unreadable();
    }
    events.push_back(std::move(e));
    fs::remove(f, ec);
  }
  return events;
}

}  // namespace llmpi
