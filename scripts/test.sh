#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the cpu preset (host backend, and
# the CUDA backend's compile when nvcc is present), and runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh cpu
# One BLAS thread per process: multi-rank tests run oversubscribed on small machines.
export OPENBLAS_NUM_THREADS=1
ctest --preset cpu -j "${LLMPI_TEST_JOBS:-$(nproc)}" --timeout 900
