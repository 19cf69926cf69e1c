# worker/tls.cmake: module fragment (see CMakeLists.txt)
