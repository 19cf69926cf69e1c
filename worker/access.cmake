# worker/access.cmake - access control: --proxyauth (shared/proxyauth: spec, htpasswd file,
# Basic credentials, verification with libxcrypt / BoringSSL / libsodium) and block_global /
# block_private (worker/access), their unit tests and fuzz target. Owner: the access work.
find_library(MITMD_LIBCRYPT crypt)
if(NOT MITMD_LIBCRYPT OR NOT EXISTS /usr/include/crypt.h)
  message(FATAL_ERROR "libxcrypt not found: apt-get install libcrypt-dev")
endif()
target_sources(mitmd_shared PRIVATE ${PROJECT_SOURCE_DIR}/shared/proxyauth.c)
target_link_libraries(mitmd_shared PUBLIC ${MITMD_LIBCRYPT})
target_sources(mitmd_worker PRIVATE ${CMAKE_CURRENT_LIST_DIR}/access.c)

mitmd_add_unit_test(test_proxyauth SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_proxyauth.c
  LIBS mitmd_shared)
mitmd_add_unit_test(test_access SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_access.c
  LIBS mitmd_worker)

# In a fuzz build the parser is compiled into the fuzzer too, for coverage (parsers.cmake).
set(MITMD_PROXYAUTH_FUZZ_SOURCES "")
if(MITMD_FUZZ)
  set(MITMD_PROXYAUTH_FUZZ_SOURCES ${PROJECT_SOURCE_DIR}/shared/proxyauth.c)
endif()
mitmd_add_fuzz_target(fuzz_proxyauth
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_proxyauth.c ${MITMD_PROXYAUTH_FUZZ_SOURCES}
  LIBS mitmd_shared CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/proxyauth)
