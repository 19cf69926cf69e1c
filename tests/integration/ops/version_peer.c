/* version_peer.c - master/version.c for the mitmd-peer test executable: the same code with
 * the build tag "<tag>-peer" (set by CMakeLists.txt), so that a binary upgrade between mitmd
 * and mitmd-peer can be told apart (tests/integration/ops/upgrade_two_builds.py). */
#include "master/version.c"
