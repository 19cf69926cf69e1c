# tests/integration/access/access.cmake - integration tests of access control: --proxyauth
# (USER:PASS, @htpasswd with bcrypt/SHA1/APR1, any) on CONNECT, plain absolute-form requests
# and SOCKS5 (RFC 1929), and block_global / block_private. Uses mitmd_add_integration_test
# from tests/integration/integration.cmake. Owner: the access work.
if(NOT MITMD_TESTS)
  return()
endif()
mitmd_add_integration_test(access/proxyauth_single_user INTERCEPT)
mitmd_add_integration_test(access/proxyauth_htpasswd INTERCEPT)
mitmd_add_integration_test(access/socks5_userpass INTERCEPT)
mitmd_add_integration_test(access/block_global_proxy_header INTERCEPT)
mitmd_add_integration_test(access/block_private INTERCEPT)
mitmd_add_integration_test(access/proxyauth_reverse_401 INTERCEPT)
mitmd_add_integration_test(access/proxyauth_transparent_401 INTERCEPT)
mitmd_add_integration_test(access/proxyauth_reverse_replay INTERCEPT)
# network namespaces need root: exits 77 without it
set_tests_properties(integration/access/proxyauth_transparent_401 PROPERTIES SKIP_RETURN_CODE 77)
