#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the cpu preset and runs every test
# with ctest (unit tests, multi-rank tests under mpiexec, end-to-end CLI tests). Where the
# CUDA toolkit is installed, it also builds the cuda preset — all CUDA code compiles — and
# runs the CUDA tests, which on a machine without a GPU say "no GPU" and are reported by
# ctest as not run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh cpu
# One BLAS thread per process: multi-rank tests run oversubscribed on small machines.
export OPENBLAS_NUM_THREADS=1
jobs="${LLMPI_TEST_JOBS:-$(nproc)}"
ctest --preset cpu -j "$jobs" --timeout 900

nvcc=/usr/local/cuda/bin/nvcc
if [ -x "$nvcc" ] && [ "${LLMPI_SKIP_CUDA:-0}" != 1 ]; then
  echo "test: CUDA toolkit found ($("$nvcc" --version | tail -1)); building the cuda preset"
  cmake --preset cuda >/dev/null
  cmake --build --preset cuda -j "${LLMPI_BUILD_JOBS:-$(nproc)}" --target llmpi llmpi_cuda_tests
  # The multi-GPU tests: tests/cuda_mpi/<name>.<ranks>.cpp → target cuda_mpi_<name>_<ranks>.
  for src in tests/cuda_mpi/*.*.cpp; do
    [ -e "$src" ] || continue
    base=$(basename "$src" .cpp)
    cmake --build --preset cuda -j "${LLMPI_BUILD_JOBS:-$(nproc)}" --target "cuda_mpi_${base%.*}_${base##*.}"
  done
  ctest --preset cuda -L cuda --timeout 900
else
  echo "test: no CUDA toolkit at $nvcc; the cuda preset was not built"
fi
