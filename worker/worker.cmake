target_sources(mitmd_worker PRIVATE ${CMAKE_CURRENT_LIST_DIR}/placeholder.c)
