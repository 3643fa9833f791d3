// --backend host|cuda: the backend factory behind the option (see backend_option.h).
#include "cli/backend_option.h"

#include "core/error.h"
#if defined(LLMPI_HAVE_CUDA)
#include "backend/cuda/cuda_backend.h"
#endif

namespace llmpi {

std::unique_ptr<Backend> make_backend_option(const std::string& name, const std::string& command,
                                             int world_rank) {
  if (name == "host") return make_host_backend();
  if (name != "cuda")
    user_error(command, ": --backend: expected host or cuda, got '", name, "'");
#if defined(LLMPI_HAVE_CUDA)
  const int gpus = cuda_device_count();
  if (gpus == 0) user_error(command, ": --backend cuda: no usable GPU on this machine");
  CudaBackendOptions o = CudaBackendOptions::from_env();
  o.device = world_rank % gpus;
  return make_cuda_backend(o);
#else
  (void)world_rank;
  user_error(command, ": --backend cuda: this llmpi was built without CUDA "
             "(configure with -DLLMPI_ENABLE_CUDA=ON, or use --backend host)");
#endif
}

}  // namespace llmpi
