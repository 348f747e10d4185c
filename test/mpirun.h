// Shared by the tests that run several ranks: the mpirun command line that starts them.
#pragma once
#include <unistd.h>

#include <string>

namespace llm::testing {

// `env mpirun -np ranks ` for a command's prefix: one thread per rank (two ranks share the two
// cores). Root needs Open MPI's explicit consent.
inline std::string mpirun(int ranks, const std::string& env = "") {
  std::string cmd = "mpirun --oversubscribe -np " + std::to_string(ranks) + " -x OMP_NUM_THREADS=1 ";
  if (geteuid() == 0) cmd += "--allow-run-as-root ";
  return env + " " + cmd;
}

}  // namespace llm::testing
