#include "engine/cuda/cublas_loader.h"

#include <dlfcn.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace saedict::engine::cuda {
namespace {

template <typename Fn>
bool Resolve(void* library, const char* symbol, Fn* out, std::vector<std::string>* missing) {
  *out = reinterpret_cast<Fn>(dlsym(library, symbol));
  if (*out == nullptr) missing->push_back(symbol);
  return *out != nullptr;
}

absl::StatusOr<CublasApi> Load() {
  std::vector<std::string> tried = {"libcublas.so.13"};
#ifdef SAEDICT_CUDA_TOOLKIT_LIBRARY_DIR
  tried.push_back(std::string(SAEDICT_CUDA_TOOLKIT_LIBRARY_DIR) + "/libcublas.so.13");
#endif
  void* library = nullptr;
  std::vector<std::string> errors;
  for (const std::string& name : tried) {
    // RTLD_LOCAL: cuBLAS's symbols stay out of the global namespace.
    library = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library != nullptr) break;
    const char* e = dlerror();
    errors.push_back(e != nullptr ? e : name + ": unknown dlopen error");
  }
  if (library == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot load cuBLAS (the CUDA backend's GEMM): ", absl::StrJoin(errors, "; "),
        " — install CUDA 13's cuBLAS or put its directory in LD_LIBRARY_PATH"));
  }
  CublasApi api;
  std::vector<std::string> missing;
  Resolve(library, "cublasCreate_v2", &api.create, &missing);
  Resolve(library, "cublasDestroy_v2", &api.destroy, &missing);
  Resolve(library, "cublasSetStream_v2", &api.set_stream, &missing);
  Resolve(library, "cublasSetMathMode", &api.set_math_mode, &missing);
  Resolve(library, "cublasSetPointerMode_v2", &api.set_pointer_mode, &missing);
  Resolve(library, "cublasSgemm_v2", &api.sgemm, &missing);
  Resolve(library, "cublasGemmEx", &api.gemm_ex, &missing);
  Resolve(library, "cublasGetStatusName", &api.status_name, &missing);
  Resolve(library, "cublasGetStatusString", &api.status_string, &missing);
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the cuBLAS library found lacks ", absl::StrJoin(missing, ", "), " (not CUDA 13's?)"));
  }
  return api;
}

}  // namespace

absl::StatusOr<const CublasApi*> LoadCublas() {
  static const absl::StatusOr<CublasApi>* const loaded = new absl::StatusOr<CublasApi>(Load());
  if (!loaded->ok()) return loaded->status();
  return &**loaded;
}

}  // namespace saedict::engine::cuda
