# worker/worker.cmake - the worker process core (owner: W-loop): loop, ring glue, connection
# pool and lifecycle, proxy protocol, interception glue, resolver, master channel, flow output.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/worker.c
  ${CMAKE_CURRENT_LIST_DIR}/ring.c
  ${CMAKE_CURRENT_LIST_DIR}/conn.c
  ${CMAKE_CURRENT_LIST_DIR}/proxy_req.c
  ${CMAKE_CURRENT_LIST_DIR}/intercept.c
  ${CMAKE_CURRENT_LIST_DIR}/dns.c
  ${CMAKE_CURRENT_LIST_DIR}/ipc.c
  ${CMAKE_CURRENT_LIST_DIR}/flow_out.c)
