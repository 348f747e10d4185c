// defines: use_short_openmp_spins (engine/cpu/openmp_wait.h)
#include "engine/cpu/openmp_wait.h"

#include <unistd.h>

#include <cstdlib>

namespace llm {

void use_short_openmp_spins(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "10000", 1);
  execv("/proc/self/exe", argv);  // returns only if it failed
}

}  // namespace llm
