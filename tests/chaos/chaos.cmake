# tests/chaos/chaos.cmake - the short subset of the fault campaign (tests/chaos/run --quick:
# kill -9 of a worker, SIGHUP x3, SIGTERM with drain, origin reset mid-body; under 60 s).
# The full campaign is run by hand: tests/chaos/run --out FILE.md. Owner: the chaos work.
# Timing bounds (a replacement worker within 1 s) are for an optimized build: not registered
# in the sanitizer builds.
if(NOT MITMD_TESTS OR MITMD_ASAN OR MITMD_UBSAN OR MITMD_TSAN)
  return()
endif()
add_test(NAME chaos_quick COMMAND ${CMAKE_CURRENT_LIST_DIR}/run --quick --build ${CMAKE_BINARY_DIR})
set_tests_properties(chaos_quick PROPERTIES LABELS chaos TIMEOUT 180 RUN_SERIAL TRUE)
