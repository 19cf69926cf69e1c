# worker/modes.cmake - the proxy modes other than regular (worker/socks5, worker/reverse;
# upstream mode is regular with worker/upstream.c dialling through the next proxy), the
# grammars they need (shared/mode_spec, shared/socks5_parse), their unit tests and fuzz
# targets. worker/modes.c itself is listed in worker/worker.cmake.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/socks5.c
  ${CMAKE_CURRENT_LIST_DIR}/reverse.c
  ${CMAKE_CURRENT_LIST_DIR}/www_auth.c)
target_sources(mitmd_shared PRIVATE
  ${PROJECT_SOURCE_DIR}/shared/mode_spec.c
  ${PROJECT_SOURCE_DIR}/shared/socks5_parse.c)

mitmd_add_unit_test(test_socks5_parse
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_socks5_parse.c LIBS mitmd_shared)
mitmd_add_unit_test(test_mode_spec
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_mode_spec.c LIBS mitmd_shared)
mitmd_add_unit_test(test_config_modes
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_config_modes.c LIBS mitmd_shared)

# In a fuzz build the parser is compiled into the fuzzer too, for coverage instrumentation
# (as shared/parsers.cmake does).
set(MITMD_SOCKS5_FUZZ_SOURCES "")
if(MITMD_FUZZ)
  set(MITMD_SOCKS5_FUZZ_SOURCES ${PROJECT_SOURCE_DIR}/shared/socks5_parse.c)
endif()
mitmd_add_fuzz_target(fuzz_socks5
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_socks5.c ${MITMD_SOCKS5_FUZZ_SOURCES}
  LIBS mitmd_shared CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/socks5)

set(MITMD_MODE_SPEC_FUZZ_SOURCES "")
if(MITMD_FUZZ)
  set(MITMD_MODE_SPEC_FUZZ_SOURCES ${PROJECT_SOURCE_DIR}/shared/mode_spec.c
    ${PROJECT_SOURCE_DIR}/shared/target_parse.c)
endif()
mitmd_add_fuzz_target(fuzz_mode_spec
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_mode_spec.c ${MITMD_MODE_SPEC_FUZZ_SOURCES}
  LIBS mitmd_shared CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/mode_spec)

mitmd_add_unit_test(test_reverse SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_reverse.c
  LIBS mitmd_worker)
