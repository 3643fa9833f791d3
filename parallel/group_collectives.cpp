// GroupCollectives: the topology's MPI groups, or NCCL groups over them for device tensors.
#include "parallel/group_collectives.h"

#include "core/error.h"
#include "parallel/observed_collectives.h"
#include "parallel/staged_p2p.h"
#if defined(LLMPI_HAVE_CUDA)
#include "parallel/nccl_collectives.h"
#endif

namespace llmpi {

namespace {

#if defined(LLMPI_HAVE_CUDA)
// Observed like the topology's host groups: the watchdog names an NCCL collective that
// never finishes (parallel/observed_collectives.h).
std::unique_ptr<Collectives> nccl_group(const Communicator& c, Backend& be,
                                        const ObserverSlot& slot) {
  // A peer that died or diverged ends the job after this long instead of hanging it.
  NcclOptions o;
  o.hang_timeout_s = 600;
  return std::make_unique<ObservedCollectives>(
      std::make_unique<NcclCollectives>(c, static_cast<cudaStream_t>(be.native_stream()), o),
      c.name(), slot);
}
#endif

}  // namespace

GroupCollectives::GroupCollectives(Topology& topo, Backend& be)
    : topo_(topo), device_(be.device()) {
  if (device_ == Device::host) {
    tp_ = std::make_unique<TimedCollectives>(topo.tp(), clock_);
    dp_ = std::make_unique<TimedCollectives>(topo.dp(), clock_);
    pp_ = std::make_unique<TimedCollectives>(topo.pp(), clock_);
    if (topo.in_embedding_group()) embedding_ = std::make_unique<TimedCollectives>(topo.embedding(), clock_);
    return;
  }
#if defined(LLMPI_HAVE_CUDA)
  LLMPI_CHECK(be.native_stream() != nullptr, "the ", be.name(), " backend has no stream");
  tp_ = nccl_group(topo.communicator(Axis::tp), be, topo.observer_slot());
  dp_ = nccl_group(topo.communicator(Axis::dp), be, topo.observer_slot());
  pp_nccl_ = nccl_group(topo.communicator(Axis::pp), be, topo.observer_slot());
  // Pipeline messages go through host memory over MPI (tags; see staged_p2p.h).
  pp_ = std::make_unique<StagedP2p>(*pp_nccl_, topo.pp(), be);
  if (topo.in_embedding_group())
    embedding_ = nccl_group(topo.embedding_communicator(), be, topo.observer_slot());
#else
  throw UserError(std::string("the ") + be.name() +
                  " backend needs device collectives, which this build lacks (CUDA builds "
                  "link NCCL)");
#endif
}

GroupCollectives::~GroupCollectives() = default;

Collectives& GroupCollectives::embedding() {
  LLMPI_CHECK(embedding_, "rank ", topo_.rank(), " (pipeline stage ", topo_.pp_rank(),
              ") is not in an embedding group: only the first and last stages are");
  return *embedding_;
}

}  // namespace llmpi
