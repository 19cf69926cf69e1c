# worker/h2.cmake: module fragment (see CMakeLists.txt)
