# tests/integration/modes/modes.cmake - integration tests of --mode (socks5, reverse) and its
# option syntax, with real clients (curl, h2load, Python sockets). Uses
# mitmd_add_integration_test from tests/integration/integration.cmake. Owner: the modes work.
if(NOT MITMD_TESTS)
  return()
endif()
mitmd_add_integration_test(modes/socks5_intercepts INTERCEPT)
mitmd_add_integration_test(modes/socks5_refusals INTERCEPT)
mitmd_add_integration_test(modes/reverse_proxy INTERCEPT)
mitmd_add_integration_test(modes/mode_option INTERCEPT)
mitmd_add_integration_test(modes/upstream_next_hop INTERCEPT)
mitmd_add_integration_test(modes/reverse_host_header INTERCEPT)
mitmd_add_integration_test(modes/reverse_h2_authority INTERCEPT)
mitmd_add_integration_test(modes/reverse_cross_scheme INTERCEPT)
# several listeners in one mitmd (--mode repeatable with @[HOST:]PORT)
mitmd_add_integration_test(modes/several_listeners INTERCEPT)
mitmd_add_integration_test(modes/same_address_refused)
mitmd_add_integration_test(modes/default_port_per_mode)
mitmd_add_integration_test(modes/listen_host_all_addresses INTERCEPT)
