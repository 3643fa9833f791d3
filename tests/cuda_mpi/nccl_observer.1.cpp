// The hang watchdog's view of NCCL collectives, on one GPU: an NCCL all_reduce behind work that
// does not finish (a host function that holds the stream, standing in for a peer that never
// arrives) is reported in flight — op, group, elements, bytes, the step that enqueued it —
// until the stream passes it, and the watchdog's report names it while the host is not inside
// any call. The same contract on the host, with a fake device group:
// tests/unit/test_observed_collectives.cpp.
// Run: mpiexec -n 1 build/cuda/cuda_mpi_nccl_observer_1 (or ctest --preset cuda -R nccl_observer).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "jobs/progress.h"
#include "jobs/watchdog.h"
#include "parallel/communicator.h"
#include "parallel/nccl_collectives.h"
#include "parallel/observed_collectives.h"

namespace llmpi {
namespace {

// Holds the stream until `release` becomes true (a host function may not call CUDA).
void CUDART_CB hold_stream(void* release) {
  while (!static_cast<std::atomic<bool>*>(release)->load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

struct Fixture {
  Communicator world = Communicator::dup(MPI_COMM_WORLD, "observer-test");
  cudaStream_t stream = nullptr;
  float* data = nullptr;
  std::atomic<bool> release{false};  // let go of the stream (also when a check failed)
  Fixture() {
    EXPECT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&data), 1024 * sizeof(float)), cudaSuccess);
  }
  ~Fixture() {
    release = true;
    cudaStreamSynchronize(stream);
    cudaFree(data);
    cudaStreamDestroy(stream);
  }
  Tensor tensor() const { return Tensor{data, Shape{1024}, DType::f32, Device::cuda}; }
};

TEST(NcclObserver, AllReduceIsInFlightUntilTheStreamPassesIt) {
  Fixture f;
  ObserverSlot slot{nullptr};
  Progress p(0);
  slot.store(&p);
  {
    ObservedCollectives g(
        std::make_unique<NcclCollectives>(f.world, f.stream, NcclOptions{30}), "dp", slot);
    ASSERT_EQ(cudaLaunchHostFunc(f.stream, hold_stream, &f.release), cudaSuccess);
    p.begin(Phase::step, 3);
    g.all_reduce(f.tensor());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Progress::Snapshot s = p.snapshot();
    EXPECT_EQ(s.op, nullptr);  // the host returned from the call
    ASSERT_NE(s.device.op, nullptr);
    EXPECT_STREQ(s.device.op, "all_reduce");
    EXPECT_EQ(s.device.group, "dp");
    EXPECT_EQ(s.device.elements, 1024);
    EXPECT_EQ(s.device.bytes, 4096);
    EXPECT_EQ(s.device.step, 3);
    EXPECT_GT(s.device.age_s, 0.15);
    f.release = true;
    ASSERT_EQ(cudaStreamSynchronize(f.stream), cudaSuccess);
    EXPECT_EQ(p.snapshot().device.op, nullptr);
  }
}

TEST(NcclObserver, WatchdogNamesTheStuckNcclCollective) {
  Fixture f;
  ObserverSlot slot{nullptr};
  Progress p(0);
  slot.store(&p);
  WatchdogSection w;
  w.step_timeout = 0.5;
  w.factor = 1;
  std::mutex mu;
  std::vector<HangReport> reports;
  {
    ObservedCollectives g(
        std::make_unique<NcclCollectives>(f.world, f.stream, NcclOptions{30}), "tp", slot);
    {
      Watchdog dog(w, p, 0, "/nonexistent", [&](const HangReport& r) {
        std::lock_guard<std::mutex> l(mu);
        reports.push_back(r);
      });
      ASSERT_EQ(cudaLaunchHostFunc(f.stream, hold_stream, &f.release), cudaSuccess);
      p.begin(Phase::step, 11);
      g.all_reduce(f.tensor());
      for (int i = 0; i < 1000; ++i) {
        {
          std::lock_guard<std::mutex> l(mu);
          if (!reports.empty()) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    f.release = true;
    ASSERT_EQ(cudaStreamSynchronize(f.stream), cudaSuccess);
  }
  ASSERT_EQ(reports.size(), 1u);
  const HangReport& r = reports[0];
  EXPECT_EQ(r.device_op, "all_reduce");
  EXPECT_EQ(r.device_group, "tp");
  EXPECT_EQ(r.device_bytes, 4096);
  EXPECT_EQ(r.device_step, 11);
  std::printf("%s\n", r.message().c_str());
}

}  // namespace
}  // namespace llmpi
