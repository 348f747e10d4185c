// The doctest runner the test suites link (CMakeLists.txt): its implementation compiled once for
// all of them. Compiled in each suite at -O3 it took longer than most suites' own code (about 10 s
// of a 2-core CI build's, a hundred times over). Suites with a main of their own (the GPU ones,
// which skip without a device) define DOCTEST_CONFIG_IMPLEMENT themselves and do not link it.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
