# certcache/certcache.cmake - certcache/ (shared-memory certificate cache), shared/nameset
# (its key), their unit tests and the lookup micro-benchmark.
target_sources(mitmd_certcache PRIVATE ${CMAKE_CURRENT_LIST_DIR}/certcache.c)
target_sources(mitmd_shared PRIVATE ${PROJECT_SOURCE_DIR}/shared/nameset.c)
