// The process group: rank, world size and local rank from MPI when launched by mpirun (world
// size 1 otherwise), and the collectives data-parallel training needs: MPI on host tensors, the
// device's registered collectives (NCCL for CUDA) on device tensors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace llm {

// Collectives on device memory, for a device type whose backend provides them (cuda/ registers
// NCCL). Work is queued on the device's communication stream, ordered after the compute done so
// far; wait() orders later compute after it.
class DeviceCollectives {
 public:
  virtual ~DeviceCollectives() = default;
  virtual void allreduce_sum(Tensor& data) = 0;
  virtual void reduce_scatter_sum(const Tensor& data, Tensor& slice) = 0;
  virtual void allgather(Tensor& data) = 0;
  virtual void wait() = 0;
  // An event at the end of the work queued so far on the communication stream; wait_for(mark)
  // orders later compute after that work only (not what is queued after it, such as the
  // reduce-scatters of a backward that a prefetched all-gather should not wait behind), and
  // frees the mark.
  virtual void* mark() = 0;
  virtual void wait_for(void* mark) = 0;
};
// make_id: a fresh unique id (called on rank 0, broadcast by MPI); create: joins the group.
struct DeviceCollectivesFactory {
  std::vector<char> (*make_id)() = nullptr;
  std::unique_ptr<DeviceCollectives> (*create)(Device device, int rank, int world_size,
                                               const std::vector<char>& id) = nullptr;
};

class Communicator {
 public:
  // MPI_Init when this process was started by mpirun (OMPI/PMIx environment), else a group of
  // one with no MPI at all. Call once, first thing in main.
  static Communicator& init(int* argc, char*** argv);
  static Communicator& get();  // a group of one when init() was never called (tests)
  ~Communicator();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }  // rank among the processes on this node
  bool is_main() const { return rank_ == 0; }
  bool distributed() const { return world_size_ > 1; }

  // Blocking collectives (no-ops in a group of one).
  void allreduce_sum(double* data, int64_t count);
  void allreduce_max(int64_t* data, int64_t count);
  void allreduce_max(double* data, int64_t count);
  void broadcast(void* data, size_t bytes, int root);
  void barrier();

  // Collectives on f32 tensors (all-gather: bf16 too), host (MPI) or device (the device's registered collectives, NCCL
  // for CUDA). Non-blocking ones start now and complete in wait().
  struct Request {
    // An MPI_Request (null when nothing is in flight on the host); on a device, the mark of the
    // collective's end (DeviceCollectives::mark), or null to wait for everything queued.
    void* handle = nullptr;
    Device device;
  };
  Request iallreduce_sum(Tensor& data);
  // data's numel is a multiple of the world size; rank r receives the sum of part r in `slice`.
  Request ireduce_scatter_sum(const Tensor& data, Tensor& slice);
  void wait(Request& request);
  // In place: every rank contributes its part r of `data` (equal parts), all receive all parts.
  // `data` is whole once wait() returns (on a device: for the compute queued after it). f32, or
  // bf16 (ZeRO's compute copies of the weights).
  Request iallgather(Tensor& data);
  void allgather(Tensor& data);  // iallgather, then wait

  // Ends every rank of the job with `code` (MPI_Abort), so one rank's fatal error never leaves
  // the others waiting in a collective.
  [[noreturn]] void abort(int code);

 private:
  Communicator() = default;
  DeviceCollectives& device_collectives(Device device);  // created on first use (collective)
  bool mpi_ = false;
  std::unique_ptr<DeviceCollectives> device_collectives_;
  Device collectives_device_;
  int rank_ = 0, world_size_ = 1, local_rank_ = 0;
};

void register_device_collectives(DeviceType type, DeviceCollectivesFactory factory);
const DeviceCollectivesFactory* find_device_collectives(DeviceType type);  // null when none

}  // namespace llm
