# worker/h2.cmake - HTTP/2 relay (worker/h2_relay), its unit test and the client-side fuzz
# target. Owner: W-h2.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/h2_relay.c)
