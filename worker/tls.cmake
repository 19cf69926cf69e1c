# worker/tls.cmake - TLS transport of the worker: tls_ctx (the contexts), tls_conn (one SSL over
# memory staging; tls_conn_io: staging, read, write; tls_conn_peer: the peer certificate;
# tls_peer_cache: what it gave, per leaf),
# tls_sess (upstream session cache, keys, wildcard reuse), tls_peek (ClientHello SNI peek);
# their unit tests and the ClientHello SNI fuzz target.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/tls_conn.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_conn_io.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_conn_peer.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_ctx.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_peek.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_peer_cache.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_sess.c
  ${CMAKE_CURRENT_LIST_DIR}/onboarding.c) # the CA files of tls_ctx's certificate bundle
# The tests compile the TLS sources themselves so that they do not depend on the rest of the
# worker library.
mitmd_add_unit_test(test_tls_conn SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_tls_conn.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_conn.c ${CMAKE_CURRENT_LIST_DIR}/tls_conn_io.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_conn_peer.c ${CMAKE_CURRENT_LIST_DIR}/tls_ctx.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_peek.c ${CMAKE_CURRENT_LIST_DIR}/tls_sess.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_peer_cache.c ${PROJECT_SOURCE_DIR}/certcache/certstore.c
  LIBS mitmd_shared)
mitmd_add_unit_test(test_tls_sess SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_tls_sess.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_sess.c
  LIBS mitmd_shared)
mitmd_add_fuzz_target(fuzz_client_hello
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_client_hello.c ${CMAKE_CURRENT_LIST_DIR}/tls_peek.c
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/client_hello)
mitmd_add_unit_test(test_onboarding SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_onboarding.c
  LIBS mitmd_worker)
