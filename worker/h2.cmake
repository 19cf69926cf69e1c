# worker/h2.cmake - HTTP/2 relay (worker/h2_relay.c: public API and pump; h2_stream.c: the
# stream pool, streams and bodies; h2_stage.c: body staging and its chunk pool; h2_window.c:
# receive-window autotuning; h2_forward.c: forwarding heads; h2_session.c: nghttp2
# callbacks; h2_answer.c: mitmd's own answers, the bridge's too), its unit test and the
# client-side and upstream-side fuzz targets. The test and the fuzzers list the relay's sources
# themselves so that they do not depend on the rest of the worker library.
set(MITMD_H2_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/h2_relay.c
  ${CMAKE_CURRENT_LIST_DIR}/h2_session.c
  ${CMAKE_CURRENT_LIST_DIR}/h2_stream.c
  ${CMAKE_CURRENT_LIST_DIR}/h2_stage.c
  ${CMAKE_CURRENT_LIST_DIR}/h2_window.c
  ${CMAKE_CURRENT_LIST_DIR}/h2_forward.c
  ${CMAKE_CURRENT_LIST_DIR}/h2_answer.c
  ${CMAKE_CURRENT_LIST_DIR}/flow_body.c
  ${CMAKE_CURRENT_LIST_DIR}/replay.c ${CMAKE_CURRENT_LIST_DIR}/replay_h2.c)
# reverse / transparent --proxyauth's 401 (worker/www_auth.h)
list(APPEND MITMD_H2_SOURCES ${CMAKE_CURRENT_LIST_DIR}/www_auth_h2.c)

target_sources(mitmd_worker PRIVATE ${MITMD_H2_SOURCES})
# the bridge to an HTTP/1.1 upstream under the relay (reverse mode; worker/h2_h1up.h)
target_sources(mitmd_worker PRIVATE ${CMAKE_CURRENT_LIST_DIR}/h2_h1up.c)

mitmd_add_unit_test(test_h2_relay
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_h2_relay.c
          ${MITMD_H2_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/flow.c ${CMAKE_CURRENT_LIST_DIR}/answer.c
  LIBS mitmd_shared mitmd_rules PkgConfig::NGHTTP2)

mitmd_add_fuzz_target(fuzz_h2_client
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_h2_client.c
          ${MITMD_H2_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/flow.c ${CMAKE_CURRENT_LIST_DIR}/answer.c
  LIBS mitmd_shared mitmd_rules PkgConfig::NGHTTP2
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/h2_client)

mitmd_add_fuzz_target(fuzz_h2_upstream
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_h2_upstream.c
          ${MITMD_H2_SOURCES} ${CMAKE_CURRENT_LIST_DIR}/flow.c ${CMAKE_CURRENT_LIST_DIR}/answer.c
  LIBS mitmd_shared mitmd_rules PkgConfig::NGHTTP2
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/h2_upstream)

# the staging of grown windows (base + chain of pool chunks), alone
mitmd_add_unit_test(test_h2_stage
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_h2_stage.c ${CMAKE_CURRENT_LIST_DIR}/h2_stage.c
  LIBS mitmd_shared)

mitmd_add_unit_test(test_h2_h1up
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_h2_h1up.c ${CMAKE_CURRENT_LIST_DIR}/h2_h1up.c
          ${CMAKE_CURRENT_LIST_DIR}/h2_answer.c ${CMAKE_CURRENT_LIST_DIR}/h1_head.c
          ${CMAKE_CURRENT_LIST_DIR}/answer.c ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_shared mitmd_rules PkgConfig::NGHTTP2)

mitmd_add_fuzz_target(fuzz_h2_h1up
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_h2_h1up.c ${CMAKE_CURRENT_LIST_DIR}/h2_h1up.c
          ${CMAKE_CURRENT_LIST_DIR}/h2_answer.c ${CMAKE_CURRENT_LIST_DIR}/h1_head.c
          ${CMAKE_CURRENT_LIST_DIR}/answer.c ${CMAKE_CURRENT_LIST_DIR}/flow.c
  LIBS mitmd_shared mitmd_rules PkgConfig::NGHTTP2
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/h2_h1up)
