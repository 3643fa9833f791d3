// StagedP2p: device collectives, point-to-point through host memory over MPI.
#include "parallel/staged_p2p.h"

#include <cstddef>
#include <vector>

#include "core/error.h"

namespace llmpi {

namespace {

// A message in flight: its host buffer, the MPI request, and (receives) where it goes.
struct StagedRequest final : Request::Impl {
  std::vector<std::byte> host;
  Request mpi;
  Tensor device_dst;  // empty for sends
  Backend* be = nullptr;

  void wait() override {
    mpi.wait();
    if (!device_dst.empty()) {
      be->copy(device_dst, Tensor{host.data(), device_dst.shape, device_dst.dtype, Device::host});
      be->synchronize();
    }
  }
};

Tensor host_view(std::vector<std::byte>& buf, const Tensor& like) {
  buf.resize(like.bytes());
  return Tensor{buf.data(), like.shape, like.dtype, Device::host};
}

}  // namespace

StagedP2p::StagedP2p(Collectives& device, Collectives& host, Backend& be)
    : device_(device), host_(host), be_(be) {
  LLMPI_CHECK(device.size() == host.size() && device.rank() == host.rank(),
              "staged p2p: device group rank ", device.rank(), "/", device.size(),
              " vs host group ", host.rank(), "/", host.size());
}

Request StagedP2p::isend(const Tensor& t, int dst, int tag) {
  auto r = std::make_unique<StagedRequest>();
  const Tensor h = host_view(r->host, t);
  be_.copy(h, t);
  be_.synchronize();  // the host buffer is complete before MPI reads it
  r->mpi = host_.isend(h, dst, tag);
  return Request(std::move(r));
}

Request StagedP2p::irecv(const Tensor& t, int src, int tag) {
  auto r = std::make_unique<StagedRequest>();
  const Tensor h = host_view(r->host, t);
  r->mpi = host_.irecv(h, src, tag);
  r->device_dst = t;
  r->be = &be_;
  return Request(std::move(r));
}

}  // namespace llmpi
