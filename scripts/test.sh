#!/usr/bin/env bash
# The whole test suite: installs what is missing; where the CUDA toolkit is installed, builds
# the cuda preset (all CUDA code compiles) and runs the CUDA tests, which on a machine without
# a GPU say "no GPU" and are reported by ctest as not run; then builds the cpu preset and runs
# every CPU test with ctest (unit tests, multi-rank tests under mpiexec, end-to-end CLI
# tests). The CPU suite runs last, so its summary ends the output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build_jobs="${LLMPI_BUILD_JOBS:-$(nproc)}"

nvcc=/usr/local/cuda/bin/nvcc
if [ -x "$nvcc" ] && [ "${LLMPI_SKIP_CUDA:-0}" != 1 ]; then
  echo "test: CUDA toolkit found ($("$nvcc" --version | tail -1)); building the cuda preset"
  cmake --preset cuda >/dev/null
  cmake --build --preset cuda -j "$build_jobs" --target llmpi llmpi_cuda_tests
  # The multi-GPU tests: tests/cuda_mpi/<name>.<ranks>.cpp → target cuda_mpi_<name>_<ranks>.
  for src in tests/cuda_mpi/*.*.cpp; do
    [ -e "$src" ] || continue
    base=$(basename "$src" .cpp)
    cmake --build --preset cuda -j "$build_jobs" --target "cuda_mpi_${base%.*}_${base##*.}"
  done
  ctest --preset cuda -L cuda --timeout 900
else
  echo "test: no CUDA toolkit at $nvcc; the cuda preset was not built"
fi

# The JavaScript reference tokenizers that the tokenizer tests compare against (pinned in
# tests/js/package-lock.json; the npm registry is reachable from CI).
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)

bash scripts/build.sh cpu
# One BLAS thread per process: multi-rank tests run oversubscribed on small machines.
export OPENBLAS_NUM_THREADS=1
ctest --preset cpu -j "${LLMPI_TEST_JOBS:-$(nproc)}" --timeout 900
