# tests/integration/certs/certs.cmake - integration tests of the operator's certificates
# (--certs, client_certs) and the onboarding page (mitm.it), with curl, openssl s_client,
# a Python origin requiring client certificates and (when installed) headless Chromium.
# Uses mitmd_add_integration_test from tests/integration/integration.cmake.
if(NOT MITMD_TESTS)
  return()
endif()
mitmd_add_integration_test(certs/certs_served INTERCEPT)
mitmd_add_integration_test(certs/client_certs_upstream INTERCEPT)
