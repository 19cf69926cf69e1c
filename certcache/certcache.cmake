# certcache/certcache.cmake - certcache/ (shared-memory certificate cache), shared/nameset
# (its key), their unit tests and the lookup micro-benchmark.
target_sources(mitmd_certcache PRIVATE ${CMAKE_CURRENT_LIST_DIR}/certcache.c
  ${CMAKE_CURRENT_LIST_DIR}/certstore.c)
target_sources(mitmd_shared PRIVATE ${PROJECT_SOURCE_DIR}/shared/nameset.c)

# test_certcache includes certcache.c to reach its internals (STYLE.md), so it links the
# certcache library's dependencies rather than the library.
mitmd_add_unit_test(test_certcache
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_certcache.c
  LIBS mitmd_shared PkgConfig::SODIUM)
mitmd_add_unit_test(test_nameset
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_nameset.c
  LIBS mitmd_shared)

add_executable(mitmd-bench-certcache ${PROJECT_SOURCE_DIR}/bench/bench_certcache.c)
mitmd_target_setup(mitmd-bench-certcache)
target_link_libraries(mitmd-bench-certcache PRIVATE mitmd_certcache mitmd_shared)

# certcache/certstore: the bundle of operator certificates (--certs, client_certs) and
# onboarding files the master hands its workers; the decoder is fuzzed, the rest unit-tested.
mitmd_add_fuzz_target(fuzz_certstore
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_certstore.c
  LIBS mitmd_certcache
  CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/certstore)
mitmd_add_unit_test(test_certstore SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_certstore.c
  ${PROJECT_SOURCE_DIR}/tests/unit/pki_testutil.c LIBS mitmd_certcache)
