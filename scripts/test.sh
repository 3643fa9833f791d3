#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds llmpi and every test once, and runs
# them all with ctest (unit tests, multi-rank tests under mpiexec, end-to-end CLI tests, the
# Slurm cluster tests). Where the CUDA toolkit is installed the one build is the cuda preset
# (host + CUDA backends: all CUDA code compiles, and the CPU tests run against the same
# binaries; the CUDA tests say "no GPU" on a machine without one and ctest reports them as not
# run); elsewhere it is the cpu preset. LLMPI_SKIP_CUDA=1 forces the cpu preset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build_jobs="${LLMPI_BUILD_JOBS:-$(nproc)}"

preset=cpu
nvcc=/usr/local/cuda/bin/nvcc
if [ -x "$nvcc" ] && [ "${LLMPI_SKIP_CUDA:-0}" != 1 ]; then
  preset=cuda
  echo "test: CUDA toolkit found ($("$nvcc" --version | tail -1)); building the cuda preset"
else
  echo "test: no CUDA toolkit at $nvcc (or LLMPI_SKIP_CUDA=1); building the cpu preset"
fi

# The JavaScript reference tokenizers that the tokenizer tests compare against (pinned in
# tests/js/package-lock.json; the npm registry is reachable from CI).
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)

SECONDS=0
bash scripts/build.sh "$preset"
echo "test: built build/$preset in ${SECONDS} s"
# One BLAS thread per process: multi-rank tests run oversubscribed on small machines.
export OPENBLAS_NUM_THREADS=1
ctest --preset "$preset" -j "${LLMPI_TEST_JOBS:-$(nproc)}" --timeout 900
