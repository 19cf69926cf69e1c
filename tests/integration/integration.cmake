# tests/integration/integration.cmake: module fragment (see CMakeLists.txt)
