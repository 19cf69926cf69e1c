# tests/integration/longpath/longpath.cmake: HTTP/2 over a long path (see CMakeLists.txt).
# The delay comes from bench/delayline (userspace; the kernel here has no netem). Registers
# tests/integration/longpath/<behaviour>.py as integration/longpath/<behaviour>, labels
# integration;intercept;h2;longpath. They measure throughput: run them alone (RUN_SERIAL).
if(NOT MITMD_TESTS)
  return()
endif()
find_program(MITMD_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(MITMD_PYTHON3 python3 REQUIRED)

# Throughput is what these tests assert, with room for a shared machine: a stream held to one
# 64 KiB window per round trip (the bug they guard against) measures 0.09x; bench/longpath.sh
# measures the figure itself (0.96-0.99x at 100 Mbit/s). A sanitizer or unoptimised build only
# has to keep the path usable (bodies intact, well above one window per round trip).
set(MITMD_LONGPATH_MIN_RATIO 0.75)
if(MITMD_ASAN OR MITMD_UBSAN OR MITMD_TSAN OR CMAKE_BUILD_TYPE STREQUAL "Debug")
  set(MITMD_LONGPATH_MIN_RATIO 0.6)
endif()

function(mitmd_add_longpath_test name)
  set(script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${name}.py)
  add_test(NAME integration/longpath/${name}
    COMMAND ${MITMD_PYTHON3} ${script} --mitmd $<TARGET_FILE:mitmd>
            --delayline $<TARGET_FILE:delayline> --h2peer $<TARGET_FILE:h2peer>
            --min-ratio ${MITMD_LONGPATH_MIN_RATIO})
  set_tests_properties(integration/longpath/${name} PROPERTIES TIMEOUT 180 RUN_SERIAL TRUE
    LABELS "integration;intercept;h2;longpath" ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endfunction()

# the delay between mitmd and the origin: mitmd's window toward the origin
mitmd_add_longpath_test(h2_download_50ms)
# the delay between the client and mitmd: mitmd's window toward the client
mitmd_add_longpath_test(h2_upload_50ms)
