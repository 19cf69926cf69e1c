# shared/parsers.cmake - HTTP/1.x head parser, chunked decoder and proxy-target parser
# (shared/h1_parse, shared/target_parse), their unit tests and fuzz targets.
target_sources(mitmd_shared PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/h1_parse.c
  ${CMAKE_CURRENT_LIST_DIR}/target_parse.c
  ${CMAKE_CURRENT_LIST_DIR}/ws_frame.c)

mitmd_add_unit_test(test_h1_parse SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_h1_parse.c
  LIBS mitmd_shared)
mitmd_add_unit_test(test_target_parse SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_target_parse.c
  LIBS mitmd_shared)

# In a fuzz build the parsers are compiled into each fuzzer too, so that they get the
# -fsanitize=fuzzer coverage instrumentation (mitmd_shared itself is built without it); the
# linker then takes no parser object from the library.
set(MITMD_PARSER_FUZZ_SOURCES "")
if(MITMD_FUZZ)
  set(MITMD_PARSER_FUZZ_SOURCES ${CMAKE_CURRENT_LIST_DIR}/h1_parse.c
    ${CMAKE_CURRENT_LIST_DIR}/target_parse.c)
endif()
foreach(fz h1_request h1_response h1_chunk target)
  mitmd_add_fuzz_target(fuzz_${fz}
    SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_${fz}.c ${MITMD_PARSER_FUZZ_SOURCES}
    LIBS mitmd_shared CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${fz})
endforeach()

# WebSocket frame counting (shared/ws_frame): its unit test and fuzz target.
mitmd_add_unit_test(test_ws_frame SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_ws_frame.c
  LIBS mitmd_shared)
mitmd_add_fuzz_target(fuzz_ws_frame
  SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_ws_frame.c ${CMAKE_CURRENT_LIST_DIR}/ws_frame.c
  LIBS mitmd_shared CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/ws_frame)
