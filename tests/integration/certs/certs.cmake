# tests/integration/certs/certs.cmake - integration tests of the operator's certificates
# (--certs, client_certs) and the onboarding page (mitm.it), with curl, openssl s_client,
# a Python origin requiring client certificates and (when installed) headless Chromium.
# Uses mitmd_add_integration_test from tests/integration/integration.cmake.
if(NOT MITMD_TESTS)
  return()
endif()
mitmd_add_integration_test(certs/certs_served INTERCEPT)
mitmd_add_integration_test(certs/client_certs_upstream INTERCEPT)
mitmd_add_integration_test(certs/onboarding_page)
# Headless Chromium through mitmd (~10 s, most of it Chromium's own start-up): registered only
# where Chromium is installed (Debian package chromium, in tests/install-deps).
find_program(MITMD_CHROMIUM NAMES chromium chromium-browser)
if(MITMD_CHROMIUM)
  mitmd_add_integration_test(certs/onboarding_chromium LABELS chromium)
endif()
mitmd_add_integration_test(certs/upstream_trusted_confdir INTERCEPT)
mitmd_add_integration_test(certs/add_upstream_certs INTERCEPT)
