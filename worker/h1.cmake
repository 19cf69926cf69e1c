# worker/h1.cmake - HTTP/1.1 relay state machine and flow records (worker/h1_relay, worker/flow)
# and their unit tests. Owner: W-h1.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/flow.c
  ${CMAKE_CURRENT_LIST_DIR}/h1_relay.c)
