# bench/delayline.cmake: module fragment (see CMakeLists.txt) - delayline, the userspace TCP
# delay line (one-way delay and optional rate limit on loopback) that bench/longpath.sh and the
# tests/integration/longpath tests put on the long side of a path (no netem on this kernel).
add_executable(delayline ${CMAKE_CURRENT_LIST_DIR}/delayline.c)
mitmd_target_setup(delayline)
