# worker/h1.cmake: module fragment (see CMakeLists.txt)
