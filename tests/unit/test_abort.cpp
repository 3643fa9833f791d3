// The "no hang" guarantee: a failed MPI call on one rank ends the whole job, promptly, with
// that rank and MPI's cause on stderr — even while another rank waits in a collective.
// A job that aborts cannot report to GoogleTest, so this one test plays two roles:
//  - parent (the normal run): starts `mpiexec -n 2` on this same test binary, filtered to
//    this test, with LLMPI_ABORT_CHILD=1, and checks the job's exit status, its output and
//    that it ended within a deadline;
//  - child (LLMPI_ABORT_CHILD=1, under mpiexec): rank 0 sends 8 floats and waits in a
//    barrier; rank 1 receives into room for 4, MPI reports MPI_ERR_TRUNCATE, and the
//    collectives layer must abort the job, which also ends rank 0's barrier.
#include <gtest/gtest.h>
#include <mpi.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/mpi_collectives.h"

extern char** environ;

namespace llmpi {
namespace {

constexpr const char* kChildVar = "LLMPI_ABORT_CHILD";
constexpr const char* kTestName = "MpiAbort.FailedCallEndsEveryRankWithItsCause";
constexpr auto kDeadline = std::chrono::seconds(60);

void run_child() {
  Communicator world = Communicator::dup(MPI_COMM_WORLD, "abort-test");
  MpiCollectives c(world);
  ASSERT_EQ(c.size(), 2);
  std::vector<float> data(8, 1.f);
  if (c.rank() == 0) {
    c.send(Tensor{data.data(), Shape{8}, DType::f32, Device::host}, 1);
    c.barrier();  // rank 1 never arrives: only the abort can end this
  } else {
    c.recv(Tensor{data.data(), Shape{4}, DType::f32, Device::host}, 0);  // too short
  }
  ADD_FAILURE() << "rank " << c.rank() << " returned: the job was not aborted";
}

// The environment of the parent without the MPI launcher's variables (this process is an
// MPI singleton; its OMPI_/PMIX_ settings must not leak into a fresh mpiexec).
std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    bool launcher = false;
    for (const char* prefix : {"OMPI_", "PMIX_", "PRTE_", "OPAL_", "ORTE_"})
      launcher = launcher || kv.rfind(prefix, 0) == 0;
    if (!launcher) env.push_back(kv);
  }
  env.push_back(std::string(kChildVar) + "=1");
  env.push_back("OMPI_MCA_rmaps_base_oversubscribe=1");
  env.push_back("OMPI_MCA_btl=self,vader");
  env.push_back("OMPI_MCA_btl_vader_single_copy_mechanism=none");
  return env;
}

std::string self_path() {
  std::vector<char> buf(4096, '\0');
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  return n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : std::string();
}

TEST(MpiAbort, FailedCallEndsEveryRankWithItsCause) {
  if (std::getenv(kChildVar)) return run_child();

  const std::string exe = self_path();
  ASSERT_FALSE(exe.empty()) << "cannot read /proc/self/exe";
  std::vector<std::string> args = {"mpiexec", "-n", "2", "--oversubscribe", "--bind-to", "none"};
  if (geteuid() == 0) args.push_back("--allow-run-as-root");
  args.push_back(exe);
  args.push_back(std::string("--gtest_filter=") + kTestName);
  const std::vector<std::string> env = child_environment();
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  argv.push_back(nullptr);
  envp.push_back(nullptr);

  char log_path[] = "/tmp/llmpi_abort_test_XXXXXX";
  const int log_fd = mkstemp(log_path);
  ASSERT_GE(log_fd, 0) << std::strerror(errno);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, log_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, log_fd, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);  // own group: killable as a whole
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, "mpiexec", &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(log_fd);
  ASSERT_EQ(rc, 0) << "posix_spawnp(mpiexec): " << std::strerror(rc);

  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  bool ended = false;
  while (!ended && std::chrono::steady_clock::now() - start < kDeadline) {
    ended = waitpid(pid, &status, WNOHANG) == pid;
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!ended) {
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  std::ifstream in(log_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string out = ss.str();
  std::remove(log_path);

  ASSERT_TRUE(ended) << "the job hung: still running after " << kDeadline.count()
                     << " s\n" << out;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << "status " << status << "\n" << out;
  EXPECT_NE(out.find("rank 1: fatal: MPI_Recv from rank 0 (tag 0) on communicator "
                     "'abort-test' (rank 1 of 2) failed"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(mpi_error_string(MPI_ERR_TRUNCATE)), std::string::npos) << out;
  EXPECT_EQ(out.find("the job was not aborted"), std::string::npos) << out;
}

}  // namespace
}  // namespace llmpi
