// defines: Communicator (MPI when launched by mpirun, a group of one otherwise), split_counts
#include "engine/communicator.h"

// The C API only: Open MPI's deprecated C++ bindings would need their own library.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "engine/check.h"

namespace llm {

namespace {
std::unique_ptr<Communicator>& instance() {
  static std::unique_ptr<Communicator> c;
  return c;
}

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_SIZE");
}

std::vector<int> displacements(const std::vector<int>& counts) {
  std::vector<int> displ(counts.size(), 0);
  for (size_t i = 1; i < counts.size(); i++) displ[i] = displ[i - 1] + counts[i - 1];
  return displ;
}
}  // namespace

Communicator& Communicator::init(int* argc, char*** argv) {
  LLM_CHECK(!instance(), "Communicator::init called twice");
  instance().reset(new Communicator());
  Communicator& c = *instance();
  if (!launched_by_mpirun()) return c;
  MPI_Init(argc, argv);
  c.mpi_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &c.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &c.world_size_);
  // Ranks that share memory share a node: their rank within that group is the local rank.
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c.rank_, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &c.local_rank_);
  MPI_Comm_free(&node);
  return c;
}

Communicator& Communicator::get() {
  if (!instance()) instance().reset(new Communicator());
  return *instance();
}

Communicator::~Communicator() {
  if (mpi_) MPI_Finalize();
}

void Communicator::allreduce_sum(double* data, int64_t count) {
  if (mpi_) MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void Communicator::allreduce_max(int64_t* data, int64_t count) {
  if (mpi_) MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
}

void Communicator::broadcast(void* data, size_t bytes, int root) {
  if (mpi_) MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD);
}

void Communicator::barrier() {
  if (mpi_) MPI_Barrier(MPI_COMM_WORLD);
}

Communicator::Request Communicator::iallreduce_sum(float* data, int64_t count) {
  if (!mpi_) return {};
  auto* request = new MPI_Request;
  MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, request);
  return {request};
}

Communicator::Request Communicator::ireduce_scatter_sum(const float* data, float* slice,
                                                        const std::vector<int>& counts) {
  if (!mpi_) {
    std::copy_n(data, counts[0], slice);
    return {};
  }
  auto* request = new MPI_Request;
  MPI_Ireduce_scatter(data, slice, counts.data(), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, request);
  return {request};
}

void Communicator::wait(Request& request) {
  if (!request.handle) return;
  auto* r = static_cast<MPI_Request*>(request.handle);
  MPI_Wait(r, MPI_STATUS_IGNORE);
  delete r;
  request.handle = nullptr;
}

void Communicator::allgather_inplace(float* data, const std::vector<int>& counts) {
  if (!mpi_) return;
  std::vector<int> displ = displacements(counts);
  MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, counts.data(), displ.data(), MPI_FLOAT,
                 MPI_COMM_WORLD);
}

void Communicator::gather_inplace(float* data, const std::vector<int>& counts, int root) {
  if (!mpi_) return;
  std::vector<int> displ = displacements(counts);
  if (rank_ == root)
    MPI_Gatherv(MPI_IN_PLACE, 0, MPI_FLOAT, data, counts.data(), displ.data(), MPI_FLOAT, root, MPI_COMM_WORLD);
  else
    MPI_Gatherv(data + displ[rank_], counts[rank_], MPI_FLOAT, nullptr, nullptr, nullptr, MPI_FLOAT, root,
                MPI_COMM_WORLD);
}

void Communicator::abort(int code) {
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

std::vector<int> split_counts(int64_t total, int parts) {
  std::vector<int> counts(parts);
  for (int r = 0; r < parts; r++) counts[r] = static_cast<int>(total / parts + (r < total % parts ? 1 : 0));
  return counts;
}

}  // namespace llm
