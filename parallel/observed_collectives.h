#pragma once
// ObservedCollectives: a Collectives that tells the observer in its slot (the hang watchdog's
// Progress, jobs/progress.h) about every operation of the group it wraps — the one place
// where collectives are observed, for MPI (Topology wraps its host groups) and NCCL
// (GroupCollectives wraps its device groups) alike:
//   every call and every Request::wait   enter(op, group, elements, bytes) … leave()
//   afterwards, when the inner group left device work behind (Collectives::completion()
//   not null)                            enqueued(call, completion): in flight until done
// So a rank whose host waits on a stream while an NCCL all_reduce waits for a dead peer is
// reported with that all_reduce, its group, size and step. Forwarding is all it does
// otherwise: results, errors and ordering are the inner group's.
#include <memory>
#include <string>

#include "parallel/collectives.h"

namespace llmpi {

class ObservedCollectives final : public Collectives {
 public:
  // `group` names the group in reports ("dp"); `slot` (not owned) must outlive this object.
  ObservedCollectives(std::unique_ptr<Collectives> inner, std::string group,
                      const ObserverSlot& slot);

  Collectives& inner() { return *inner_; }
  const std::string& group() const { return group_; }

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  Device device() const override { return inner_->device(); }

  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum) override;
  void reduce_scatter(const Tensor& out, const Tensor& full) override;
  void all_gather(const Tensor& full, const Tensor& in) override;
  void broadcast(const Tensor& t, int root) override;
  void send(const Tensor& t, int dst, int tag = 0) override;
  void recv(const Tensor& t, int src, int tag = 0) override;
  [[nodiscard]] Request isend(const Tensor& t, int dst, int tag = 0) override;
  [[nodiscard]] Request irecv(const Tensor& t, int src, int tag = 0) override;
  void barrier() override;
  [[nodiscard]] Request iall_reduce(const Tensor& t) override;
  [[nodiscard]] Request ireduce(const Tensor& t, int root) override;
  [[nodiscard]] Request iall_gather(const Tensor& full, const Tensor& in) override;
  std::shared_ptr<Completion> completion() override { return inner_->completion(); }

 private:
  // Runs f() between enter and leave, then reports device work it left behind.
  template <class F>
  auto observe(const CollectiveCall& call, F&& f);
  Request observed_request(const char* wait_op, const Tensor& t, Request inner);

  std::unique_ptr<Collectives> inner_;
  std::string group_;
  const ObserverSlot& slot_;
};

}  // namespace llmpi
