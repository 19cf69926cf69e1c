# worker/tls.cmake - TLS transport of the worker (owner: W-tls): tls_ctx, tls_conn, tls_peek,
# their unit test and the ClientHello SNI fuzz target.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/tls_conn.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_ctx.c
  ${CMAKE_CURRENT_LIST_DIR}/tls_peek.c)
