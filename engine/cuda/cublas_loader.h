// CublasApi: the cuBLAS entry points the CUDA backend calls, resolved with
// dlopen("libcublas.so.13") on first use instead of being linked.
//
// Why not link it: libcublasLt carries ~92 KB of static TLS and libcublas
// 12 KB. A binary that links them puts that TLS in every thread it ever
// creates, and libraries that start threads with small stacks fail
// pthread_create with EINVAL (civetweb, under prometheus-cpp's metrics
// server, asks for 100 KB: saedict-worker's --metrics_port stopped serving
// when the backend was first linked). Loaded on demand, cuBLAS's TLS is
// allocated only in the threads that call it, and a binary built with
// the CUDA backend still starts on a machine without cuBLAS (Create then
// says it cannot load it).
//
// The library is looked up as libcublas.so.13 (ld.so's search: the
// loader cache, LD_LIBRARY_PATH), then in the toolkit directory this build
// was configured with.
//
// Thread safety: LoadCublas may be called from any thread; the table it
// returns is immutable and lives until the process exits (never dlclosed).
#ifndef SAEDICT_ENGINE_CUDA_CUBLAS_LOADER_H_
#define SAEDICT_ENGINE_CUDA_CUBLAS_LOADER_H_

#include <cublas_v2.h>

#include "absl/status/statusor.h"

namespace saedict::engine::cuda {

struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSetPointerMode_v2) set_pointer_mode = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  // The exported cublasGemmEx (compute type cublasComputeType_t); the C++
  // header also has an inline overload taking a cudaDataType.
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void*, const void*, cudaDataType, int, const void*, cudaDataType,
                            int, const void*, void*, cudaDataType, int, cublasComputeType_t,
                            cublasGemmAlgo_t) = nullptr;
  decltype(&cublasGetStatusName) status_name = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

// The loaded table; FAILED_PRECONDITION naming the library and dlerror()
// when it cannot be loaded or lacks a symbol (the same answer every call).
absl::StatusOr<const CublasApi*> LoadCublas();

}  // namespace saedict::engine::cuda

#endif  // SAEDICT_ENGINE_CUDA_CUBLAS_LOADER_H_
