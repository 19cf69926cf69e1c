# shared/shared.cmake - shared/ modules (buf, log, msg, config, board).
target_sources(mitmd_shared PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/log.c
  ${CMAKE_CURRENT_LIST_DIR}/msgcodec.c
  ${CMAKE_CURRENT_LIST_DIR}/stats.c
  ${CMAKE_CURRENT_LIST_DIR}/memfd_copy.c
  ${CMAKE_CURRENT_LIST_DIR}/fileio.c
  ${CMAKE_CURRENT_LIST_DIR}/config.c
  ${CMAKE_CURRENT_LIST_DIR}/board.c)

mitmd_add_unit_test(test_msgcodec SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_msgcodec.c LIBS mitmd_shared)
mitmd_add_unit_test(test_board SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_board.c LIBS mitmd_shared)
mitmd_add_unit_test(test_memfd_copy SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_memfd_copy.c LIBS mitmd_shared)
mitmd_add_unit_test(test_config SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_config.c LIBS mitmd_shared)
mitmd_add_fuzz_target(fuzz_msgcodec SOURCES ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_msgcodec.c
  LIBS mitmd_shared CORPUS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/msgcodec)
