# master/master.cmake - the master process (lead): loop, supervision, listeners, forging service.
target_sources(mitmd_master PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/master.c
  ${CMAKE_CURRENT_LIST_DIR}/supervise.c
  ${CMAKE_CURRENT_LIST_DIR}/listen.c
  ${CMAKE_CURRENT_LIST_DIR}/forge_service.c)

mitmd_add_unit_test(test_forge_service SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_forge_service.c
  LIBS mitmd_master)
