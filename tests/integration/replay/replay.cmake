# tests/integration/replay: save_bodies, hardump and `mitmd har`, server and client replay.
if(NOT MITMD_TESTS)
  return()
endif()
mitmd_add_integration_test(replay/bodies_and_har INTERCEPT)
mitmd_add_integration_test(replay/hardump_kill9_repaired INTERCEPT)
mitmd_add_integration_test(replay/server_replay_answers INTERCEPT)
mitmd_add_integration_test(replay/record_replay_roundtrip INTERCEPT)
mitmd_add_integration_test(replay/server_replay_bodies INTERCEPT)
