// Collectives on 4 ranks: every operation in f32, f64 and i32 with expected values in
// closed form from the rank ids; the split-message path (tiny max_message_elems); the
// non-blocking ring; and the tensor/sequence-parallel forward/backward pairs on a
// tp=2 × dp=2 topology, by value and by the adjoint identity Σ⟨F x, dy⟩ = Σ⟨x, B dy⟩.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <vector>

#include "config/config.h"
#include "core/rng.h"
#include "parallel/mpi_collectives.h"
#include "parallel/topology.h"
#include "parallel/tp_comm.h"
#include "parallel/zero_shard.h"

namespace llmpi {
namespace {

template <class T>
Tensor view(std::vector<T>& v, Shape s) {
  LLMPI_CHECK(s.numel() == static_cast<int64_t>(v.size()), "test view");
  return Tensor{v.data(), s, dtype_of<T>::value, Device::host};
}
template <class T>
Tensor view(std::vector<T>& v) {
  return view(v, Shape{static_cast<int64_t>(v.size())});
}

// A private world duplicate and its collectives, optionally with tiny message pieces.
struct World {
  Communicator comm = Communicator::dup(MPI_COMM_WORLD, "test-world");
  MpiCollectives coll;
  explicit World(int64_t max_elems = MpiCollectives::kDefaultMaxMessageElems)
      : coll(comm, max_elems) {}
};

template <class T>
class CollectivesTyped : public ::testing::Test {};
using ElementTypes = ::testing::Types<float, double, int32_t>;
TYPED_TEST_SUITE(CollectivesTyped, ElementTypes);

// Runs body(World&) twice: with whole messages, and split into pieces of at most 3 elements.
template <class Body>
void for_each_piece_size(Body&& body) {
  for (int64_t max_elems : {MpiCollectives::kDefaultMaxMessageElems, int64_t{3}}) {
    SCOPED_TRACE(::testing::Message() << "max_message_elems = " << max_elems);
    World w(max_elems);
    body(w);
  }
}

TYPED_TEST(CollectivesTyped, AllReduceSumAndMax) {
  using T = TypeParam;
  for_each_piece_size([](World& w) {
    const int r = w.coll.rank(), p = w.coll.size();
    ASSERT_EQ(p, 4);
    std::vector<T> s(10), m(10);
    for (int i = 0; i < 10; ++i) {
      s[i] = static_cast<T>((r + 1) * (i + 1));
      m[i] = static_cast<T>(r - i);
    }
    w.coll.all_reduce(view(s), ReduceOp::sum);
    w.coll.all_reduce(view(m), ReduceOp::max);
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(s[i], static_cast<T>((i + 1) * p * (p + 1) / 2)) << i;  // Σ_r (r+1)(i+1)
      EXPECT_EQ(m[i], static_cast<T>(p - 1 - i)) << i;                  // max_r (r - i)
    }
  });
}

TYPED_TEST(CollectivesTyped, ReduceScatterSumsEachRanksChunk) {
  using T = TypeParam;
  for_each_piece_size([](World& w) {
    const int r = w.coll.rank(), p = w.coll.size(), c = 5;
    std::vector<T> full(p * c), out(c, T(-1));
    for (int j = 0; j < p * c; ++j) full[j] = static_cast<T>((r + 1) * (j + 1));
    w.coll.reduce_scatter(view(out), view(full));
    for (int k = 0; k < c; ++k)
      EXPECT_EQ(out[k], static_cast<T>((r * c + k + 1) * p * (p + 1) / 2)) << k;
  });
}

TYPED_TEST(CollectivesTyped, AllGatherOutOfPlaceAndInPlace) {
  using T = TypeParam;
  for_each_piece_size([](World& w) {
    const int r = w.coll.rank(), p = w.coll.size(), c = 5;
    std::vector<T> in(c), full(p * c, T(-1));
    for (int k = 0; k < c; ++k) in[k] = static_cast<T>(100 * r + k);
    w.coll.all_gather(view(full), view(in));
    for (int j = 0; j < p * c; ++j) EXPECT_EQ(full[j], static_cast<T>(100 * (j / c) + j % c));

    std::vector<T> again(p * c, T(-1));
    for (int k = 0; k < c; ++k) again[r * c + k] = static_cast<T>(7 * r + k);
    Tensor all = view(again);
    w.coll.all_gather(all, all.slice(r * c, Shape{c}));  // input is own chunk: in place
    for (int j = 0; j < p * c; ++j) EXPECT_EQ(again[j], static_cast<T>(7 * (j / c) + j % c));
  });
}

// Two gathers in flight at once (out of place, then in place), completed in posting order;
// nothing is read before wait().
TYPED_TEST(CollectivesTyped, IallGatherOutOfPlaceAndInPlaceOverlapping) {
  using T = TypeParam;
  for_each_piece_size([](World& w) {
    const int r = w.coll.rank(), p = w.coll.size(), c = 5;
    std::vector<T> in(c), full(p * c, T(-1)), again(p * c, T(-1));
    for (int k = 0; k < c; ++k) in[k] = static_cast<T>(100 * r + k);
    for (int k = 0; k < c; ++k) again[r * c + k] = static_cast<T>(7 * r + k);
    Tensor all = view(again);
    Request a = w.coll.iall_gather(view(full), view(in));
    Request b = w.coll.iall_gather(all, all.slice(r * c, Shape{c}));
    EXPECT_TRUE(a.pending());
    a.wait();
    b.wait();
    for (int j = 0; j < p * c; ++j) {
      EXPECT_EQ(full[j], static_cast<T>(100 * (j / c) + j % c)) << j;
      EXPECT_EQ(again[j], static_cast<T>(7 * (j / c) + j % c)) << j;
    }
  });
}

// The shard form: n = 4·c + tail; the tail (from the last rank) arrives inside wait().
TEST(Collectives, IallGatherShardWithATail) {
  World w;
  for (int64_t n : {int64_t{22}, int64_t{20}, int64_t{3}}) {
    SCOPED_TRACE(::testing::Message() << "n = " << n);
    const ShardRange s = ShardRange::of(n, w.coll.size(), w.coll.rank());
    std::vector<float> mine(size_t(s.size())), full(size_t(n), -1.f);
    for (int64_t i = 0; i < s.size(); ++i) mine[size_t(i)] = float(s.begin() + i) + 0.5f;
    auto be = make_host_backend();
    Request g = iall_gather_shard(*be, w.coll, s, view(full), view(mine, Shape{s.size()}));
    g.wait();
    for (int64_t j = 0; j < n; ++j) EXPECT_EQ(full[size_t(j)], float(j) + 0.5f) << j;
  }
}

TYPED_TEST(CollectivesTyped, BroadcastFromEveryRoot) {
  using T = TypeParam;
  for_each_piece_size([](World& w) {
    const int r = w.coll.rank(), p = w.coll.size();
    for (int root = 0; root < p; ++root) {
      std::vector<T> t(7, T(-1));
      if (r == root)
        for (int i = 0; i < 7; ++i) t[i] = static_cast<T>(10 * i + root);
      w.coll.broadcast(view(t), root);
      for (int i = 0; i < 7; ++i) EXPECT_EQ(t[i], static_cast<T>(10 * i + root));
    }
  });
}

TYPED_TEST(CollectivesTyped, BlockingSendRecvBetweenPairs) {
  using T = TypeParam;
  for_each_piece_size([](World& w) {
    const int r = w.coll.rank(), peer = r ^ 1;  // pairs (0,1), (2,3)
    std::vector<T> mine(8), theirs(8, T(-1));
    for (int i = 0; i < 8; ++i) mine[i] = static_cast<T>(r * 1000 + i);
    // Even ranks send first, odd ranks receive first: no deadlock without buffering.
    if (r % 2 == 0) {
      w.coll.send(view(mine), peer, /*tag=*/3);
      w.coll.recv(view(theirs), peer, /*tag=*/4);
    } else {
      w.coll.recv(view(theirs), peer, 3);
      w.coll.send(view(mine), peer, 4);
    }
    for (int i = 0; i < 8; ++i) EXPECT_EQ(theirs[i], static_cast<T>(peer * 1000 + i));
  });
}

TYPED_TEST(CollectivesTyped, NonBlockingRingBothDirections) {
  using T = TypeParam;
  for_each_piece_size([](World& w) {
    const int r = w.coll.rank(), p = w.coll.size();
    const int next = (r + 1) % p, prev = (r + p - 1) % p;
    std::vector<T> out(9), from_prev(9, T(-1)), from_next(9, T(-1));
    for (int i = 0; i < 9; ++i) out[i] = static_cast<T>(r * 1000 + i);
    {
      // Requests complete in their destructors at the end of this scope.
      Request a = w.coll.irecv(view(from_prev), prev, 1);
      Request b = w.coll.irecv(view(from_next), next, 2);
      Request c = w.coll.isend(view(out), next, 1);
      Request d = w.coll.isend(view(out), prev, 2);
      EXPECT_TRUE(a.pending() && b.pending() && c.pending() && d.pending());
      a.wait();
      EXPECT_FALSE(a.pending());
      a.wait();  // idempotent
      for (int i = 0; i < 9; ++i) EXPECT_EQ(from_prev[i], static_cast<T>(prev * 1000 + i));
    }
    for (int i = 0; i < 9; ++i) EXPECT_EQ(from_next[i], static_cast<T>(next * 1000 + i));
  });
}

TEST(Collectives, WaitAllAndMoveAssignmentCompleteEveryRequest) {
  World w;
  const int r = w.coll.rank(), p = w.coll.size();
  std::vector<std::vector<double>> got(p, std::vector<double>(3, -1.0));
  std::vector<double> mine = {r + 0.5, r + 1.5, r + 2.5};
  std::vector<Request> reqs;
  for (int q = 0; q < p; ++q) reqs.push_back(w.coll.irecv(view(got[q]), q, 9));
  for (int q = 0; q < p; ++q) reqs.push_back(w.coll.isend(view(mine), q, 9));
  Request moved = std::move(reqs.front());  // the moved-from request owns nothing
  EXPECT_FALSE(reqs.front().pending());
  moved = Request();                        // assignment waits for the replaced request
  EXPECT_EQ(got[0][2], 2.5);
  wait_all(reqs);
  for (int q = 0; q < p; ++q)
    for (int i = 0; i < 3; ++i) EXPECT_EQ(got[q][i], q + i + 0.5);
}

TEST(Collectives, ScalarReductionsAndGroupShape) {
  World w;
  const int r = w.coll.rank();
  EXPECT_EQ(w.coll.size(), 4);
  EXPECT_EQ(w.coll.device(), Device::host);
  EXPECT_EQ(w.coll.all_reduce_value<int32_t>(r), 0 + 1 + 2 + 3);
  EXPECT_EQ(w.coll.all_reduce_value<double>(r * 0.25, ReduceOp::max), 0.75);
  EXPECT_EQ(w.coll.all_reduce_value<float>(1.f), 4.f);
  w.coll.barrier();
}

TEST(Collectives, Bf16IsMovedBitExact) {
  World w;
  const int r = w.coll.rank();
  std::vector<uint16_t> words(6, 0);
  for (int i = 0; i < 6; ++i) words[i] = static_cast<uint16_t>(0x3F80 + 16 * r + i);
  Tensor t{words.data(), Shape{6}, DType::bf16, Device::host};
  std::vector<uint16_t> all(24, 0);
  w.coll.all_gather(Tensor{all.data(), Shape{24}, DType::bf16, Device::host}, t);
  for (int j = 0; j < 24; ++j) EXPECT_EQ(all[j], 0x3F80 + 16 * (j / 6) + j % 6);
  EXPECT_THROW(w.coll.all_reduce(t), InternalError);  // no host bf16 arithmetic
}

// ---- tensor/sequence-parallel pairs on tp=2 × dp=2 ----------------------------------------

Config tp2_dp2() {
  Config c;
  c.source_path = "tp2_dp2.toml";
  c.model.n_layer = 2;
  c.model.n_head = 2;
  c.model.n_kv_head = 2;
  c.model.d_model = 8;
  c.model.d_ff = 32;
  c.train.batch_size = 2;
  c.train.seq_len = 3;
  c.parallel.tp = 2;
  c.parallel.dp = 2;
  c.parallel.sequence_parallel = true;
  return c;
}

TEST(TopologyOn4, CoordinatesAndGroups) {
  Topology topo(tp2_dp2());
  const int r = topo.rank();
  EXPECT_EQ(topo.tp_rank(), r % 2);
  EXPECT_EQ(topo.dp_rank(), r / 2);
  EXPECT_EQ(topo.pp_rank(), 0);
  EXPECT_TRUE(topo.first_stage() && topo.last_stage());
  EXPECT_EQ(topo.tp().size(), 2);
  EXPECT_EQ(topo.dp().size(), 2);
  EXPECT_EQ(topo.pp().size(), 1);
  ASSERT_TRUE(topo.in_embedding_group());
  EXPECT_EQ(topo.embedding().size(), 1);  // pp = 1: the head sits beside the embedding
  EXPECT_EQ(topo.tp().all_reduce_value(r), 2 * (r - r % 2) + 1);  // {2k, 2k+1}
  EXPECT_EQ(topo.dp().all_reduce_value(r), 2 * (r % 2) + 2);      // {t, t+2}
}

TEST(TopologyOn4, InvalidLayoutThrowsTheSameErrorOnEveryRank) {
  Config c = tp2_dp2();
  c.parallel.pp = 2;  // 2 × 2 × 2 = 8 on 4 ranks
  try {
    Topology topo(c);
    ADD_FAILURE() << "no LayoutError";
  } catch (const LayoutError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tp2_dp2.toml: invalid parallel layout"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tp=2 × pp=2 × dp=2 = 8, but the job has 4 ranks"), std::string::npos)
        << msg;
  }
  Topology fine(tp2_dp2());  // the world is still usable afterwards
  EXPECT_EQ(fine.world().all_reduce_value(1), 4);
}

TEST(TopologyOn4, RanksGivenDifferentLayoutsFailTogether) {
  Config c = tp2_dp2();
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 3) c.model.n_layer = 4;  // valid alone, but not what the others have
  EXPECT_THROW(Topology topo(c), LayoutError);
}

// Values in closed form. N = B·T = 6 rows of width C = 3; tp rank t holds rows [3t, 3t+3).
TEST(TpComm, PairsByValue) {
  Topology topo(tp2_dp2());
  Collectives& tp = topo.tp();
  const int t = topo.tp_rank(), d = topo.dp_rank();
  const int64_t N = 6, C = 3, n = sp_chunk_rows(N, tp.size());
  ASSERT_EQ(n, 3);
  auto global = [&](int64_t row, int64_t c) { return double(row * 10 + c + 1000 * d); };

  // copy_to_tp: forward leaves x, backward sums dx over tp.
  std::vector<double> dx(4);
  for (int i = 0; i < 4; ++i) dx[i] = (t + 1) * (i + 1) + 100 * d;
  copy_to_tp::forward(tp, view(dx));
  EXPECT_EQ(dx[3], (t + 1) * 4 + 100 * d);
  copy_to_tp::backward(tp, view(dx));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(dx[i], 3 * (i + 1) + 200 * d);

  // reduce_from_tp: forward sums over tp, backward leaves the gradient.
  std::vector<double> y = {double(t), double(10 * t + d)};
  reduce_from_tp::forward(tp, view(y));
  EXPECT_EQ(y[0], 1.0);
  EXPECT_EQ(y[1], 10.0 + 2 * d);
  reduce_from_tp::backward(tp, view(y));
  EXPECT_EQ(y[1], 10.0 + 2 * d);

  // gather_from_sp forward: local rows → the full [B·T, C] tensor in row order.
  std::vector<double> local(n * C), full(N * C, -1.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < C; ++c) local[i * C + c] = global(t * n + i, c);
  gather_from_sp::forward(tp, view(full, Shape{N, C}), view(local, Shape{n, C}));
  for (int64_t row = 0; row < N; ++row)
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(full[row * C + c], global(row, c));

  // gather_from_sp backward = reduce_scatter_to_sp forward: own rows of Σ_tp dfull.
  std::vector<double> dfull(N * C), dlocal(n * C, -1.0), rs(n * C, -1.0);
  for (int64_t row = 0; row < N; ++row)
    for (int64_t c = 0; c < C; ++c) dfull[row * C + c] = (t + 1) * global(row, c);
  gather_from_sp::backward(tp, view(dlocal, Shape{n, C}), view(dfull, Shape{N, C}));
  reduce_scatter_to_sp::forward(tp, view(rs, Shape{n, C}), view(dfull, Shape{N, C}));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < C; ++c) {
      EXPECT_EQ(dlocal[i * C + c], 3 * global(t * n + i, c));
      EXPECT_EQ(rs[i * C + c], 3 * global(t * n + i, c));
    }

  // reduce_scatter_to_sp backward: all-gather of the local gradients.
  std::vector<double> back(N * C, -1.0);
  reduce_scatter_to_sp::backward(tp, view(back, Shape{N, C}), view(local, Shape{n, C}));
  EXPECT_EQ(back, full);

  // scatter_to_sp: forward is a view of own rows; backward gathers in place.
  Tensor own = scatter_to_sp::forward(tp, view(full, Shape{N, C}));
  EXPECT_EQ(own.data, full.data() + t * n * C);
  EXPECT_EQ(own.shape, (Shape{n, C}));
  std::vector<double> dgather(N * C, -1.0);
  for (int64_t i = 0; i < n * C; ++i) dgather[t * n * C + i] = global(t * n + i / C, i % C);
  Tensor dg = view(dgather, Shape{N, C});
  scatter_to_sp::backward(tp, dg, sp_chunk(dg, tp));
  EXPECT_EQ(dgather, full);
}

// Σ_ranks ⟨F(x), dy⟩ = Σ_ranks ⟨x, B(dy)⟩ on random data; a replicated value (same on
// every tp rank) is counted once, i.e. with weight 1/p in the sum over ranks.
TEST(TpComm, BackwardIsTheAdjointOfForward) {
  Topology topo(tp2_dp2());
  Collectives& tp = topo.tp();
  const int t = topo.tp_rank(), p = tp.size();
  const int64_t N = 6, C = 3, n = N / p;
  auto random = [&](const char* stream, int64_t count, bool replicated) {
    std::vector<double> v(count);
    const uint64_t key = rng_key(topo.dp_rank() * 7 + (replicated ? 0 : 1 + t), stream);
    for (int64_t i = 0; i < count; ++i) v[i] = rng_normal(key, i);
    return v;
  };
  auto dot = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  };
  auto total = [&](double local) { return tp.all_reduce_value(local); };
  const double rep = 1.0 / p;

  {  // copy_to_tp: x replicated → y = x (used per rank), dy per rank → dx replicated.
    auto x = random("x", N * C, true), dy = random("dy", N * C, false);
    auto dx = dy;
    copy_to_tp::backward(tp, view(dx));
    EXPECT_NEAR(total(dot(x, dy)), total(rep * dot(x, dx)), 1e-9);
  }
  {  // reduce_from_tp: x per rank → y replicated, dy replicated → dx = dy per rank.
    auto x = random("x", N * C, false), dy = random("dy", N * C, true);
    auto yv = x;
    reduce_from_tp::forward(tp, view(yv));
    EXPECT_NEAR(total(rep * dot(yv, dy)), total(dot(x, dy)), 1e-9);
  }
  {  // gather_from_sp: x sharded → y replicated (per-rank partial dy) → dx sharded.
    auto x = random("x", n * C, false), dy = random("dy", N * C, false);
    std::vector<double> yv(N * C), dx(n * C);
    gather_from_sp::forward(tp, view(yv, Shape{N, C}), view(x, Shape{n, C}));
    gather_from_sp::backward(tp, view(dx, Shape{n, C}), view(dy, Shape{N, C}));
    EXPECT_NEAR(total(dot(yv, dy)), total(dot(x, dx)), 1e-9);
  }
  {  // reduce_scatter_to_sp: x partial per rank → y sharded → dx replicated (whole dZ).
    auto x = random("x", N * C, false), dy = random("dy", n * C, false);
    std::vector<double> yv(n * C), dx(N * C);
    reduce_scatter_to_sp::forward(tp, view(yv, Shape{n, C}), view(x, Shape{N, C}));
    reduce_scatter_to_sp::backward(tp, view(dx, Shape{N, C}), view(dy, Shape{n, C}));
    EXPECT_NEAR(total(dot(yv, dy)), total(dot(x, dx)), 1e-9);
  }
  {  // scatter_to_sp: x replicated → y sharded view → dx replicated.
    auto x = random("x", N * C, true), dy = random("dy", n * C, false);
    Tensor yv = scatter_to_sp::forward(tp, view(x, Shape{N, C}));
    std::vector<double> ys(yv.ptr<double>(), yv.ptr<double>() + n * C), dx(N * C);
    scatter_to_sp::backward(tp, view(dx, Shape{N, C}), view(dy, Shape{n, C}));
    EXPECT_NEAR(total(dot(ys, dy)), total(rep * dot(x, dx)), 1e-9);
  }
}

}  // namespace
}  // namespace llmpi
