#include "jobs/run_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/subprocess.h"
#include "core/text_file.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

std::string first_line(const std::string& path) {
  std::string s = read_text_file_if_exists(path);
  const size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

// Field 22 of /proc/<pid>/stat: start time in clock ticks after boot; "" if no such process.
std::string process_start(long pid) {
  const std::string stat = read_text_file_if_exists("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && (in >> field); ++i) {
  }
  return field;
}

std::string describe(const nlohmann::json& h) {
  std::string s = "pid " + std::to_string(h.value("pid", 0L)) + " on " + h.value("host", std::string("?"));
  if (!h.value("slurm_job", std::string()).empty()) s += " (Slurm job " + h.value("slurm_job", std::string()) + ")";
  if (!h.value("since", std::string()).empty()) s += " since " + h.value("since", std::string());
  return s;
}

bool flock_unsupported(int err) { return err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL; }

}  // namespace

nlohmann::json lock_holder_self() {
  const long pid = long(::getpid());
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char since[32];
  std::strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%S", &tm);
  const char* job = std::getenv("SLURM_JOB_ID");
  return {{"host", hostname()},
          {"pid", pid},
          {"start", process_start(pid)},
          {"boot_id", first_line("/proc/sys/kernel/random/boot_id")},
          {"slurm_job", job ? job : ""},
          {"since", since}};
}

std::string holder_is_gone(const nlohmann::json& h) {
  const std::string job = h.value("slurm_job", std::string());
  const char* mine = std::getenv("SLURM_JOB_ID");
  if (!job.empty() && mine && job == mine && h.value("pid", 0L) != long(::getpid()))
    return "an earlier run of this same Slurm job " + job + " (requeued)";
  if (h.value("host", std::string()) == hostname() &&
      h.value("boot_id", std::string()) == first_line("/proc/sys/kernel/random/boot_id")) {
    const long pid = h.value("pid", 0L);
    const std::string start = process_start(pid);
    if (start.empty()) return "process " + std::to_string(pid) + " no longer exists";
    if (start != h.value("start", std::string())) return "process " + std::to_string(pid) + " no longer exists (the pid was reused)";
    return "";
  }
  if (!job.empty() && on_path("squeue")) {
    const ProcessResult p = run_process({"squeue", "-h", "-j", job, "-o", "%T"}, 20.0);
    std::string state = p.out;
    while (!state.empty() && std::isspace(static_cast<unsigned char>(state.back()))) state.pop_back();
    if (p.started && !p.timed_out && (p.exit_code != 0 || state.empty()))
      return "Slurm job " + job + " is no longer in the queue";
    if (p.ok() && state != "RUNNING" && state != "COMPLETING" && state != "SUSPENDED" &&
        state != "CONFIGURING" && state != "STOPPED")
      return "Slurm job " + job + " is " + state;
  }
  return "";
}

RunLock::RunLock(const std::string& run_dir, const std::function<void(const std::string&)>& log) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) user_error(run_dir, ": cannot create the run directory (", ec.message(), ")");
  path_ = (fs::path(run_dir) / "lock").string();
  for (int attempt = 0; attempt < 20; ++attempt) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) user_error(path_, ": cannot open the run directory's lock (", std::strerror(errno), ")");
    const std::string previous = read_text_file_if_exists(path_);
    nlohmann::json holder = nlohmann::json::parse(previous, nullptr, /*allow_exceptions=*/false);
    const bool named = holder.is_object() && holder.contains("pid");
    std::string stale;  // why the recorded holder is gone
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK || !flock_unsupported(err)) {
        ::close(fd);
        if (named) stale = holder_is_gone(holder);
        if (stale.empty())
          user_error("run directory ", run_dir, " is in use by ",
                     named ? describe(holder) : std::string("another process"),
                     ": two jobs must not write one run. Wait for it to end, cancel it, or give "
                     "this job another run.dir. (If that job is certainly gone, remove ", path_, ".)");
        fs::remove(path_, ec);  // a dead holder's lock the lock manager kept: replace the file
        if (log) log("run directory lock: took over from " + describe(holder) + ": " + stale);
        continue;
      }
      // No flock on this file system: the recorded holder alone decides.
      if (named && holder_is_gone(holder).empty() && holder.value("pid", 0L) != long(::getpid())) {
        ::close(fd);
        user_error("run directory ", run_dir, " is in use by ", describe(holder),
                   " (no file locks on this file system; if that job is certainly gone, remove ",
                   path_, ")");
      }
    }
    // Locked: is it still the file at that path (not one removed by its releasing holder)?
    struct stat a {}, b {};
    if (::fstat(fd, &a) != 0 || ::stat(path_.c_str(), &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
      ::close(fd);
      continue;
    }
    if (named && stale.empty()) stale = holder_is_gone(holder);
    if (named && log)
      log("run directory lock: took over a stale lock of " + describe(holder) +
          (stale.empty() ? "" : ": " + stale));
    const std::string me = lock_holder_self().dump() + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != ssize_t(me.size())) {
      const int err = errno;
      ::close(fd);
      user_error(path_, ": cannot write the lock (", std::strerror(err), ")");
    }
    ::fsync(fd);
    fd_ = fd;
    return;
  }
  user_error(path_, ": could not take the run directory's lock after 20 attempts (it keeps changing)");
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
}

}  // namespace llmpi
