# CUDA backend (LLMPI_ENABLE_CUDA=ON). Included by the top-level CMakeLists.txt after the
# target llmpi_core exists. The sources under src/backend/cuda/ (kernels in .cu, host code in
# .cpp) form the object library llmpi_cuda, whose objects go into llmpi_core itself, so every
# consumer of llmpi_core gets the CUDA backend with no extra link line. llmpi_cuda keeps its
# own compile flags (nvcc does not take llmpi_core's -Wall/-Wextra directly).
# Runtime libraries: CUDA runtime (static), cuBLASLt, cuDNN 9, NCCL (shared; the GPU machine
# has its own). NCCL serves parallel/nccl_collectives.cpp, which is globbed into llmpi_core in
# every build but compiles to nothing unless LLMPI_HAVE_CUDA is defined (set here).
# Tests: tests/cuda/*.cpp → llmpi_cuda_tests, one ctest entry (on a machine without a GPU it
# prints "no GPU" and exits 77, which ctest reports as not run; see docs/cuda.md).
# tests/cuda_mpi/<name>.<ranks>.cpp → cuda_mpi_<name>_<ranks>, run under mpiexec with <ranks>
# ranks, one GPU per rank (exit 77, "no GPU", when a node has fewer GPUs than ranks).
enable_language(CUDA)
find_package(CUDAToolkit 12 REQUIRED)

if(CMAKE_CUDA_COMPILER_VERSION VERSION_LESS 12.0)
  message(FATAL_ERROR "llmpi's CUDA backend needs nvcc >= 12 (found ${CMAKE_CUDA_COMPILER_VERSION})")
endif()

# cuDNN 9: header and library beside the toolkit, or wherever CUDNN_ROOT points.
find_path(LLMPI_CUDNN_INCLUDE_DIR cudnn_backend.h
  HINTS $ENV{CUDNN_ROOT} ${CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}
  PATH_SUFFIXES include)
find_library(LLMPI_CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
  HINTS $ENV{CUDNN_ROOT} ${CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
  PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
if(NOT LLMPI_CUDNN_INCLUDE_DIR OR NOT LLMPI_CUDNN_LIBRARY)
  message(FATAL_ERROR "LLMPI_ENABLE_CUDA=ON needs cuDNN 9 (cudnn_backend.h and libcudnn.so); "
                      "set CUDNN_ROOT to its install prefix")
endif()
file(STRINGS ${LLMPI_CUDNN_INCLUDE_DIR}/cudnn_version.h _llmpi_cudnn_major REGEX "define CUDNN_MAJOR ")
if(NOT _llmpi_cudnn_major MATCHES "CUDNN_MAJOR 9")
  message(FATAL_ERROR "llmpi needs cuDNN 9, found '${_llmpi_cudnn_major}' in ${LLMPI_CUDNN_INCLUDE_DIR}")
endif()

# NCCL ≥ 2.18 (header + library), for device-buffer collectives (parallel/nccl_collectives.*).
# Only APIs of NCCL 2.18 are used, so a binary built against a newer header runs on the GPU
# machine's NCCL (2.28.3 there).
find_path(LLMPI_NCCL_INCLUDE_DIR nccl.h HINTS $ENV{NCCL_ROOT} ${NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS}
  PATH_SUFFIXES include)
find_library(LLMPI_NCCL_LIBRARY NAMES nccl libnccl.so.2
  HINTS $ENV{NCCL_ROOT} ${NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
  PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
if(NOT LLMPI_NCCL_INCLUDE_DIR OR NOT LLMPI_NCCL_LIBRARY)
  message(FATAL_ERROR "LLMPI_ENABLE_CUDA=ON needs NCCL (nccl.h and libnccl.so); "
                      "set NCCL_ROOT to its install prefix")
endif()
file(STRINGS ${LLMPI_NCCL_INCLUDE_DIR}/nccl.h _llmpi_nccl_version REGEX "define NCCL_(MAJOR|MINOR) ")
string(REGEX REPLACE ".*NCCL_MAJOR ([0-9]+).*NCCL_MINOR ([0-9]+).*" "\\1.\\2" _llmpi_nccl_version
       "${_llmpi_nccl_version}")
if(_llmpi_nccl_version VERSION_LESS 2.18)
  message(FATAL_ERROR "llmpi needs NCCL >= 2.18, found ${_llmpi_nccl_version} in ${LLMPI_NCCL_INCLUDE_DIR}")
endif()
add_library(llmpi::nccl INTERFACE IMPORTED)
target_include_directories(llmpi::nccl SYSTEM INTERFACE ${LLMPI_NCCL_INCLUDE_DIR})
target_link_libraries(llmpi::nccl INTERFACE ${LLMPI_NCCL_LIBRARY})

# CUDA sources follow the project's C++20 (CUDA_STANDARD defaults to CXX_STANDARD). CMake 3.25
# does not know nvcc 13's flag for it; teach it where missing.
if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()

file(GLOB LLMPI_CUDA_SOURCES CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/src/backend/cuda/*.cu
  ${PROJECT_SOURCE_DIR}/src/backend/cuda/*.cpp)
add_library(llmpi_cuda OBJECT ${LLMPI_CUDA_SOURCES})
set_target_properties(llmpi_cuda PROPERTIES
  CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF
  POSITION_INDEPENDENT_CODE ON)
target_include_directories(llmpi_cuda PRIVATE
  ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/src ${PROJECT_BINARY_DIR}/generated)
target_include_directories(llmpi_cuda SYSTEM PRIVATE ${LLMPI_CUDNN_INCLUDE_DIR} ${CUDAToolkit_INCLUDE_DIRS})
target_compile_options(llmpi_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>
  $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo --expt-relaxed-constexpr -Xcompiler=-Wall,-Wextra>)

target_sources(llmpi_core PRIVATE $<TARGET_OBJECTS:llmpi_cuda>)
target_link_libraries(llmpi_core PUBLIC CUDA::cudart_static CUDA::cublasLt ${LLMPI_CUDNN_LIBRARY}
  llmpi::nccl)
target_compile_definitions(llmpi_core PUBLIC LLMPI_HAVE_CUDA=1)

# Executables of the cuda build look for libraries in <their dir>/lib first: the GPU bundle
# (scripts/gpu-bundle.sh) carries there what the GPU machine lacks. DT_RPATH rather than
# DT_RUNPATH, because only DT_RPATH also serves the carried libraries' own dependencies.
string(APPEND CMAKE_EXE_LINKER_FLAGS " -Wl,-rpath,\\$ORIGIN/lib -Wl,--disable-new-dtags")

# GPU training benchmark (bench/llmpi_gpu_bench.cpp): one process per config, one JSON line.
add_executable(llmpi_gpu_bench ${PROJECT_SOURCE_DIR}/bench/llmpi_gpu_bench.cpp)
target_link_libraries(llmpi_gpu_bench PRIVATE llmpi_core)
target_include_directories(llmpi_gpu_bench PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_include_directories(llmpi_gpu_bench SYSTEM PRIVATE ${LLMPI_CUDNN_INCLUDE_DIR}
  ${CUDAToolkit_INCLUDE_DIRS})
target_compile_options(llmpi_gpu_bench PRIVATE -Wall -Wextra)

if(LLMPI_BUILD_TESTS)
  find_package(GTest REQUIRED)
  file(GLOB LLMPI_CUDA_TEST_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/cuda/*.cpp)
  add_executable(llmpi_cuda_tests ${LLMPI_CUDA_TEST_SOURCES})
  target_link_libraries(llmpi_cuda_tests PRIVATE llmpi_core GTest::gtest)
  target_include_directories(llmpi_cuda_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(llmpi_cuda_tests PRIVATE -Wall -Wextra)
  # One ctest entry. The CTestTestfile is written at generate time, so the order relative to
  # the top-level enable_testing() does not matter.
  add_test(NAME llmpi_cuda_tests COMMAND llmpi_cuda_tests)
  # Exit code 77 = "no GPU": ctest lists the entry as not run (Skipped), never as passed.
  set_tests_properties(llmpi_cuda_tests PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS cuda)

  # Multi-GPU tests: one binary per tests/cuda_mpi/<name>.<ranks>.cpp (+ main.cpp), run by
  # ctest under mpiexec with exactly <ranks> ranks; NVLink multicast (NVLS) stays off.
  set(LLMPI_CUDA_MPIEXEC_FLAGS --bind-to none -x NCCL_NVLS_ENABLE=0)
  if("$ENV{USER}" STREQUAL "root" OR "$ENV{HOME}" STREQUAL "/root")
    list(APPEND LLMPI_CUDA_MPIEXEC_FLAGS --allow-run-as-root)
  endif()
  file(GLOB LLMPI_CUDA_MPI_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/cuda_mpi/*.*.cpp)
  foreach(src IN LISTS LLMPI_CUDA_MPI_TESTS)
    get_filename_component(full ${src} NAME)
    if(NOT full MATCHES "^([A-Za-z0-9_]+)\\.([0-9]+)\\.cpp$")
      message(FATAL_ERROR "multi-GPU test ${full} must be named <name>.<ranks>.cpp")
    endif()
    set(target cuda_mpi_${CMAKE_MATCH_1}_${CMAKE_MATCH_2})
    set(ranks ${CMAKE_MATCH_2})
    add_executable(${target} ${src} ${PROJECT_SOURCE_DIR}/tests/cuda_mpi/main.cpp)
    target_link_libraries(${target} PRIVATE llmpi_core GTest::gtest)
    target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
    # C API only: no dependency on Open MPI's C++ bindings library (absent in Open MPI 5).
    target_compile_definitions(${target} PRIVATE LLMPI_EXPECTED_RANKS=${ranks} OMPI_SKIP_MPICXX=1
      MPICH_SKIP_MPICXX=1)
    target_compile_options(${target} PRIVATE -Wall -Wextra)
    add_test(NAME ${target}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} ${LLMPI_CUDA_MPIEXEC_FLAGS}
              $<TARGET_FILE:${target}>)
    set_tests_properties(${target} PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS cuda
      PROCESSORS ${ranks}
      ENVIRONMENT "NCCL_NVLS_ENABLE=0;OMPI_MCA_rmaps_base_oversubscribe=1;OMPI_MCA_btl=self,vader;OMPI_MCA_btl_vader_single_copy_mechanism=none")
  endforeach()
endif()
