# worker/h2.cmake - HTTP/2 relay (worker/h2_relay), its unit test and the client-side fuzz
# target. Owner: W-h2.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/h2_relay.c)

mitmd_add_unit_test(test_h2_relay
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_h2_relay.c
          ${CMAKE_CURRENT_LIST_DIR}/h2_relay.c ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_shared PkgConfig::NGHTTP2)

mitmd_add_fuzz_target(fuzz_h2_client
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_h2_client.c
          ${CMAKE_CURRENT_LIST_DIR}/h2_relay.c ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_shared PkgConfig::NGHTTP2
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/h2_client)

mitmd_add_fuzz_target(fuzz_h2_upstream
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_h2_upstream.c
          ${CMAKE_CURRENT_LIST_DIR}/h2_relay.c ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_shared PkgConfig::NGHTTP2
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/h2_upstream)
