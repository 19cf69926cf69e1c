# worker/worker.cmake - the worker process core: loop, ring glue, connection pool and
# lifecycle, transports, upstream dialling, mitmd's own answers, the connection protocols
# (proxy request, tunnel, intercept, HTTP/1.1 and HTTP/2 glue), resolver, master channel,
# flow output.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/worker.c
  ${CMAKE_CURRENT_LIST_DIR}/ring.c
  ${CMAKE_CURRENT_LIST_DIR}/conn.c
  ${CMAKE_CURRENT_LIST_DIR}/transport.c
  ${CMAKE_CURRENT_LIST_DIR}/upstream.c
  ${CMAKE_CURRENT_LIST_DIR}/answer.c
  ${CMAKE_CURRENT_LIST_DIR}/modes.c
  ${CMAKE_CURRENT_LIST_DIR}/proxy_req.c
  ${CMAKE_CURRENT_LIST_DIR}/tunnel.c
  ${CMAKE_CURRENT_LIST_DIR}/intercept.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_alert.c
  ${CMAKE_CURRENT_LIST_DIR}/h1_conn.c
  ${CMAKE_CURRENT_LIST_DIR}/h2_conn.c
  ${CMAKE_CURRENT_LIST_DIR}/dns.c
  ${CMAKE_CURRENT_LIST_DIR}/ipc.c
  ${CMAKE_CURRENT_LIST_DIR}/flow_out.c)

mitmd_add_unit_test(test_ring SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_ring.c
  LIBS mitmd_worker)
mitmd_add_unit_test(test_ipc SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_ipc.c
  LIBS mitmd_worker)
mitmd_add_unit_test(test_dns SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_dns.c
  ${CMAKE_CURRENT_LIST_DIR}/ring.c LIBS mitmd_shared PkgConfig::CARES PkgConfig::URING)
mitmd_add_unit_test(test_flow_out SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_flow_out.c
  LIBS mitmd_worker)
# The connection loop with a stub protocol over a real ring and sockets.
mitmd_add_unit_test(test_conn SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_conn.c
  LIBS mitmd_worker)
mitmd_add_unit_test(test_tls_alert SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_tls_alert.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_alert.c)
mitmd_add_fuzz_target(fuzz_tls_alert
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_tls_alert.c ${CMAKE_CURRENT_LIST_DIR}/tls_alert.c
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/tls_alert)
