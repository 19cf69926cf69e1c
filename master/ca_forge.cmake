# master/ca_forge.cmake: module fragment (see CMakeLists.txt)
