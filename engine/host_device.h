// defines: LLM_HOST_DEVICE, for a function written once for the host and CUDA kernels: under nvcc
// it is compiled for both (and inlined, as these are small index and mask functions); plain C++
// sees an inline function. engine/ stays free of CUDA, and cuda/ includes the same code.
#pragma once

#ifdef __CUDACC__
#define LLM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LLM_HOST_DEVICE inline
#endif
