# worker/tls.cmake - TLS transport of the worker (owner: W-tls): tls_ctx, tls_conn, tls_peek,
# their unit test and the ClientHello SNI fuzz target.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/tls_conn.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_ctx.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_peek.c)
# The test compiles the TLS sources itself so that it does not depend on the rest of the
# worker library.
mitmd_add_unit_test(test_tls_conn SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_tls_conn.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_conn.c ${CMAKE_CURRENT_LIST_DIR}/tls_ctx.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_peek.c
  LIBS mitmd_shared)
mitmd_add_fuzz_target(fuzz_client_hello
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_client_hello.c ${CMAKE_CURRENT_LIST_DIR}/tls_peek.c
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/client_hello)
