# tests/integration/h2/h2.cmake: HTTP/2 integration tests (see CMakeLists.txt).
# Builds h2peer (scripted nghttp2 client / origin) and registers the Python scripts in this
# folder as integration/h2/<behaviour>, labels integration;intercept;h2.
if(NOT MITMD_TESTS)
  return()
endif()
# Debian's python3 first: a version manager's shim on PATH (pyenv) costs about a second per
# start, and the suite starts Python some thousand times
find_program(MITMD_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(MITMD_PYTHON3 python3 REQUIRED)

add_executable(h2peer ${CMAKE_CURRENT_LIST_DIR}/h2peer.c)
mitmd_target_setup(h2peer)
target_link_libraries(h2peer PRIVATE mitmd_boringssl PkgConfig::NGHTTP2)

# mitmd_add_h2_test(<behaviour>) registers tests/integration/h2/<behaviour>.py.
function(mitmd_add_h2_test name)
  set(script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${name}.py)
  add_test(NAME integration/h2/${name}
    COMMAND ${MITMD_PYTHON3} ${script} --mitmd $<TARGET_FILE:mitmd> --h2peer $<TARGET_FILE:h2peer>)
  set_tests_properties(integration/h2/${name} PROPERTIES TIMEOUT 120
    LABELS "integration;intercept;h2" ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endfunction()

mitmd_add_h2_test(upload_download_10mb)
mitmd_add_h2_test(parallel_one_connection)
mitmd_add_h2_test(streams_100_one_connection)
mitmd_add_h2_test(client_reset_propagates)
mitmd_add_h2_test(origin_goaway)
mitmd_add_h2_test(malformed_client_goaway)
# the relay's counters reach the master's statistics (worker/h2_conn.c adds them at close)
mitmd_add_h2_test(h2_errors_in_stats)
