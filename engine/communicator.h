// The process group: rank, world size and local rank from MPI when launched by mpirun (world
// size 1 otherwise), and the collectives data-parallel training needs on host buffers. GPU
// buffers will go through NCCL (cuda/) with the same shape of calls.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace llm {

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
  void broadcast(void* data, size_t bytes, int root);
  void barrier();

  // Non-blocking collectives on f32 host buffers: start now, complete in wait().
  struct Request {
    void* handle = nullptr;  // an MPI_Request, or null when nothing is in flight
  };
  Request iallreduce_sum(float* data, int64_t count);
  // Sums `data` (equal length on every rank) and leaves rank r's `counts[r]`-long slice,
  // starting at the sum of the counts before it, in `slice`.
  Request ireduce_scatter_sum(const float* data, float* slice, const std::vector<int>& counts);
  void wait(Request& request);
  // Every rank contributes data[displ[rank], +counts[rank]); all ranks receive the whole vector.
  void allgather_inplace(float* data, const std::vector<int>& counts);
  // Rank r's slice data[displ[r], +counts[r]) arrives on `root`.
  void gather_inplace(float* data, const std::vector<int>& counts, int root);

  // Ends every rank of the job with `code` (MPI_Abort), so one rank's fatal error never leaves
  // the others waiting in a collective.
  [[noreturn]] void abort(int code);

 private:
  Communicator() = default;
  bool mpi_ = false;
  int rank_ = 0, world_size_ = 1, local_rank_ = 0;
};

// An even split of `total` elements into `parts` contiguous counts (the first ones larger).
std::vector<int> split_counts(int64_t total, int parts);

}  // namespace llm
