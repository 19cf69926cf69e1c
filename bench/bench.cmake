# bench/bench.cmake: module fragment (see CMakeLists.txt) - the load generator mitmd-bench,
# its unit tests and its smoke test against a local nginx TLS origin.
add_executable(mitmd-bench
  ${CMAKE_CURRENT_LIST_DIR}/mitmd_bench.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_conn.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_h2.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_hist.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_loop.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_opts.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_replay.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_report.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_resp.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_stats.c)
mitmd_target_setup(mitmd-bench)
target_link_libraries(mitmd-bench PRIVATE mitmd_shared mitmd_boringssl PkgConfig::NGHTTP2
  Threads::Threads m PkgConfig::JANSSON)

if(MITMD_TESTS)
  # End to end: nginx TLS origin + a CONNECT relay on free loopback ports (skips with 77 when
  # nginx, openssl or python3 is missing).
  add_test(NAME bench_smoke
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/smoke_test.sh $<TARGET_FILE:mitmd-bench>)
  set_tests_properties(bench_smoke PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
  # Nothing listening (127.0.0.1:1): mitmd-bench backs off, gives up within seconds with one
  # line naming the cause, after a handful of attempts.
  add_test(NAME bench_backoff
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/backoff_test.sh $<TARGET_FILE:mitmd-bench>)
  set_tests_properties(bench_backoff PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 60)
  # A GET on a reused keep-alive connection that the origin resets before answering is sent
  # again on a new connection (counted as retried); a POST is not.
  add_test(NAME bench_retry
    COMMAND python3 -B ${CMAKE_CURRENT_LIST_DIR}/retry_test.py $<TARGET_FILE:mitmd-bench>)
  set_tests_properties(bench_retry PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 60)
  # The suite's ratios, targets table and markdown (bench/suite/report.py, suite.py helpers).
  add_test(NAME bench_suite_report
    COMMAND python3 -B -m unittest -q test_suite
    WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/suite)
  set_tests_properties(bench_suite_report PROPERTIES TIMEOUT 60)
  # The suite's pictures: SVGs drawn by gnuplot from a result JSON (bench/suite/plot.py).
  add_test(NAME bench_suite_plot
    COMMAND python3 -B -m unittest -q test_plot
    WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/suite)
  set_tests_properties(bench_suite_plot PROPERTIES TIMEOUT 60)
endif()

# Unit tests of the bench's own modules (cmocka, one executable per module).
mitmd_add_unit_test(test_mb_resp SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mb_resp.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_resp.c LIBS mitmd_shared)
mitmd_add_unit_test(test_mb_hist SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mb_hist.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_hist.c LIBS m)
mitmd_add_unit_test(test_mb_opts SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mb_opts.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_opts.c LIBS mitmd_shared m)
mitmd_add_unit_test(test_mb_h2 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mb_h2.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_h2.c ${CMAKE_CURRENT_LIST_DIR}/mb_conn.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_resp.c ${CMAKE_CURRENT_LIST_DIR}/mb_opts.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_stats.c ${CMAKE_CURRENT_LIST_DIR}/mb_hist.c
  LIBS mitmd_shared PkgConfig::NGHTTP2 m)
# The set-up backoff's state machine (mb_loop.c is included by the test for its helpers).
mitmd_add_unit_test(test_mb_loop SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mb_loop.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_conn.c ${CMAKE_CURRENT_LIST_DIR}/mb_h2.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_resp.c ${CMAKE_CURRENT_LIST_DIR}/mb_opts.c
  ${CMAKE_CURRENT_LIST_DIR}/mb_stats.c ${CMAKE_CURRENT_LIST_DIR}/mb_hist.c
  LIBS mitmd_shared PkgConfig::NGHTTP2 m)
