// ObservedCollectives: every operation between enter and leave, device work reported as
// enqueued (see the header).
#include "parallel/observed_collectives.h"

#include <utility>

namespace llmpi {

namespace {

CollectiveCall call_of(const char* op, const std::string& group, const Tensor& t) {
  return {op, group.c_str(), t.numel(), int64_t(t.bytes())};
}

// A Request whose wait is observed like a blocking call (and reports the device work it
// enqueues, e.g. NCCL's compute stream waiting for a point-to-point group).
struct ObservedRequest final : Request::Impl {
  Request inner;
  ObservedCollectives* owner = nullptr;
  const ObserverSlot* slot = nullptr;
  CollectiveCall call;

  void wait() override {
    CollectiveObserver* o = slot->load();
    {
      const ObservedCollective watch(o, call);
      inner.wait();
    }
    if (o)
      if (auto c = owner->completion()) o->enqueued(call, std::move(c));
  }
  bool test() override { return inner.test(); }
};

}  // namespace

ObservedCollectives::ObservedCollectives(std::unique_ptr<Collectives> inner, std::string group,
                                         const ObserverSlot& slot)
    : inner_(std::move(inner)), group_(std::move(group)), slot_(slot) {}

template <class F>
auto ObservedCollectives::observe(const CollectiveCall& call, F&& f) {
  CollectiveObserver* o = slot_.load();
  struct Report {  // after leave(), also when f returns a Request
    CollectiveObserver* o;
    Collectives& inner;
    const CollectiveCall& call;
    ~Report() {
      if (o)
        if (auto c = inner.completion()) o->enqueued(call, std::move(c));
    }
  } report{o, *inner_, call};
  const ObservedCollective watch(o, call);
  return f();
}

void ObservedCollectives::all_reduce(const Tensor& t, ReduceOp op) {
  observe(call_of("all_reduce", group_, t), [&] { inner_->all_reduce(t, op); });
}

void ObservedCollectives::reduce_scatter(const Tensor& out, const Tensor& full) {
  observe(call_of("reduce_scatter", group_, full), [&] { inner_->reduce_scatter(out, full); });
}

void ObservedCollectives::all_gather(const Tensor& full, const Tensor& in) {
  observe(call_of("all_gather", group_, full), [&] { inner_->all_gather(full, in); });
}

void ObservedCollectives::broadcast(const Tensor& t, int root) {
  observe(call_of("broadcast", group_, t), [&] { inner_->broadcast(t, root); });
}

void ObservedCollectives::send(const Tensor& t, int dst, int tag) {
  observe(call_of("send", group_, t), [&] { inner_->send(t, dst, tag); });
}

void ObservedCollectives::recv(const Tensor& t, int src, int tag) {
  observe(call_of("recv", group_, t), [&] { inner_->recv(t, src, tag); });
}

void ObservedCollectives::barrier() {
  observe(CollectiveCall{"barrier", group_.c_str(), 0, 0}, [&] { inner_->barrier(); });
}

Request ObservedCollectives::observed_request(const char* wait_op, const Tensor& t,
                                              Request inner) {
  if (!inner.pending()) return inner;
  auto r = std::make_unique<ObservedRequest>();
  r->inner = std::move(inner);
  r->owner = this;
  r->slot = &slot_;
  r->call = call_of(wait_op, group_, t);
  return Request(std::move(r));
}

Request ObservedCollectives::isend(const Tensor& t, int dst, int tag) {
  return observed_request("wait (isend)", t, inner_->isend(t, dst, tag));
}

Request ObservedCollectives::irecv(const Tensor& t, int src, int tag) {
  return observed_request("wait (irecv)", t, inner_->irecv(t, src, tag));
}

Request ObservedCollectives::iall_reduce(const Tensor& t) {
  Request r = observe(call_of("iall_reduce", group_, t), [&] { return inner_->iall_reduce(t); });
  return observed_request("wait (iall_reduce)", t, std::move(r));
}

Request ObservedCollectives::ireduce(const Tensor& t, int root) {
  Request r = observe(call_of("ireduce", group_, t), [&] { return inner_->ireduce(t, root); });
  return observed_request("wait (ireduce)", t, std::move(r));
}

Request ObservedCollectives::iall_gather(const Tensor& full, const Tensor& in) {
  Request r = observe(call_of("iall_gather", group_, full),
                      [&] { return inner_->iall_gather(full, in); });
  return observed_request("wait (iall_gather)", full, std::move(r));
}

}  // namespace llmpi
