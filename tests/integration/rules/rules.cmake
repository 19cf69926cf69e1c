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
mitmd_add_integration_test(rules/map_local_files INTERCEPT)
mitmd_add_integration_test(rules/h1_latency_stall INTERCEPT)
mitmd_add_integration_test(rules/modify_body INTERCEPT)
