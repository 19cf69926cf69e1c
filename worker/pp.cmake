# worker/pp.cmake - the PROXY protocol (shared/proxy_proto: parser and formatter; worker/
# proxy_hdr: the protocol that reads the header before a listener's mode starts) and the
# transparent mode's first protocol (worker/transparent), with their unit test, fuzz target
# and integration tests (tests/integration/edge). Owner: the PROXY protocol / transparent work.
target_sources(mitmd_shared PRIVATE ${PROJECT_SOURCE_DIR}/shared/proxy_proto.c)
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/proxy_hdr.c
  ${CMAKE_CURRENT_LIST_DIR}/transparent.c)

mitmd_add_unit_test(test_proxy_proto SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_proxy_proto.c
  LIBS mitmd_shared)

# In a fuzz build the parser is compiled into the fuzzer for coverage (see parsers.cmake).
set(MITMD_PP_FUZZ_SOURCES "")
if(MITMD_FUZZ)
  set(MITMD_PP_FUZZ_SOURCES ${PROJECT_SOURCE_DIR}/shared/proxy_proto.c)
endif()
mitmd_add_fuzz_target(fuzz_proxy_proto
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_proxy_proto.c ${MITMD_PP_FUZZ_SOURCES}
  LIBS mitmd_shared CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/proxy_proto)
