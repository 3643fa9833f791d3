#include "parallel/mpi_collectives.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/runtime.h"

namespace llmpi {

namespace {

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
    case DType::u8: return MPI_UINT8_T;
    case DType::bf16: return MPI_UINT16_T;  // moved as raw 16-bit words; never reduced
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::sum ? MPI_SUM : MPI_MAX; }

char* bytes(const Tensor& t) { return static_cast<char*>(t.data); }

// Byte offset of element `e` of t.
size_t at(const Tensor& t, int64_t e) { return static_cast<size_t>(e) * dtype_size(t.dtype); }

bool overlap(const Tensor& a, const Tensor& b) {
  const char *a0 = bytes(a), *b0 = bytes(b);
  return a0 < b0 + b.bytes() && b0 < a0 + a.bytes();
}

void check_host(const Tensor& t, const char* op) {
  LLMPI_CHECK(t.device == Device::host, op, ": MpiCollectives takes host tensors");
  LLMPI_CHECK(t.data != nullptr || t.numel() == 0, op, ": null tensor of shape ", t.shape.str());
}

void check_reducible(const Tensor& t, const char* op) {
  LLMPI_CHECK(t.dtype != DType::bf16, op, ": bf16 reductions are not supported on host");
}

// The all_gather contract (collectives.h); true when `in` is this rank's chunk of `full`.
bool check_gather(const Tensor& full, const Tensor& in, int rank, int size, const char* op) {
  check_host(full, op);
  check_host(in, op);
  LLMPI_CHECK(in.dtype == full.dtype, op, ": dtypes differ");
  LLMPI_CHECK(full.numel() == size * in.numel(), op, ": full ", full.shape.str(), " is not ",
              size, " chunks of ", in.shape.str());
  const bool in_place = in.data == bytes(full) + at(full, rank * in.numel());
  LLMPI_CHECK(in_place || !overlap(in, full), op,
              ": input overlaps the output but is not this rank's chunk");
  return in_place;
}

// Calls f(offset, count) over [0, n) in pieces of at most `max` elements.
template <class F>
void in_pieces(int64_t n, int64_t max, F&& f) {
  for (int64_t off = 0; off < n; off += max) f(off, static_cast<int>(std::min(max, n - off)));
}

// MPI_ERR_IN_STATUS → the error of the failed request.
int status_error(int rc, const std::vector<MPI_Status>& st) {
  if (rc == MPI_ERR_IN_STATUS)
    for (const MPI_Status& s : st)
      if (s.MPI_ERROR != MPI_SUCCESS && s.MPI_ERROR != MPI_ERR_PENDING) rc = s.MPI_ERROR;
  return rc;
}

// One non-blocking operation: the MPI requests of its pieces, and for a receive the count
// each piece must deliver.
struct MpiRequest final : Request::Impl {
  const Communicator* comm = nullptr;
  std::string what;                   // "MPI_Irecv from rank 3 (tag 0)"
  MPI_Datatype type = MPI_DATATYPE_NULL;
  std::vector<MPI_Request> handles;
  std::vector<int> expected;          // receive only: elements per piece

  void wait() override {
    std::vector<MPI_Status> st(handles.size());
    int rc = MPI_Waitall(static_cast<int>(handles.size()), handles.data(), st.data());
    check_mpi(status_error(rc, st), what, comm);
    check_counts(st);
  }

  bool test() override {
    int done = 0;
    std::vector<MPI_Status> st(handles.size());
    int rc = MPI_Testall(static_cast<int>(handles.size()), handles.data(), &done, st.data());
    check_mpi(status_error(rc, st), what, comm);
    if (done) {
      check_counts(st);
      handles.clear();  // all MPI_REQUEST_NULL now; a later wait() returns at once
      expected.clear();
    }
    return done != 0;
  }

  void check_counts(std::vector<MPI_Status>& st) const {
    for (size_t i = 0; i < expected.size(); ++i) {
      int got = 0;
      check_mpi(MPI_Get_count(&st[i], type, &got), "MPI_Get_count", comm);
      if (got != expected[i])
        abort_job(detail::concat(what, " on communicator '", comm->name(), "': expected ",
                                 expected[i], " elements, received ", got)
                      .c_str());
    }
  }
};

}  // namespace

MpiCollectives::MpiCollectives(const Communicator& comm, int64_t max_message_elems)
    : comm_(comm), max_count_(max_message_elems) {
  LLMPI_CHECK(comm.valid(), "MpiCollectives over a null communicator '", comm.name(), "'");
  LLMPI_CHECK(max_message_elems >= 1 && max_message_elems <= (int64_t{1} << 30),
              "max_message_elems = ", max_message_elems);
}

void MpiCollectives::all_reduce(const Tensor& t, ReduceOp op) {
  check_host(t, "all_reduce");
  check_reducible(t, "all_reduce");
  in_pieces(t.numel(), max_count_, [&](int64_t off, int n) {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, bytes(t) + at(t, off), n, mpi_type(t.dtype),
                            mpi_op(op), comm_.get()),
              "MPI_Allreduce", &comm_);
  });
}

void MpiCollectives::reduce_scatter(const Tensor& out, const Tensor& full) {
  check_host(out, "reduce_scatter");
  check_host(full, "reduce_scatter");
  check_reducible(full, "reduce_scatter");
  LLMPI_CHECK(out.dtype == full.dtype, "reduce_scatter: dtypes differ");
  LLMPI_CHECK(full.numel() == size() * out.numel(), "reduce_scatter: full ", full.shape.str(),
              " is not ", size(), " chunks of ", out.shape.str());
  LLMPI_CHECK(!overlap(out, full), "reduce_scatter: out overlaps full");
  const int64_t count = out.numel();
  const MPI_Datatype type = mpi_type(out.dtype);
  if (count <= max_count_) {
    check_mpi(MPI_Reduce_scatter_block(full.data, out.data, static_cast<int>(count), type,
                                       MPI_SUM, comm_.get()),
              "MPI_Reduce_scatter_block", &comm_);
    return;
  }
  // Chunks too long for one call: reduce each piece of chunk r onto rank r.
  in_pieces(count, max_count_, [&](int64_t off, int n) {
    for (int r = 0; r < size(); ++r) {
      const char* src = bytes(full) + at(full, r * count + off);
      check_mpi(MPI_Reduce(src, r == rank() ? bytes(out) + at(out, off) : nullptr, n, type,
                           MPI_SUM, r, comm_.get()),
                "MPI_Reduce", &comm_);
    }
  });
}

void MpiCollectives::all_gather(const Tensor& full, const Tensor& in) {
  const bool in_place = check_gather(full, in, rank(), size(), "all_gather");
  const int64_t count = in.numel();
  char* mine = bytes(full) + at(full, rank() * count);
  const MPI_Datatype type = mpi_type(in.dtype);
  if (count <= max_count_) {
    const int n = static_cast<int>(count);
    check_mpi(in_place ? MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full.data, n, type,
                                       comm_.get())
                       : MPI_Allgather(in.data, n, type, full.data, n, type, comm_.get()),
              "MPI_Allgather", &comm_);
    return;
  }
  // Chunks too long for one call: every rank broadcasts its chunk piece by piece.
  if (!in_place) std::memcpy(mine, in.data, in.bytes());
  in_pieces(count, max_count_, [&](int64_t off, int n) {
    for (int r = 0; r < size(); ++r)
      check_mpi(MPI_Bcast(bytes(full) + at(full, r * count + off), n, type, r, comm_.get()),
                "MPI_Bcast", &comm_);
  });
}

void MpiCollectives::broadcast(const Tensor& t, int root) {
  check_host(t, "broadcast");
  LLMPI_CHECK(root >= 0 && root < size(), "broadcast: root ", root, " of ", size());
  in_pieces(t.numel(), max_count_, [&](int64_t off, int n) {
    check_mpi(MPI_Bcast(bytes(t) + at(t, off), n, mpi_type(t.dtype), root, comm_.get()),
              "MPI_Bcast", &comm_);
  });
}

void MpiCollectives::send(const Tensor& t, int dst, int tag) {
  check_host(t, "send");
  LLMPI_CHECK(dst >= 0 && dst < size() && tag >= 0, "send to ", dst, " of ", size(), " tag ", tag);
  in_pieces(t.numel(), max_count_, [&](int64_t off, int n) {
    check_mpi(MPI_Send(bytes(t) + at(t, off), n, mpi_type(t.dtype), dst, tag, comm_.get()),
              detail::concat("MPI_Send to rank ", dst, " (tag ", tag, ")"), &comm_);
  });
}

void MpiCollectives::recv(const Tensor& t, int src, int tag) {
  check_host(t, "recv");
  LLMPI_CHECK(src >= 0 && src < size() && tag >= 0, "recv from ", src, " of ", size(), " tag ",
              tag);
  const MPI_Datatype type = mpi_type(t.dtype);
  in_pieces(t.numel(), max_count_, [&](int64_t off, int n) {
    const std::string what = detail::concat("MPI_Recv from rank ", src, " (tag ", tag, ")");
    MPI_Status st;
    check_mpi(MPI_Recv(bytes(t) + at(t, off), n, type, src, tag, comm_.get(), &st), what, &comm_);
    int got = 0;
    check_mpi(MPI_Get_count(&st, type, &got), "MPI_Get_count", &comm_);
    if (got != n)
      abort_job(detail::concat(what, " on communicator '", comm_.name(), "': expected ", n,
                               " elements, received ", got)
                    .c_str());
  });
}

Request MpiCollectives::isend(const Tensor& t, int dst, int tag) {
  check_host(t, "isend");
  LLMPI_CHECK(dst >= 0 && dst < size() && tag >= 0, "isend to ", dst, " of ", size(), " tag ",
              tag);
  auto req = std::make_unique<MpiRequest>();
  req->comm = &comm_;
  req->type = mpi_type(t.dtype);
  req->what = detail::concat("MPI_Isend to rank ", dst, " (tag ", tag, ")");
  in_pieces(t.numel(), max_count_, [&](int64_t off, int n) {
    MPI_Request h = MPI_REQUEST_NULL;
    check_mpi(MPI_Isend(bytes(t) + at(t, off), n, req->type, dst, tag, comm_.get(), &h),
              req->what, &comm_);
    req->handles.push_back(h);
  });
  return Request(std::move(req));
}

Request MpiCollectives::irecv(const Tensor& t, int src, int tag) {
  check_host(t, "irecv");
  LLMPI_CHECK(src >= 0 && src < size() && tag >= 0, "irecv from ", src, " of ", size(), " tag ",
              tag);
  auto req = std::make_unique<MpiRequest>();
  req->comm = &comm_;
  req->type = mpi_type(t.dtype);
  req->what = detail::concat("MPI_Irecv from rank ", src, " (tag ", tag, ")");
  in_pieces(t.numel(), max_count_, [&](int64_t off, int n) {
    MPI_Request h = MPI_REQUEST_NULL;
    check_mpi(MPI_Irecv(bytes(t) + at(t, off), n, req->type, src, tag, comm_.get(), &h),
              req->what, &comm_);
    req->handles.push_back(h);
    req->expected.push_back(n);
  });
  return Request(std::move(req));
}

Request MpiCollectives::iall_reduce(const Tensor& t) {
  check_host(t, "iall_reduce");
  check_reducible(t, "iall_reduce");
  auto req = std::make_unique<MpiRequest>();
  req->comm = &comm_;
  req->type = mpi_type(t.dtype);
  req->what = "MPI_Iallreduce";
  in_pieces(t.numel(), max_count_, [&](int64_t off, int n) {
    MPI_Request h = MPI_REQUEST_NULL;
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, bytes(t) + at(t, off), n, req->type, MPI_SUM, comm_.get(), &h),
              req->what, &comm_);
    req->handles.push_back(h);
  });
  return Request(std::move(req));
}

Request MpiCollectives::ireduce(const Tensor& t, int root) {
  check_host(t, "ireduce");
  check_reducible(t, "ireduce");
  LLMPI_CHECK(root >= 0 && root < size(), "ireduce: root ", root, " of ", size());
  auto req = std::make_unique<MpiRequest>();
  req->comm = &comm_;
  req->type = mpi_type(t.dtype);
  req->what = detail::concat("MPI_Ireduce to rank ", root);
  const bool mine = root == rank();
  in_pieces(t.numel(), max_count_, [&](int64_t off, int n) {
    MPI_Request h = MPI_REQUEST_NULL;
    char* p = bytes(t) + at(t, off);
    check_mpi(MPI_Ireduce(mine ? MPI_IN_PLACE : p, mine ? p : nullptr, n, req->type, MPI_SUM, root,
                          comm_.get(), &h),
              req->what, &comm_);
    req->handles.push_back(h);
  });
  return Request(std::move(req));
}

Request MpiCollectives::iall_gather(const Tensor& full, const Tensor& in) {
  const bool in_place = check_gather(full, in, rank(), size(), "iall_gather");
  const int64_t count = in.numel();
  char* mine = bytes(full) + at(full, rank() * count);
  auto req = std::make_unique<MpiRequest>();
  req->comm = &comm_;
  req->type = mpi_type(in.dtype);
  MPI_Request h = MPI_REQUEST_NULL;
  if (count <= max_count_) {
    req->what = "MPI_Iallgather";
    const int n = static_cast<int>(count);
    check_mpi(in_place ? MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full.data, n,
                                        req->type, comm_.get(), &h)
                       : MPI_Iallgather(in.data, n, req->type, full.data, n, req->type,
                                        comm_.get(), &h),
              req->what, &comm_);
    req->handles.push_back(h);
    return Request(std::move(req));
  }
  // Chunks too long for one call: every rank broadcasts its chunk piece by piece (as
  // all_gather does), each piece one MPI_Ibcast.
  req->what = "MPI_Ibcast (iall_gather)";
  if (!in_place) std::memcpy(mine, in.data, in.bytes());
  in_pieces(count, max_count_, [&](int64_t off, int n) {
    for (int r = 0; r < size(); ++r) {
      check_mpi(MPI_Ibcast(bytes(full) + at(full, r * count + off), n, req->type, r,
                           comm_.get(), &h),
                req->what, &comm_);
      req->handles.push_back(h);
    }
  });
  return Request(std::move(req));
}

void MpiCollectives::barrier() {
  check_mpi(MPI_Barrier(comm_.get()), "MPI_Barrier", &comm_);
}

}  // namespace llmpi
