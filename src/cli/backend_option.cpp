// --backend host|cuda: the backend factory behind the option (see backend_option.h).
#include "cli/backend_option.h"

#include <mpi.h>

#include "core/error.h"
#if defined(LLMPI_HAVE_CUDA)
#include "backend/cuda/cuda_backend.h"
#endif

namespace llmpi {

#if defined(LLMPI_HAVE_CUDA)
namespace {

// This process's rank among the ranks of its node.
int node_local_rank() {
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int r = 0;
  MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  return r;
}

}  // namespace
#endif

Opt add_backend_option(CLI::App& app, std::string& name) {
  return add_value(app, "--backend", name, "NAME",
                   "host (default) or cuda (needs a CUDA build and a GPU)");
}

std::unique_ptr<Backend> make_backend_option(const std::string& name, const std::string& command) {
  if (name == "host") return make_host_backend();
  if (name != "cuda")
    user_error(command, ": --backend: expected host or cuda, got '", name, "'");
#if defined(LLMPI_HAVE_CUDA)
  const int gpus = cuda_device_count();
  if (gpus == 0) user_error(command, ": --backend cuda: no usable GPU on this machine");
  CudaBackendOptions o = CudaBackendOptions::from_env();
  o.device = node_local_rank() % gpus;
  return make_cuda_backend(o);
#else
  user_error(command, ": --backend cuda: this llmpi was built without CUDA "
             "(configure with -DLLMPI_ENABLE_CUDA=ON, or use --backend host)");
#endif
}

}  // namespace llmpi
