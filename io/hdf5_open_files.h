#pragma once
// After a failed write (a full disk), HDF5 may be unable to close a file: the failed
// H5Fclose leaves it in HDF5's table, and HDF5's own clean-up inside MPI_Finalize then
// crashes closing it again (H5F__close_cb, exit 139). The CLI asks here before finalizing
// after an error, and ends the process itself instead (main.cpp).
namespace llmpi::h5 {

// Files HDF5 still holds open in this process.
long open_file_count();

// After an error has been reported: when HDF5 still holds a file, flush stdio and end the
// process here with `code` (std::_Exit), skipping the clean-up that would crash; else return.
void exit_if_files_left_open(int code);

}  // namespace llmpi::h5
