target_sources(mitmd_certcache PRIVATE ${CMAKE_CURRENT_LIST_DIR}/placeholder.c)
