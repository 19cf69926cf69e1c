# master/ca_forge.cmake - the CA lifecycle, the forging service, `mitmd cert`, config.yaml and
# the start-up checks (master/config_yaml, master/preflight).
target_sources(mitmd_master PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/ca.c
  ${CMAKE_CURRENT_LIST_DIR}/forge.c
  ${CMAKE_CURRENT_LIST_DIR}/cert_cmd.c
  ${CMAKE_CURRENT_LIST_DIR}/config_yaml.c
  ${CMAKE_CURRENT_LIST_DIR}/preflight.c
  ${CMAKE_CURRENT_LIST_DIR}/certs_pass.c
  ${CMAKE_CURRENT_LIST_DIR}/ca_dir.c)
# config.yaml (libyaml); MITMD pkg target YAML comes from shared/shared.cmake.
target_link_libraries(mitmd_master PUBLIC PkgConfig::YAML)

mitmd_add_unit_test(test_forge SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_forge.c
  ${PROJECT_SOURCE_DIR}/tests/unit/pki_testutil.c
  LIBS mitmd_master)
mitmd_add_unit_test(test_ca SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_ca.c
  ${PROJECT_SOURCE_DIR}/tests/unit/pki_testutil.c
  LIBS mitmd_master)

# The forging micro-benchmark lives in bench/ with the other benchmarks.
add_executable(mitmd-bench-forge ${PROJECT_SOURCE_DIR}/bench/bench_forge.c)
mitmd_target_setup(mitmd-bench-forge)
target_link_libraries(mitmd-bench-forge PRIVATE mitmd_master)

# master/listen.c (listed in master/master.cmake): names resolved, several listeners.
mitmd_add_unit_test(test_listen SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_listen.c
  LIBS mitmd_master)
