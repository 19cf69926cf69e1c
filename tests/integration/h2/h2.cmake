# tests/integration/h2/h2.cmake: HTTP/2 integration tests (see CMakeLists.txt)
