#include "backend/backend.h"

namespace llmpi {

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    if (be_ && t_.data) be_->raw_free(t_.data);
    be_ = o.be_;
    t_ = o.t_;
    o.be_ = nullptr;
    o.t_ = {};
  }
  return *this;
}

Buffer::~Buffer() {
  if (be_ && t_.data) be_->raw_free(t_.data);
}

Buffer Backend::alloc(Shape s, DType t) {
  Tensor x;
  x.shape = s;
  x.dtype = t;
  x.device = device();
  const size_t bytes = x.bytes();
  x.data = bytes ? raw_alloc(bytes) : nullptr;
  return Buffer(this, x);
}

}  // namespace llmpi
