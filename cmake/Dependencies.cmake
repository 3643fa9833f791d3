# Finds every third-party dependency and exposes each as an llmpi:: interface target.
# All come from Debian 12 packages (scripts/install-deps.sh); nothing is vendored.

find_package(MPI 3.1 REQUIRED COMPONENTS C CXX)
add_library(llmpi::mpi INTERFACE IMPORTED)
target_link_libraries(llmpi::mpi INTERFACE MPI::MPI_CXX)

# Parallel HDF5: checkpoints are written collectively through MPI-IO.
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR
    "llmpi needs a parallel (MPI) build of HDF5, but the HDF5 found at '${HDF5_INCLUDE_DIRS}' is serial.\n"
    "On Debian/Ubuntu: apt-get install libhdf5-openmpi-dev (scripts/install-deps.sh does this).")
endif()
add_library(llmpi::hdf5 INTERFACE IMPORTED)
target_include_directories(llmpi::hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(llmpi::hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES})
target_compile_definitions(llmpi::hdf5 INTERFACE ${HDF5_DEFINITIONS})

find_package(tomlplusplus 3 REQUIRED)
add_library(llmpi::tomlplusplus INTERFACE IMPORTED)
target_link_libraries(llmpi::tomlplusplus INTERFACE tomlplusplus::tomlplusplus)

# Kokkos 3.4 from Trilinos (Debian: libtrilinos-kokkos-dev). Its exported target names a
# wrong include folder, so wrap the plain variables in a target of our own.
find_package(Kokkos REQUIRED CONFIG)
find_path(LLMPI_KOKKOS_INCLUDE_DIR Kokkos_Core.hpp HINTS ${Kokkos_INCLUDE_DIRS} PATH_SUFFIXES trilinos REQUIRED)
set(_llmpi_kokkos_libs "")
foreach(_lib IN LISTS Kokkos_LIBRARIES)
  find_library(_llmpi_kokkos_${_lib} NAMES ${_lib} HINTS ${Kokkos_LIBRARY_DIRS} REQUIRED)
  list(APPEND _llmpi_kokkos_libs ${_llmpi_kokkos_${_lib}})
endforeach()
add_library(llmpi::kokkos INTERFACE IMPORTED)
target_include_directories(llmpi::kokkos SYSTEM INTERFACE ${LLMPI_KOKKOS_INCLUDE_DIR})
target_link_libraries(llmpi::kokkos INTERFACE ${_llmpi_kokkos_libs} dl)
# Kokkos 3.4 headers use volatile-qualified returns that C++20 deprecates.
target_compile_options(llmpi::kokkos INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-volatile>)

# CBLAS for host matrix products (OpenBLAS on Debian).
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(LLMPI_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread REQUIRED)
add_library(llmpi::cblas INTERFACE IMPORTED)
target_include_directories(llmpi::cblas SYSTEM INTERFACE ${LLMPI_CBLAS_INCLUDE_DIR})
target_link_libraries(llmpi::cblas INTERFACE ${BLAS_LIBRARIES})

# JSON: the one JSON library of the project (JSONL data, safetensors headers, HF configs).
find_package(nlohmann_json 3.10 REQUIRED)
add_library(llmpi::json INTERFACE IMPORTED)
target_link_libraries(llmpi::json INTERFACE nlohmann_json::nlohmann_json)

# CLI11: subcommands, --help and option validation (header-only).
find_package(CLI11 2 REQUIRED CONFIG)
add_library(llmpi::cli11 INTERFACE IMPORTED)
target_link_libraries(llmpi::cli11 INTERFACE CLI11::CLI11)

find_package(Threads REQUIRED)
