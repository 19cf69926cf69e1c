# tests/integration/edge/edge.cmake - integration tests of mitmd at the edge of a network:
# behind a PROXY protocol sender (Python clients, a real HAProxy) and as a transparent proxy
# in network namespaces. Uses mitmd_add_integration_test (tests/integration/integration.cmake).
# Owner: the PROXY protocol / transparent work.
if(NOT MITMD_TESTS)
  return()
endif()
mitmd_add_integration_test(edge/proxy_protocol_v1 INTERCEPT)
mitmd_add_integration_test(edge/proxy_protocol_v2 INTERCEPT)
mitmd_add_integration_test(edge/proxy_protocol_bad_header_closed INTERCEPT)
mitmd_add_integration_test(edge/proxy_protocol_haproxy INTERCEPT)
mitmd_add_integration_test(edge/transparent_netns INTERCEPT)
# these need a tool (haproxy) or root (network namespaces) and exit 77 without it
set_tests_properties(integration/edge/proxy_protocol_haproxy integration/edge/transparent_netns
  PROPERTIES SKIP_RETURN_CODE 77)
mitmd_add_integration_test(edge/tls_scan_testssl INTERCEPT)
set_tests_properties(integration/edge/tls_scan_testssl PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
