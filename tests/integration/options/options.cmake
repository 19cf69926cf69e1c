# tests/integration/options/options.cmake - integration tests of the command line, --set,
# config.yaml, start-up checks and the CA files. Uses mitmd_add_integration_test from
# tests/integration/integration.cmake. Owner: the options work.
if(NOT MITMD_TESTS)
  return()
endif()
mitmd_add_integration_test(options/mitmproxy_option_names INTERCEPT)
mitmd_add_integration_test(options/config_yaml_applied INTERCEPT)
mitmd_add_integration_test(options/bad_options_exit_2)
mitmd_add_integration_test(options/mitmproxy_ca_reused INTERCEPT)
mitmd_add_integration_test(options/listen_host_localhost INTERCEPT)
mitmd_add_integration_test(options/bare_lf_heads INTERCEPT)
mitmd_add_integration_test(options/tls_versions_anticache INTERCEPT)
mitmd_add_integration_test(options/connect_addr INTERCEPT)
mitmd_add_integration_test(options/showhost INTERCEPT)
