# tests/integration/hardening/hardening.cmake - integration tests of the hardening work
# (master/worker boundary, privilege drop, reload). Uses mitmd_add_integration_test from
# tests/integration/integration.cmake. Owner: the hardening work.
if(NOT MITMD_TESTS)
  return()
endif()
