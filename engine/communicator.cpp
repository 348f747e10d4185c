// defines: Communicator (MPI when launched by mpirun, a group of one otherwise), the registry of
// device collectives
#include "engine/communicator.h"

// The C API only: Open MPI's deprecated C++ bindings would need their own library.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <map>
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

std::map<DeviceType, DeviceCollectivesFactory>& collectives_registry() {
  static std::map<DeviceType, DeviceCollectivesFactory> registry;
  return registry;
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

void Communicator::allreduce_max(double* data, int64_t count) {
  if (mpi_) MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
}

void Communicator::broadcast(void* data, size_t bytes, int root) {
  if (mpi_) MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD);
}

void Communicator::barrier() {
  if (mpi_) MPI_Barrier(MPI_COMM_WORLD);
}

DeviceCollectives& Communicator::device_collectives(Device device) {
  if (device_collectives_) {
    LLM_CHECK(device == collectives_device_, "collectives on " + device.str() + " and " +
                                                 collectives_device_.str() + " in one process");
    return *device_collectives_;
  }
  const DeviceCollectivesFactory* factory = find_device_collectives(device.type);
  LLM_CHECK(factory, "no collectives for " + device.str() + " in this build (data parallel needs them)");
  // Rank 0 makes the group's id; MPI hands it to every rank (NCCL's recipe).
  std::vector<char> id = rank_ == 0 ? factory->make_id() : std::vector<char>();
  uint64_t size = id.size();
  broadcast(&size, sizeof size, 0);
  id.resize(size);
  broadcast(id.data(), size, 0);
  device_collectives_ = factory->create(device, rank_, world_size_, id);
  collectives_device_ = device;
  return *device_collectives_;
}

Communicator::Request Communicator::iallreduce_sum(Tensor& data) {
  LLM_CHECK(data.dtype() == DType::f32 && data.is_contiguous(), "iallreduce_sum of " + data.str());
  Request request{nullptr, data.device()};
  if (!distributed()) return request;
  if (!data.device().is_cpu()) {
    device_collectives(data.device()).allreduce_sum(data);
    return request;
  }
  auto* r = new MPI_Request;
  MPI_Iallreduce(MPI_IN_PLACE, data.data_ptr(), static_cast<int>(data.numel()), MPI_FLOAT, MPI_SUM,
                 MPI_COMM_WORLD, r);
  request.handle = r;
  return request;
}

Communicator::Request Communicator::ireduce_scatter_sum(const Tensor& data, Tensor& slice) {
  LLM_CHECK(data.numel() == slice.numel() * world_size_ && data.dtype() == DType::f32,
            "ireduce_scatter_sum: " + data.str() + " into parts of " + slice.str());
  Request request{nullptr, data.device()};
  if (!distributed()) {
    slice.copy_from(data);
    return request;
  }
  if (!data.device().is_cpu()) {
    device_collectives(data.device()).reduce_scatter_sum(data, slice);
    return request;
  }
  auto* r = new MPI_Request;
  MPI_Ireduce_scatter_block(data.data_ptr(), slice.data_ptr(), static_cast<int>(slice.numel()),
                            MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, r);
  request.handle = r;
  return request;
}

void Communicator::wait(Request& request) {
  if (!distributed()) return;
  if (!request.device.is_cpu()) {
    DeviceCollectives& collectives = device_collectives(request.device);
    if (request.handle)
      collectives.wait_for(request.handle);
    else
      collectives.wait();
    request.handle = nullptr;
    return;
  }
  if (!request.handle) return;
  auto* r = static_cast<MPI_Request*>(request.handle);
  MPI_Wait(r, MPI_STATUS_IGNORE);
  delete r;
  request.handle = nullptr;
}

Communicator::Request Communicator::iallgather(Tensor& data) {
  const bool bf16 = data.dtype() == DType::bf16;
  LLM_CHECK(data.numel() % world_size_ == 0 && (data.dtype() == DType::f32 || bf16) && data.is_contiguous(),
            "allgather of " + data.str() + " in " + std::to_string(world_size_) + " equal parts (f32 or bf16)");
  Request request{nullptr, data.device()};
  if (!distributed()) return request;
  if (!data.device().is_cpu()) {
    DeviceCollectives& collectives = device_collectives(data.device());
    collectives.allgather(data);
    request.handle = collectives.mark();
    return request;
  }
  auto* r = new MPI_Request;
  MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data.data_ptr(), static_cast<int>(data.numel() / world_size_),
                 bf16 ? MPI_UINT16_T : MPI_FLOAT, MPI_COMM_WORLD, r);  // a gather moves bits: bf16 as 16-bit units
  request.handle = r;
  return request;
}

void Communicator::allgather(Tensor& data) {
  Request request = iallgather(data);
  wait(request);
}

void Communicator::abort(int code) {
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

void register_device_collectives(DeviceType type, DeviceCollectivesFactory factory) {
  collectives_registry()[type] = factory;
}

const DeviceCollectivesFactory* find_device_collectives(DeviceType type) {
  auto it = collectives_registry().find(type);
  return it == collectives_registry().end() ? nullptr : &it->second;
}

}  // namespace llm
