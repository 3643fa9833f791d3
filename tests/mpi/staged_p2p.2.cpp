// StagedP2p (parallel/staged_p2p.h) on 2 ranks, over the host backend: point-to-point
// messages staged through host buffers with MPI tags, posted in DIFFERENT orders on the two
// ends (as the interleaved pipeline does between two stages), arrive intact and matched by
// tag; blocking send/recv; collectives delegate to the "device" group. On CUDA the same class
// stages device tensors (exercised by the GPU layout matrix, tests/cuda_mpi/).
#include <gtest/gtest.h>
#include <mpi.h>

#include <vector>

#include "backend/backend.h"
#include "parallel/communicator.h"
#include "parallel/mpi_collectives.h"
#include "parallel/staged_p2p.h"

namespace llmpi {
namespace {

Tensor view(std::vector<float>& v) {
  return Tensor{v.data(), Shape{static_cast<int64_t>(v.size())}, DType::f32, Device::host};
}

std::vector<float> pattern(int tag, int n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[size_t(i)] = float(tag * 1000 + i);
  return v;
}

TEST(StagedP2p, TaggedMessagesPostedInDifferentOrders) {
  Communicator dev_comm = Communicator::dup(MPI_COMM_WORLD, "staged-device");
  Communicator host_comm = Communicator::dup(MPI_COMM_WORLD, "staged-host");
  MpiCollectives device(dev_comm), host(host_comm);
  auto be = make_host_backend();
  StagedP2p p2p(device, host, *be);
  ASSERT_EQ(p2p.size(), 2);
  const int me = p2p.rank(), peer = 1 - me;
  const int n = 257;
  // Rank 0 posts its receives for tags 1, 2, 3 and then sends 4, 5, 6; rank 1 sends 3, 1, 2
  // first (not in rank 0's order) and receives 6, 4, 5. Sizes are equal on purpose: only the
  // tags can match the messages correctly.
  std::vector<std::vector<float>> in(7, std::vector<float>(size_t(n), -1.f)), out(7);
  for (int t = 1; t <= 6; ++t) out[size_t(t)] = pattern(t, n);
  std::vector<Request> reqs;
  if (me == 0) {
    for (int t : {1, 2, 3}) reqs.push_back(p2p.irecv(view(in[size_t(t)]), peer, t));
    for (int t : {4, 5, 6}) reqs.push_back(p2p.isend(view(out[size_t(t)]), peer, t));
  } else {
    for (int t : {3, 1, 2}) reqs.push_back(p2p.isend(view(out[size_t(t)]), peer, t));
    for (int t : {6, 4, 5}) reqs.push_back(p2p.irecv(view(in[size_t(t)]), peer, t));
  }
  wait_all(reqs);
  for (int t : me == 0 ? std::vector<int>{1, 2, 3} : std::vector<int>{4, 5, 6})
    EXPECT_EQ(in[size_t(t)], out[size_t(t)]) << "tag " << t;

  // Blocking exchange: rank 0 sends first, rank 1 receives first.
  std::vector<float> a = pattern(7 + me, n), b(size_t(n), 0.f);
  if (me == 0) {
    p2p.send(view(a), peer, 9);
    p2p.recv(view(b), peer, 9);
  } else {
    p2p.recv(view(b), peer, 9);
    p2p.send(view(a), peer, 9);
  }
  EXPECT_EQ(b, pattern(7 + peer, n));

  // Collectives go to the device group.
  std::vector<float> s{float(me + 1), 10.f};
  p2p.all_reduce(view(s));
  EXPECT_EQ(s, (std::vector<float>{3.f, 20.f}));
}

}  // namespace
}  // namespace llmpi
