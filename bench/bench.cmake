# bench/bench.cmake: module fragment (see CMakeLists.txt)
