# bench/bench.cmake: module fragment (see CMakeLists.txt) - the load generator mitmd-bench,
# its unit tests and its smoke test against a local nginx TLS origin.
add_executable(mitmd-bench
  ${CMAKE_CURRENT_LIST_DIR}/mitmd_bench.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_conn.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_hist.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_loop.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_opts.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_report.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_resp.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_stats.c)
mitmd_target_setup(mitmd-bench)
target_link_libraries(mitmd-bench PRIVATE mitmd_boringssl Threads::Threads m)
