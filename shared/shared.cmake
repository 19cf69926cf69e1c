# shared/shared.cmake - shared/ modules owned by the lead (buf, log, msg, config).
target_sources(mitmd_shared PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/log.c
  ${CMAKE_CURRENT_LIST_DIR}/msgcodec.c
  ${CMAKE_CURRENT_LIST_DIR}/config.c)
