# tests/integration/integration.cmake: module fragment (see CMakeLists.txt).
# Registers the integration tests: Python 3 scripts (standard library only) that drive curl,
# openssl s_client and Python clients through a real mitmd to local nginx / Python origins.
# Test name integration/<area>/<behaviour> = tests/integration/<area>/<behaviour>.py.
# Every test has label "integration"; those that need the worker's interception also "intercept".
if(NOT MITMD_TESTS)
  return()
endif()
# Debian's python3 first: a version manager's shim on PATH (pyenv) costs about a second per
# start, and the suite starts Python some thousand times
find_program(MITMD_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(MITMD_PYTHON3 python3 REQUIRED)

# mitmd_add_integration_test(<area>/<behaviour> [INTERCEPT] [LABELS l...]) registers one script.
function(mitmd_add_integration_test name)
  cmake_parse_arguments(T "INTERCEPT" "" "LABELS" ${ARGN})
  set(script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/${name}.py)
  add_test(NAME integration/${name}
    COMMAND ${MITMD_PYTHON3} ${script} --mitmd $<TARGET_FILE:mitmd>)
  set(labels integration)
  if(T_INTERCEPT)
    list(APPEND labels intercept)
  endif()
  list(APPEND labels ${T_LABELS})
  set_tests_properties(integration/${name} PROPERTIES TIMEOUT 120 LABELS "${labels}"
    ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endfunction()

# master: CA lifecycle, supervision, command line (no interception needed)
mitmd_add_integration_test(master/ca_files_created)
mitmd_add_integration_test(master/workers_supervised)
mitmd_add_integration_test(master/cert_command)
mitmd_add_integration_test(master/sighup_restarts_workers INTERCEPT)
mitmd_add_integration_test(master/sigterm_drains INTERCEPT)
mitmd_add_integration_test(master/workers_balanced INTERCEPT)
mitmd_add_integration_test(master/sigusr1_counts_latest INTERCEPT)

# intercept: HTTPS through the worker (CONNECT, forged certs, relay)
mitmd_add_integration_test(intercept/https_get INTERCEPT)
mitmd_add_integration_test(intercept/large_body_sha256 INTERCEPT)
mitmd_add_integration_test(intercept/forged_cert_names INTERCEPT)
mitmd_add_integration_test(intercept/connect_ip_no_sni INTERCEPT)
mitmd_add_integration_test(intercept/streaming_incremental INTERCEPT)
mitmd_add_integration_test(intercept/keepalive_one_upstream INTERCEPT)
mitmd_add_integration_test(intercept/keepalive_after_idle INTERCEPT)
mitmd_add_integration_test(intercept/ignore_hosts_passthrough INTERCEPT)
mitmd_add_integration_test(intercept/untrusted_client_visible INTERCEPT)
mitmd_add_integration_test(intercept/allow_hosts INTERCEPT)
mitmd_add_integration_test(intercept/forged_cert_cached INTERCEPT)
mitmd_add_integration_test(intercept/bodyless_responses INTERCEPT)
mitmd_add_integration_test(intercept/pipelined_requests INTERCEPT)
mitmd_add_integration_test(intercept/many_hostnames_cache_eviction INTERCEPT)
# HTTP/2 relay (more in h2/h2.cmake); label h2: `ctest -L h2` runs them alone
mitmd_add_integration_test(intercept/http2_relay INTERCEPT LABELS h2)
# upstream: failures answered with a reason
mitmd_add_integration_test(upstream/broken_cert_502 INTERCEPT)
mitmd_add_integration_test(upstream/unreachable_502 INTERCEPT)
mitmd_add_integration_test(upstream/truncated_body INTERCEPT)
mitmd_add_integration_test(upstream/wildcard_resume INTERCEPT)
mitmd_add_integration_test(upstream/resumed_names INTERCEPT)
mitmd_add_integration_test(upstream/https_absolute_form INTERCEPT)
# proxy: protocol handling, robustness, load
mitmd_add_integration_test(proxy/plain_http INTERCEPT)
mitmd_add_integration_test(proxy/resolve_override INTERCEPT)
mitmd_add_integration_test(proxy/malformed_requests INTERCEPT)
mitmd_add_integration_test(proxy/concurrent_clients INTERCEPT)
mitmd_add_integration_test(proxy/timeouts INTERCEPT)
mitmd_add_integration_test(proxy/body_framing_random INTERCEPT)
mitmd_add_integration_test(proxy/header_size_limit INTERCEPT)
mitmd_add_integration_test(proxy/client_abort INTERCEPT)
mitmd_add_integration_test(proxy/hop_by_hop_fields INTERCEPT)
mitmd_add_integration_test(proxy/after_connect INTERCEPT)
mitmd_add_integration_test(proxy/loop_refused INTERCEPT)
# flows: the -w JSON Lines file
mitmd_add_integration_test(flows/jsonl_one_line_per_exchange INTERCEPT)
mitmd_add_integration_test(flows/quiet_flag INTERCEPT)
mitmd_add_integration_test(flows/rfile INTERCEPT)
mitmd_add_integration_test(flows/failed_connect_recorded INTERCEPT)
mitmd_add_integration_test(flows/sigterm_mid_load INTERCEPT)
mitmd_add_integration_test(flows/websocket_message_lines)
