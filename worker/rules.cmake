# worker/rules.cmake - flow filters (worker/flowfilter.c: mitmproxy's filter language on PCRE2)
# and the rules compiled from them (worker/rules_parse.c: the specs; worker/rules.c: the
# verdicts of modify_headers, map_remote, block_list, inject_latency, inject_error/inject_fault),
# their unit tests, the filter fuzz target and the evaluation micro-benchmark (built, not run by
# ctest).
if(NOT TARGET PkgConfig::PCRE2)
  mitmd_require_pkg(PCRE2 libpcre2-8 libpcre2-dev)
endif()

set(MITMD_RULES_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/flowfilter.c ${CMAKE_CURRENT_LIST_DIR}/flowfilter_eval.c
  ${CMAKE_CURRENT_LIST_DIR}/rules.c ${CMAKE_CURRENT_LIST_DIR}/rules_parse.c
  ${CMAKE_CURRENT_LIST_DIR}/maplocal.c)

# mitmd_rules: the filter language, the rules and the flow record they read. Both processes
# link it: workers evaluate, the master checks every expression before it says "listening".
add_library(mitmd_rules STATIC ${MITMD_RULES_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/flow.c)
mitmd_target_setup(mitmd_rules)
target_include_directories(mitmd_rules PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(mitmd_rules PUBLIC mitmd_shared PkgConfig::PCRE2)
target_link_libraries(mitmd_worker PUBLIC mitmd_rules)
target_link_libraries(mitmd_master PUBLIC mitmd_rules)

mitmd_add_unit_test(test_flowfilter
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_flowfilter.c
          ${CMAKE_CURRENT_LIST_DIR}/flowfilter.c ${CMAKE_CURRENT_LIST_DIR}/flowfilter_eval.c ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_shared PkgConfig::PCRE2)

mitmd_add_unit_test(test_rules
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_rules.c
          ${MITMD_RULES_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_shared PkgConfig::PCRE2)

mitmd_add_fuzz_target(fuzz_flowfilter
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_flowfilter.c
          ${CMAKE_CURRENT_LIST_DIR}/flowfilter.c ${CMAKE_CURRENT_LIST_DIR}/flowfilter_eval.c ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_shared PkgConfig::PCRE2
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/flowfilter)

mitmd_add_fuzz_target(fuzz_rules
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_rules.c
          ${MITMD_RULES_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_shared PkgConfig::PCRE2
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/rules)

# bench_flowfilter prints ns per evaluation for a few expressions (not a ctest test: timing).
if(MITMD_TESTS)
  add_executable(bench_flowfilter ${PROJECT_SOURCE_DIR}/tests/unit/bench_flowfilter.c
    ${MITMD_RULES_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/flow.c)
  mitmd_target_setup(bench_flowfilter)
  target_link_libraries(bench_flowfilter PRIVATE mitmd_shared PkgConfig::PCRE2)
endif()

# the rules' deadline timer (inject_latency, inject_fault stall) on the worker's ring
target_sources(mitmd_worker PRIVATE ${CMAKE_CURRENT_LIST_DIR}/rules_timer.c)

mitmd_add_fuzz_target(fuzz_maplocal
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_maplocal.c ${CMAKE_CURRENT_LIST_DIR}/maplocal.c
  LIBS mitmd_shared PkgConfig::PCRE2
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/maplocal)
