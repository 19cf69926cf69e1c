# master/master.cmake - the master process (lead): loop, supervision, listeners, forging service.
target_sources(mitmd_master PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/master.c
  ${CMAKE_CURRENT_LIST_DIR}/supervise.c
  ${CMAKE_CURRENT_LIST_DIR}/listen.c
  ${CMAKE_CURRENT_LIST_DIR}/forge_service.c
  ${CMAKE_CURRENT_LIST_DIR}/metrics.c
  ${CMAKE_CURRENT_LIST_DIR}/sdnotify.c
  ${CMAKE_CURRENT_LIST_DIR}/upgrade.c
  ${CMAKE_CURRENT_LIST_DIR}/version.c)

mitmd_add_unit_test(test_forge_service SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_forge_service.c
  LIBS mitmd_master)

# Issue 10 item 1: the master's request handling (decode, copy, canonicalise, coalesce,
# forge, reply, queue) on hostile datagrams, with a real test CA. The replay driver runs the
# corpus in ctest.
mitmd_add_fuzz_target(fuzz_forge_request
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_forge_request.c
  LIBS mitmd_master
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/forge_request)

# test_master includes master.c (and forge_service.c) to reach the loop's static helpers.
mitmd_add_unit_test(test_master SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_master.c
  LIBS mitmd_master)

# test_supervise includes supervise.c to confine a forked child as a worker would be.
mitmd_add_unit_test(test_supervise SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_supervise.c
  LIBS mitmd_master)

# test_metrics includes metrics.c: the /metrics page, /healthz states, stats buckets.
mitmd_add_unit_test(test_metrics SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_metrics.c
  LIBS mitmd_master)

# The build tag (master/version.h): `mitmd --version` and mitmd_build_info{build=...}.
set(MITMD_BUILD_TAG "local" CACHE STRING "build tag shown by mitmd --version and /metrics")
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/version.c PROPERTIES
  COMPILE_DEFINITIONS "MITMD_BUILD_TAG=\"${MITMD_BUILD_TAG}\"")
mitmd_add_unit_test(test_upgrade SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_upgrade.c
  LIBS mitmd_master)
