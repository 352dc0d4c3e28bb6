// The files the encode / decode commands read and write, on top of
// formats/codecs/npy.h:
//  - activations: a .npy of shape [n, d_in] (or [d_in] for one row) in f32 or
//    f16 (sent as is) or f64 (converted to f32);
//  - codes: a .npz with row_offsets (uint64 [n+1]), indices (uint32 [nnz]),
//    values (float32 [nnz]) and shape (int64 [2] = n, d_sae), so that
//    scipy.sparse.csr_matrix((z["values"], z["indices"], z["row_offsets"]),
//    shape=z["shape"]) rebuilds it; optionally reconstruction (float32
//    [n, d_in]) and row_error (float32 [n]). Reading also accepts any integer
//    dtype for row_offsets / indices / shape and f16/f64 values (scipy's
//    int32 indptr, for instance), range-checked.
//
// Thread safety: free functions with no shared state.
#ifndef SAEDICT_CLIENT_COMMANDS_ARRAY_FILES_H_
#define SAEDICT_CLIENT_COMMANDS_ARRAY_FILES_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "wire/tensor_wire.h"
#include "saedict/v1/saedict.pb.h"

namespace saedict::client {

// Dense rows ready for the wire: `data` is rows * cols elements of `dtype`.
struct Activations {
  int64_t rows = 0;
  int64_t cols = 0;
  v1::DType dtype = v1::DTYPE_F32;
  std::string data;
};

// INVALID_ARGUMENT (naming the file) for another rank or dtype; NOT_FOUND
// when the file is missing.
absl::StatusOr<Activations> ReadActivationsNpy(const std::filesystem::path& path);

// Extra dense outputs of an encode; empty vectors are not written.
struct EncodeExtras {
  int64_t d_in = 0;
  std::vector<float> reconstruction;  // rows * d_in
  std::vector<float> row_error;       // rows
};

// Writes the codes .npz atomically. REQUIRES: codes are valid.
absl::Status WriteCodesNpz(const std::filesystem::path& path, const wire::CsrCodes& codes,
                           const EncodeExtras& extras = {});

// Reads and validates a codes .npz (the arrays above).
absl::StatusOr<wire::CsrCodes> ReadCodesNpz(const std::filesystem::path& path);

// Writes a float32 .npy of shape [rows, cols] atomically.
absl::Status WriteMatrixNpy(const std::filesystem::path& path, int64_t rows, int64_t cols,
                            const std::vector<float>& values);

}  // namespace saedict::client

#endif  // SAEDICT_CLIENT_COMMANDS_ARRAY_FILES_H_
