# tests/integration/rules/rules.cmake - integration tests of flow filters and rules (the
# positional filter, dumper_filter, save_stream_filter). Uses mitmd_add_integration_test from
# tests/integration/integration.cmake.
if(NOT MITMD_TESTS)
  return()
endif()
mitmd_add_integration_test(rules/view_filter_positional INTERCEPT)
mitmd_add_integration_test(rules/bad_filter_stops_startup)
mitmd_add_integration_test(rules/rules_applied INTERCEPT)
mitmd_add_integration_test(rules/h2_rules_applied INTERCEPT)
mitmd_add_integration_test(rules/h2_map_remote_other_host INTERCEPT)
mitmd_add_integration_test(rules/map_local_files INTERCEPT)
mitmd_add_integration_test(rules/h1_latency_stall INTERCEPT)
mitmd_add_integration_test(rules/stream_large_bodies INTERCEPT)
# modify_body also posts to h2peer's HTTP/2 origin (tests/integration/h2/h2.cmake builds it)
add_test(NAME integration/rules/modify_body
  COMMAND ${MITMD_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/modify_body.py --mitmd $<TARGET_FILE:mitmd>
          --h2peer $<TARGET_FILE:h2peer>)
set_tests_properties(integration/rules/modify_body PROPERTIES TIMEOUT 120
  LABELS "integration;intercept" ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
add_test(NAME integration/rules/h2_fault_one_stream
  COMMAND ${MITMD_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/h2_fault_one_stream.py
          --mitmd $<TARGET_FILE:mitmd> --h2peer $<TARGET_FILE:h2peer>)
set_tests_properties(integration/rules/h2_fault_one_stream PROPERTIES TIMEOUT 120
  LABELS "integration;intercept" ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
mitmd_add_integration_test(rules/map_remote_keepalive_home INTERCEPT)
