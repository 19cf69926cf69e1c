# worker/h2.cmake - HTTP/2 relay (worker/h2_relay), its unit test and the client-side fuzz
# target. Owner: W-h2.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/h2_relay.c)

mitmd_add_unit_test(test_h2_relay
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_h2_relay.c
          ${CMAKE_CURRENT_LIST_DIR}/h2_relay.c ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_shared PkgConfig::NGHTTP2)
