# tests/integration/hardening/hardening.cmake - integration tests of the hardening work
# (master/worker boundary, privilege drop, reload). Uses mitmd_add_integration_test from
# tests/integration/integration.cmake. Owner: the hardening work.
if(NOT MITMD_TESTS)
  return()
endif()

# issue 10 item 2: workers run unprivileged, cannot open the CA key nor write the certcache
mitmd_add_integration_test(hardening/worker_denied_ca_key INTERCEPT)
set_tests_properties(integration/hardening/worker_denied_ca_key PROPERTIES SKIP_RETURN_CODE 77)
# issue 15 item 2 (master part): two failed worker set-ups stop the master
mitmd_add_integration_test(hardening/worker_setup_failure_stops_master)
set_tests_properties(integration/hardening/worker_setup_failure_stops_master
  PROPERTIES SKIP_RETURN_CODE 77)
# issue 10: a planned replacement (SIGHUP) is info, not an error
mitmd_add_integration_test(hardening/sighup_replacement_is_info INTERCEPT)
# issue 10 graceful reload (master side): new workers first, old ones drain; counters monotonic
mitmd_add_integration_test(hardening/sighup_new_workers_first INTERCEPT)
# issue 10 graceful stop (master side): a second SIGTERM stops at once
mitmd_add_integration_test(hardening/second_sigterm_stops_at_once INTERCEPT)
# a client that half-closes and then resets mid-response does not hold its connection open
mitmd_add_integration_test(hardening/client_reset_mid_response INTERCEPT)
# a nearly full pool closes its quiet connections without an exchange, oldest first
mitmd_add_integration_test(hardening/pool_reclaims_idle INTERCEPT)
# idle connections give their buffer pages back after a second of quiet
mitmd_add_integration_test(hardening/idle_conns_trimmed INTERCEPT)
mitmd_add_integration_test(hardening/tiny_records_burst INTERCEPT)
mitmd_add_integration_test(hardening/drain_after_handshake INTERCEPT)
