// ObservedCollectives (parallel/observed_collectives.h), the one place where collectives are
// observed for the hang watchdog, on the host: a blocking MPI group (over MPI_COMM_SELF)
// reports enter/leave around each call and each Request::wait and nothing in flight; a fake
// device group — every call only "enqueues", and finishes when the test says so, as NCCL's do
// on a stream — reports its collectives as in flight until they finish, oldest first, so that
// the watchdog's report names the device collective a rank is stuck behind (op, group,
// elements, bytes, the step that enqueued it). tests/cuda_mpi/nccl_observer.1.cpp checks the
// same with NCCL on a GPU.
#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jobs/progress.h"
#include "jobs/watchdog.h"
#include "parallel/communicator.h"
#include "parallel/mpi_collectives.h"
#include "parallel/observed_collectives.h"

namespace llmpi {
namespace {

struct FakeCompletion final : Completion {
  std::atomic<bool> finished{false};
  bool done() override { return finished.load(); }
};

// A device group of one rank whose calls only enqueue: completion() marks the work so far.
class FakeDeviceGroup final : public Collectives {
 public:
  std::vector<std::shared_ptr<FakeCompletion>> marks;
  std::vector<std::string> calls;

  int rank() const override { return 0; }
  int size() const override { return 1; }
  Device device() const override { return Device::cuda; }
  void all_reduce(const Tensor&, ReduceOp) override { calls.push_back("all_reduce"); }
  void reduce_scatter(const Tensor&, const Tensor&) override { calls.push_back("reduce_scatter"); }
  void all_gather(const Tensor&, const Tensor&) override { calls.push_back("all_gather"); }
  void broadcast(const Tensor&, int) override { calls.push_back("broadcast"); }
  void send(const Tensor&, int, int) override { calls.push_back("send"); }
  void recv(const Tensor&, int, int) override { calls.push_back("recv"); }
  Request isend(const Tensor&, int, int) override { return Request(); }
  Request irecv(const Tensor&, int, int) override { return Request(); }
  void barrier() override { calls.push_back("barrier"); }
  std::shared_ptr<Completion> completion() override {
    marks.push_back(std::make_shared<FakeCompletion>());
    return marks.back();
  }
};

Tensor device_f32(int64_t n) {
  static float word = 0;  // never dereferenced by the fake
  return Tensor{&word, Shape{n}, DType::f32, Device::cuda};
}

TEST(ObservedCollectives, DeviceCollectivesAreInFlightUntilTheyFinishOldestFirst) {
  ObserverSlot slot{nullptr};
  Progress p(0);
  slot.store(&p);
  auto fake = std::make_unique<FakeDeviceGroup>();
  FakeDeviceGroup& dev = *fake;
  auto group = std::make_unique<ObservedCollectives>(std::move(fake), "dp", slot);

  p.begin(Phase::step, 5);
  group->all_reduce(device_f32(1024));
  Progress::Snapshot s = p.snapshot();
  EXPECT_EQ(s.op, nullptr);  // the host left the call: it only enqueued
  ASSERT_NE(s.device.op, nullptr);
  EXPECT_STREQ(s.device.op, "all_reduce");
  EXPECT_EQ(s.device.group, "dp");
  EXPECT_EQ(s.device.elements, 1024);
  EXPECT_EQ(s.device.bytes, 4096);
  EXPECT_EQ(s.device.step, 5);

  p.begin(Phase::step, 6);
  group->reduce_scatter(device_f32(256), device_f32(1024));
  EXPECT_STREQ(p.snapshot().device.op, "all_reduce");  // still the oldest
  ASSERT_EQ(dev.marks.size(), 2u);
  dev.marks[0]->finished = true;
  s = p.snapshot();
  ASSERT_NE(s.device.op, nullptr);
  EXPECT_STREQ(s.device.op, "reduce_scatter");
  EXPECT_EQ(s.device.elements, 1024);
  EXPECT_EQ(s.device.step, 6);

  EXPECT_EQ(dev.calls, (std::vector<std::string>{"all_reduce", "reduce_scatter"}));
  const std::shared_ptr<FakeCompletion> second = dev.marks[1];
  group.reset();  // the group may go before its work is seen finished: names were copied
  EXPECT_EQ(p.snapshot().device.group, "dp");
  second->finished = true;
  EXPECT_EQ(p.snapshot().device.op, nullptr);
}

// Records what an observer is told.
struct Recorder final : CollectiveObserver {
  std::vector<std::string> log;
  void enter(const CollectiveCall& c) override {
    log.push_back(std::string("enter ") + c.op + " " + c.group + " " + std::to_string(c.elements) +
                  " " + std::to_string(c.bytes));
  }
  void leave() override { log.push_back("leave"); }
  void enqueued(const CollectiveCall& c, std::shared_ptr<Completion>) override {
    log.push_back(std::string("enqueued ") + c.op);
  }
};

TEST(ObservedCollectives, MpiCallsAndWaitsAreObservedAndNothingIsInFlight) {
  Communicator self = Communicator::dup(MPI_COMM_SELF, "self");
  ObserverSlot slot{nullptr};
  Recorder rec;
  ObservedCollectives c(std::make_unique<MpiCollectives>(self), self.name(), slot);
  std::vector<double> v(3, 2.0);
  const Tensor t{v.data(), Shape{3}, DType::f64, Device::host};
  c.all_reduce(t);  // no observer yet: nothing told
  EXPECT_TRUE(rec.log.empty());
  slot.store(&rec);
  c.all_reduce(t);
  Request r = c.iall_reduce(t);
  r.wait();
  Request g = c.iall_gather(t, t);  // a group of one: t is its own chunk (in place)
  g.wait();
  c.barrier();
  slot.store(nullptr);
  c.barrier();
  EXPECT_EQ(rec.log, (std::vector<std::string>{"enter all_reduce self 3 24", "leave",
                                               "enter iall_reduce self 3 24", "leave",
                                               "enter wait (iall_reduce) self 3 24", "leave",
                                               "enter iall_gather self 3 24", "leave",
                                               "enter wait (iall_gather) self 3 24", "leave",
                                               "enter barrier self 0 0", "leave"}));
  EXPECT_EQ(v[0], 2.0);  // a group of one: the sum is the value
}

TEST(ObservedCollectives, WatchdogNamesTheUnfinishedDeviceCollective) {
  WatchdogSection w;
  w.step_timeout = 0.3;
  w.factor = 1;
  ObserverSlot slot{nullptr};
  Progress p(0);
  slot.store(&p);
  ObservedCollectives group(std::make_unique<FakeDeviceGroup>(), "tp", slot);
  std::mutex mu;
  std::vector<HangReport> reports;
  {
    Watchdog dog(w, p, 2, "/nonexistent", [&](const HangReport& r) {
      std::lock_guard<std::mutex> l(mu);
      reports.push_back(r);
    });
    p.begin(Phase::step, 9);
    group.all_reduce(device_f32(1024));  // never finishes: a peer is gone
    for (int i = 0; i < 500; ++i) {      // fires soon after 0.3 s (at most 5 s when busy)
      {
        std::lock_guard<std::mutex> l(mu);
        if (!reports.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ASSERT_EQ(reports.size(), 1u);
  const HangReport& r = reports[0];
  EXPECT_EQ(r.step, 9);
  EXPECT_TRUE(r.op.empty());  // the host is not inside a call
  EXPECT_EQ(r.device_op, "all_reduce");
  EXPECT_EQ(r.device_group, "tp");
  EXPECT_EQ(r.device_elements, 1024);
  EXPECT_EQ(r.device_bytes, 4096);
  EXPECT_EQ(r.device_step, 9);
  EXPECT_GT(r.device_s, 0.3);
  const std::string m = r.message();
  EXPECT_NE(m.find("not inside a collective; oldest unfinished device collective: all_reduce "
                   "over the tp group (1024 elements, 4.0 KiB), enqueued at step 9, "),
            std::string::npos)
      << m;
  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j["device_collective"]["op"], "all_reduce");
  EXPECT_EQ(j["device_collective"]["bytes"], 4096);
}

}  // namespace
}  // namespace llmpi
