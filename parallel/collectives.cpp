#include "parallel/collectives.h"

namespace llmpi {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return "sum";
    case ReduceOp::max: return "max";
  }
  return "?";
}

void wait_all(std::span<Request> requests) {
  for (Request& r : requests) r.wait();
}

}  // namespace llmpi
