target_sources(mitmd_master PRIVATE ${CMAKE_CURRENT_LIST_DIR}/placeholder.c)
