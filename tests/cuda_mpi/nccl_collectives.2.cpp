// NcclCollectives on 2 ranks, one GPU each: every collective and point-to-point operation for
// every dtype (f32, bf16, f64, i32), with expected values in closed form from the rank ids.
// Inputs are small integers, exact in every dtype (bf16: |v| ≤ 256), so results are compared
// exactly. Checks use EXPECT (not ASSERT) between collectives so that every rank always makes
// the same sequence of calls; a failure on any rank fails the job (main.cpp).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "parallel/communicator.h"
#include "parallel/nccl_collectives.h"

namespace llmpi {
namespace {

constexpr DType kDTypes[] = {DType::f32, DType::bf16, DType::f64, DType::i32};

uint16_t to_bf16(float f) {
  uint32_t b = 0;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);  // nearest even
}
float from_bf16(uint16_t h) {
  const uint32_t b = uint32_t{h} << 16;
  float f = 0;
  std::memcpy(&f, &b, 4);
  return f;
}

std::vector<unsigned char> encode(DType t, const std::vector<double>& v) {
  std::vector<unsigned char> out(v.size() * dtype_size(t));
  for (size_t i = 0; i < v.size(); ++i) {
    unsigned char* p = out.data() + i * dtype_size(t);
    switch (t) {
      case DType::f32: { const float x = static_cast<float>(v[i]); std::memcpy(p, &x, 4); break; }
      case DType::f64: std::memcpy(p, &v[i], 8); break;
      case DType::bf16: { const uint16_t x = to_bf16(static_cast<float>(v[i])); std::memcpy(p, &x, 2); break; }
      case DType::i32: { const int32_t x = static_cast<int32_t>(v[i]); std::memcpy(p, &x, 4); break; }
      case DType::u8: *p = static_cast<unsigned char>(v[i]); break;
    }
  }
  return out;
}

std::vector<double> decode(DType t, const std::vector<unsigned char>& b) {
  std::vector<double> v(b.size() / dtype_size(t));
  for (size_t i = 0; i < v.size(); ++i) {
    const unsigned char* p = b.data() + i * dtype_size(t);
    switch (t) {
      case DType::f32: { float x; std::memcpy(&x, p, 4); v[i] = x; break; }
      case DType::f64: std::memcpy(&v[i], p, 8); break;
      case DType::bf16: { uint16_t x; std::memcpy(&x, p, 2); v[i] = from_bf16(x); break; }
      case DType::i32: { int32_t x; std::memcpy(&x, p, 4); v[i] = x; break; }
      case DType::u8: v[i] = *p; break;
    }
  }
  return v;
}

std::vector<double> make(int64_t n, const std::function<double(int64_t)>& f) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = f(i);
  return v;
}

// A device allocation (RAII) holding n elements of one dtype.
class DeviceArray {
 public:
  DeviceArray(DType t, int64_t n) : t_(t), n_(n) {
    EXPECT_EQ(cudaMalloc(&p_, std::max<size_t>(bytes(), 1)), cudaSuccess);
  }
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  size_t bytes() const { return static_cast<size_t>(n_) * dtype_size(t_); }
  Tensor tensor() const { return Tensor{p_, Shape{n_}, t_, Device::cuda}; }
  // Stream-ordered upload / download (the download waits for the stream).
  void upload(const std::vector<double>& v, cudaStream_t s) {
    staged_ = encode(t_, v);
    EXPECT_EQ(cudaMemcpyAsync(p_, staged_.data(), bytes(), cudaMemcpyHostToDevice, s),
              cudaSuccess);
  }
  std::vector<double> download(cudaStream_t s) const {
    std::vector<unsigned char> b(bytes());
    EXPECT_EQ(cudaMemcpyAsync(b.data(), p_, bytes(), cudaMemcpyDeviceToHost, s), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    return decode(t_, b);
  }

 private:
  DType t_;
  int64_t n_;
  void* p_ = nullptr;
  std::vector<unsigned char> staged_;  // host source of the last upload, alive until reuse
};

// Number of elements where got != want (prints the first few).
int64_t mismatches(const std::vector<double>& got, const std::vector<double>& want) {
  EXPECT_EQ(got.size(), want.size());
  int64_t bad = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i)
    if (got[i] != want[i] && bad++ < 3)
      ADD_FAILURE() << "element " << i << ": got " << got[i] << ", want " << want[i];
  return bad;
}

class NcclCollectivesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = Communicator::dup(MPI_COMM_WORLD, "world");
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess);
    nccl_ = std::make_unique<NcclCollectives>(world_, stream_, NcclOptions{.hang_timeout_s = 120});
    r_ = nccl_->rank();
    n_ = nccl_->size();
  }
  void TearDown() override {
    nccl_.reset();
    cudaStreamDestroy(stream_);
  }

  Communicator world_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<NcclCollectives> nccl_;
  int r_ = 0, n_ = 0;
};

TEST_F(NcclCollectivesTest, Identity) {
  EXPECT_EQ(nccl_->size(), LLMPI_EXPECTED_RANKS);
  EXPECT_EQ(nccl_->rank(), world_.rank());
  EXPECT_EQ(nccl_->device(), Device::cuda);
  EXPECT_EQ(nccl_->nccl_version().rfind("2.", 0), 0u) << nccl_->nccl_version();
  if (r_ == 0) std::printf("NCCL %s\n", nccl_->nccl_version().c_str());
}

TEST_F(NcclCollectivesTest, AllReduceSumEveryDtype) {
  const int64_t n = 1'000'003;  // odd, several NCCL chunks
  const double s = n_ * (n_ + 1) / 2.0;
  for (DType t : kDTypes) {
    SCOPED_TRACE(dtype_name(t));
    DeviceArray a(t, n);
    a.upload(make(n, [&](int64_t i) { return (r_ + 1) * (i % 7 + 1) - 3.0; }), stream_);
    nccl_->all_reduce(a.tensor(), ReduceOp::sum);
    EXPECT_EQ(mismatches(a.download(stream_),
                         make(n, [&](int64_t i) { return s * (i % 7 + 1) - 3.0 * n_; })),
              0);
  }
}

TEST_F(NcclCollectivesTest, AllReduceMaxEveryDtype) {
  const int64_t n = 4099;
  auto v = [](int r, int64_t i) { return double((i + 3 * r) % 11) - 5.0; };
  for (DType t : kDTypes) {
    SCOPED_TRACE(dtype_name(t));
    DeviceArray a(t, n);
    a.upload(make(n, [&](int64_t i) { return v(r_, i); }), stream_);
    nccl_->all_reduce(a.tensor(), ReduceOp::max);
    EXPECT_EQ(mismatches(a.download(stream_), make(n, [&](int64_t i) {
                           double m = v(0, i);
                           for (int q = 1; q < n_; ++q) m = std::max(m, v(q, i));
                           return m;
                         })),
              0);
  }
}

TEST_F(NcclCollectivesTest, ReduceScatterEveryDtype) {
  const int64_t m = 65'537;  // elements per chunk
  const double s = n_ * (n_ + 1) / 2.0;
  for (DType t : kDTypes) {
    SCOPED_TRACE(dtype_name(t));
    DeviceArray full(t, m * n_), out(t, m);
    full.upload(make(m * n_, [&](int64_t j) { return (r_ + 1) * double(j % 13); }), stream_);
    nccl_->reduce_scatter(out.tensor(), full.tensor());
    EXPECT_EQ(mismatches(out.download(stream_),
                         make(m, [&](int64_t k) { return s * double((r_ * m + k) % 13); })),
              0);
  }
}

TEST_F(NcclCollectivesTest, AllGatherEveryDtypeOutOfPlaceAndInPlace) {
  const int64_t m = 30'001;
  auto v = [](int r, int64_t k) { return 64.0 * r + double(k % 61) - 30.0; };
  const auto want = make(m * n_, [&](int64_t j) { return v(int(j / m), j % m); });
  for (DType t : kDTypes) {
    SCOPED_TRACE(dtype_name(t));
    DeviceArray in(t, m), full(t, m * n_), full2(t, m * n_);
    in.upload(make(m, [&](int64_t k) { return v(r_, k); }), stream_);
    full.upload(make(m * n_, [](int64_t) { return -99.0; }), stream_);
    nccl_->all_gather(full.tensor(), in.tensor());
    EXPECT_EQ(mismatches(full.download(stream_), want), 0) << "out of place";

    // In place: this rank's input is already chunk rank() of the output.
    full2.upload(make(m * n_, [&](int64_t j) { return j / m == r_ ? v(r_, j % m) : -99.0; }),
                 stream_);
    nccl_->all_gather(full2.tensor(), full2.tensor().slice(r_ * m, Shape{m}));
    EXPECT_EQ(mismatches(full2.download(stream_), want), 0) << "in place";
  }
}

TEST_F(NcclCollectivesTest, BroadcastEveryDtypeFromEveryRoot) {
  const int64_t n = 10'007;
  for (DType t : kDTypes) {
    for (int root = 0; root < n_; ++root) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " root " + std::to_string(root));
      DeviceArray a(t, n);
      a.upload(make(n, [&](int64_t i) { return r_ == root ? double(i % 97) - 48.0 - root : -7.0; }),
               stream_);
      nccl_->broadcast(a.tensor(), root);
      EXPECT_EQ(mismatches(a.download(stream_),
                           make(n, [&](int64_t i) { return double(i % 97) - 48.0 - root; })),
                0);
    }
  }
}

// Blocking send/recv: a ping-pong 0 → 1 → 0 in which rank 1 doubles what it got.
TEST_F(NcclCollectivesTest, SendRecvPingPongEveryDtype) {
  const int64_t n = 70'001;
  auto v = [](int64_t i) { return double(i % 29) + 1.0; };
  for (DType t : kDTypes) {
    SCOPED_TRACE(dtype_name(t));
    DeviceArray a(t, n), b(t, n);
    if (r_ == 0) {
      a.upload(make(n, v), stream_);
      nccl_->send(a.tensor(), 1);
      nccl_->recv(b.tensor(), 1);
      EXPECT_EQ(mismatches(b.download(stream_), make(n, [&](int64_t i) { return 2 * v(i); })), 0);
    } else if (r_ == 1) {
      nccl_->recv(a.tensor(), 0);
      EXPECT_EQ(mismatches(a.download(stream_), make(n, v)), 0);
      b.upload(make(n, [&](int64_t i) { return 2 * v(i); }), stream_);
      nccl_->send(b.tensor(), 0);
    }
    nccl_->synchronize();
  }
}

// isend/irecv in the exchange pattern that deadlocks when sends run before receives: every
// rank sends two messages (different sizes) to the next rank and receives two from the
// previous one, all posted before any wait. Messages of a pair match in posting order.
TEST_F(NcclCollectivesTest, IsendIrecvExchangeEveryDtype) {
  const int64_t n1 = 50'003, n2 = 17;
  const int next = (r_ + 1) % n_, prev = (r_ + n_ - 1) % n_;
  auto v1 = [](int r, int64_t i) { return 100.0 * r + double(i % 50); };
  auto v2 = [](int r, int64_t i) { return -10.0 * r - double(i); };
  for (DType t : kDTypes) {
    SCOPED_TRACE(dtype_name(t));
    DeviceArray s1(t, n1), s2(t, n2), g1(t, n1), g2(t, n2);
    s1.upload(make(n1, [&](int64_t i) { return v1(r_, i); }), stream_);
    s2.upload(make(n2, [&](int64_t i) { return v2(r_, i); }), stream_);
    std::vector<Request> reqs;
    reqs.push_back(nccl_->isend(s1.tensor(), next));
    reqs.push_back(nccl_->irecv(g1.tensor(), prev));
    reqs.push_back(nccl_->isend(s2.tensor(), next));
    reqs.push_back(nccl_->irecv(g2.tensor(), prev));
    for (const Request& q : reqs) EXPECT_TRUE(q.pending());
    wait_all(reqs);
    for (const Request& q : reqs) EXPECT_FALSE(q.pending());
    EXPECT_EQ(mismatches(g1.download(stream_), make(n1, [&](int64_t i) { return v1(prev, i); })), 0);
    EXPECT_EQ(mismatches(g2.download(stream_), make(n2, [&](int64_t i) { return v2(prev, i); })), 0);
  }
}

// A collective enqueued after an unwaited irecv sees the received data (operations of one
// communicator run in call order), and start() launches the group early.
TEST_F(NcclCollectivesTest, CollectiveAfterUnwaitedIrecvSeesItsData) {
  const int64_t n = 1'025;
  const int next = (r_ + 1) % n_, prev = (r_ + n_ - 1) % n_;
  const double s = n_ * (n_ + 1) / 2.0;
  for (DType t : kDTypes) {
    SCOPED_TRACE(dtype_name(t));
    DeviceArray x(t, n), got(t, n);
    x.upload(make(n, [&](int64_t i) { return (r_ + 1) * double(i % 9); }), stream_);
    Request a = nccl_->isend(x.tensor(), next);
    Request b = nccl_->irecv(got.tensor(), prev);
    if (t == DType::bf16) nccl_->start();  // the early launch path, on one dtype
    nccl_->all_reduce(got.tensor(), ReduceOp::sum);  // Σ over ranks of the received x
    EXPECT_EQ(mismatches(got.download(stream_), make(n, [&](int64_t i) { return s * (i % 9); })),
              0);
  }
}

TEST_F(NcclCollectivesTest, HostScalarsAreStagedThroughTheDevice) {
  EXPECT_EQ(nccl_->all_reduce_value(r_ + 0.5), n_ * n_ / 2.0);
  EXPECT_EQ(nccl_->all_reduce_value<int32_t>(r_ + 1, ReduceOp::max), n_);
  EXPECT_EQ(nccl_->all_reduce_value(float(2 * r_ + 1)), float(n_ * n_));
  std::vector<int32_t> host(300);
  for (size_t i = 0; i < host.size(); ++i) host[i] = int32_t(i) * (r_ + 1);
  nccl_->all_reduce(Tensor{host.data(), Shape{300}, DType::i32, Device::host});
  for (size_t i = 0; i < host.size(); ++i)
    if (host[i] != int32_t(i) * n_ * (n_ + 1) / 2) {
      ADD_FAILURE() << "host element " << i << ": " << host[i];
      break;
    }
}

// barrier() returns only after every rank reached it and the compute stream has drained.
TEST_F(NcclCollectivesTest, BarrierWaitsForLateRankAndDrainsStream) {
  using clock = std::chrono::steady_clock;
  DeviceArray big(DType::f32, int64_t{64} << 20);
  EXPECT_EQ(cudaMemsetAsync(big.tensor().data, 1, big.bytes(), stream_), cudaSuccess);
  if (r_ == n_ - 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = clock::now();
  nccl_->barrier();
  const double waited = std::chrono::duration<double>(clock::now() - t0).count();
  EXPECT_EQ(cudaStreamQuery(stream_), cudaSuccess);
  if (r_ == 0) {
    EXPECT_GT(waited, 0.2) << "rank 0 left the barrier before the late rank came";
  }
}

TEST_F(NcclCollectivesTest, MisuseIsAnInternalErrorBeforeAnyCommunication) {
  std::vector<float> host(8);
  const Tensor h{host.data(), Shape{8}, DType::f32, Device::host};
  DeviceArray d(DType::f32, 8), d3(DType::f32, 3), i32(DType::i32, 16);
  EXPECT_THROW(nccl_->reduce_scatter(h.view(Shape{8}).slice(0, Shape{4}), h), InternalError);
  EXPECT_THROW(nccl_->all_gather(d.tensor(), d3.tensor()), InternalError);  // 8 ≠ 2·3
  EXPECT_THROW(nccl_->all_gather(i32.tensor(), d.tensor()), InternalError);  // dtypes differ
  EXPECT_THROW(nccl_->broadcast(d.tensor(), n_), InternalError);
  EXPECT_THROW(nccl_->send(d.tensor(), r_), InternalError);
  EXPECT_THROW((void)nccl_->isend(h, 0), InternalError);
  nccl_->barrier();  // still usable: nothing was enqueued
}

}  // namespace
}  // namespace llmpi
