# shared/parsers.cmake: module fragment (see CMakeLists.txt)
