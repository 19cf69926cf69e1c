# worker/replay.cmake - record and replay: body capture (worker/flow_body), HAR output
# (shared/har, worker/flow_har, master/har_file, `mitmd har`), server replay (shared/replay_index,
# worker/replay) and their tests.
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
target_sources(mitmd_shared PRIVATE ${PROJECT_SOURCE_DIR}/shared/har.c
  ${PROJECT_SOURCE_DIR}/shared/replay_key.c ${PROJECT_SOURCE_DIR}/shared/http_date.c)
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/flow_body.c
  ${CMAKE_CURRENT_LIST_DIR}/flow_har.c
  ${CMAKE_CURRENT_LIST_DIR}/replay.c
  ${CMAKE_CURRENT_LIST_DIR}/replay_h2.c
  ${CMAKE_CURRENT_LIST_DIR}/creplay.c)
target_sources(mitmd_master PRIVATE
  ${PROJECT_SOURCE_DIR}/master/creplay_load.c
  ${PROJECT_SOURCE_DIR}/master/har_file.c
  ${PROJECT_SOURCE_DIR}/master/har_cmd.c
  ${PROJECT_SOURCE_DIR}/master/replay_load.c
  ${PROJECT_SOURCE_DIR}/master/rfile.c
  ${PROJECT_SOURCE_DIR}/master/mitmflow.c)
target_link_libraries(mitmd_master PUBLIC PkgConfig::JANSSON)

# `mitmd har` on hostile lines: every record converts or is refused, never crashes.
mitmd_add_fuzz_target(fuzz_har_cmd
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_har_cmd.c
  LIBS mitmd_master
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/har_cmd)

mitmd_add_unit_test(test_replay SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_replay.c
  ${CMAKE_CURRENT_LIST_DIR}/flow_body.c ${CMAKE_CURRENT_LIST_DIR}/flow.c LIBS mitmd_shared)

# -S recordings on hostile input: the master's loader (jansson + index layout) and the
# worker's mapping check and lookup (tests/fuzz/fuzz_replay_load.c).
mitmd_add_fuzz_target(fuzz_replay_load
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_replay_load.c ${CMAKE_CURRENT_LIST_DIR}/replay.c
          ${CMAKE_CURRENT_LIST_DIR}/flow_body.c ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_master
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/replay_load)

# Server replay's key (form parsers, use_headers) and refresh (HTTP dates, Set-Cookie
# Expires) on hostile input (tests/fuzz/fuzz_replay_key.c).
mitmd_add_fuzz_target(fuzz_replay_key
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_replay_key.c
  LIBS mitmd_shared
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/replay_key)

# -r (master/rfile.c): a recording's record to flow mapping, round trip and refusals
# (tests/unit/test_rfile.c), and the same on hostile lines (tests/fuzz/fuzz_rfile.c).
set(MITMD_RFILE_SOURCES ${PROJECT_SOURCE_DIR}/master/rfile.c
  ${PROJECT_SOURCE_DIR}/master/mitmflow.c ${CMAKE_CURRENT_LIST_DIR}/flowfilter.c ${CMAKE_CURRENT_LIST_DIR}/flowfilter_eval.c
  ${CMAKE_CURRENT_LIST_DIR}/flow.c)
mitmd_add_unit_test(test_rfile SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_rfile.c
  ${MITMD_RFILE_SOURCES} LIBS mitmd_shared PkgConfig::PCRE2 PkgConfig::JANSSON)
mitmd_add_fuzz_target(fuzz_rfile
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_rfile.c ${MITMD_RFILE_SOURCES}
  LIBS mitmd_shared PkgConfig::PCRE2 PkgConfig::JANSSON
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/rfile)

# mitmproxy's own flow files (master/mitmflow.c) for -r and -S: a real mitmdump 8.1.1 file
# converted (tests/unit/test_mitmflow.c), and hostile tnetstrings (tests/fuzz/fuzz_mitmflow.c:
# every flow converts to a record -r reads, or is refused with a reason).
mitmd_add_unit_test(test_mitmflow SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_mitmflow.c
  ${MITMD_RFILE_SOURCES} LIBS mitmd_shared PkgConfig::PCRE2 PkgConfig::JANSSON)
mitmd_add_fuzz_target(fuzz_mitmflow
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_mitmflow.c ${MITMD_RFILE_SOURCES}
  LIBS mitmd_shared PkgConfig::PCRE2 PkgConfig::JANSSON
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/mitmflow)
if(MITMD_TESTS)
  target_compile_definitions(test_mitmflow PRIVATE
    MITMFLOW_FIXTURE="${PROJECT_SOURCE_DIR}/tests/unit/data/mitmdump-8.1.1.flows")
endif()

# client replay (master/creplay_load.c): a record becomes the request -C sends, mitmdump 8.1.1's
# flows included (tests/unit/test_creplay.c); hostile records either are refused or give one
# request head that parses (tests/fuzz/fuzz_creplay.c).
set(MITMD_CREPLAY_SOURCES ${PROJECT_SOURCE_DIR}/master/creplay_load.c
  ${PROJECT_SOURCE_DIR}/master/replay_load.c ${PROJECT_SOURCE_DIR}/master/supervise.c)
mitmd_add_unit_test(test_creplay SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_creplay.c
  ${MITMD_CREPLAY_SOURCES} ${MITMD_RFILE_SOURCES} LIBS mitmd_shared PkgConfig::PCRE2 PkgConfig::JANSSON)
if(MITMD_TESTS)
  target_compile_definitions(test_creplay PRIVATE
    MITMFLOW_FIXTURE="${PROJECT_SOURCE_DIR}/tests/unit/data/mitmdump-8.1.1.flows")
endif()
mitmd_add_fuzz_target(fuzz_creplay
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_creplay.c ${MITMD_CREPLAY_SOURCES}
  ${MITMD_RFILE_SOURCES}
  LIBS mitmd_shared PkgConfig::PCRE2 PkgConfig::JANSSON
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/creplay)
