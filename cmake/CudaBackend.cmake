# CUDA backend (LLMPI_ENABLE_CUDA=ON). Included by the top-level CMakeLists.txt after the
# target llmpi_core exists. The sources under src/backend/cuda/ (kernels in .cu, host code in
# .cpp) form the object library llmpi_cuda, whose objects go into llmpi_core itself, so every
# consumer of llmpi_core gets the CUDA backend with no extra link line. llmpi_cuda keeps its
# own compile flags (nvcc does not take llmpi_core's -Wall/-Wextra directly).
# Runtime libraries: CUDA runtime (static), cuBLASLt, cuDNN 9 (shared; the GPU machine has
# its own). NCCL is found and exposed as llmpi::nccl for the collectives (not linked here).
# Tests: tests/cuda/*.cpp → llmpi_cuda_tests, one ctest entry (on a machine without a GPU it
# prints "no GPU" and exits 77, which ctest reports as not run; see docs/cuda.md).
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

# NCCL (header + library), for device-buffer collectives in parallel/.
find_path(LLMPI_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} $ENV{NCCL_ROOT} PATH_SUFFIXES include)
find_library(LLMPI_NCCL_LIBRARY NAMES nccl HINTS ${CUDAToolkit_LIBRARY_DIR} $ENV{NCCL_ROOT} PATH_SUFFIXES lib lib64)
if(LLMPI_NCCL_INCLUDE_DIR AND LLMPI_NCCL_LIBRARY)
  add_library(llmpi::nccl INTERFACE IMPORTED)
  target_include_directories(llmpi::nccl SYSTEM INTERFACE ${LLMPI_NCCL_INCLUDE_DIR})
  target_link_libraries(llmpi::nccl INTERFACE ${LLMPI_NCCL_LIBRARY})
endif()

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
target_link_libraries(llmpi_core PUBLIC CUDA::cudart_static CUDA::cublasLt ${LLMPI_CUDNN_LIBRARY})
target_compile_definitions(llmpi_core PUBLIC LLMPI_HAVE_CUDA=1)

# Executables of the cuda build look for libraries in <their dir>/lib first: the GPU bundle
# (scripts/gpu-bundle.sh) carries there what the GPU machine lacks. DT_RPATH rather than
# DT_RUNPATH, because only DT_RPATH also serves the carried libraries' own dependencies.
string(APPEND CMAKE_EXE_LINKER_FLAGS " -Wl,-rpath,\\$ORIGIN/lib -Wl,--disable-new-dtags")

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
endif()
