// defines: use_passive_openmp_waits (engine/cpu/openmp_wait.h)
#include "engine/cpu/openmp_wait.h"

#include <unistd.h>

#include <cstdlib>

namespace llm {

void use_passive_openmp_waits(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);  // returns only if it failed
}

}  // namespace llm
