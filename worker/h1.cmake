# worker/h1.cmake - HTTP/1.1 relay state machine (worker/h1_relay; its request side h1_req,
# response side h1_resp, own answers h1_answer, --modify-body h1_modbody, bodies held for
# server replay h1_held), the heads it writes
# and flow records (worker/h1_head, worker/flow) and their unit tests.
target_sources(mitmd_worker PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/h1_head.c
  ${CMAKE_CURRENT_LIST_DIR}/h1_record.c
  ${CMAKE_CURRENT_LIST_DIR}/h1_relay.c
  ${CMAKE_CURRENT_LIST_DIR}/h1_req.c
  ${CMAKE_CURRENT_LIST_DIR}/h1_resp.c
  ${CMAKE_CURRENT_LIST_DIR}/h1_answer.c
  ${CMAKE_CURRENT_LIST_DIR}/h1_modbody.c
  ${CMAKE_CURRENT_LIST_DIR}/h1_held.c)

mitmd_add_unit_test(test_h1_relay
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_h1_relay.c
          ${CMAKE_CURRENT_LIST_DIR}/h1_relay.c ${CMAKE_CURRENT_LIST_DIR}/h1_req.c
          ${CMAKE_CURRENT_LIST_DIR}/h1_resp.c ${CMAKE_CURRENT_LIST_DIR}/h1_answer.c
          ${CMAKE_CURRENT_LIST_DIR}/h1_modbody.c ${CMAKE_CURRENT_LIST_DIR}/flow.c
          ${CMAKE_CURRENT_LIST_DIR}/answer.c ${CMAKE_CURRENT_LIST_DIR}/h1_head.c
          ${CMAKE_CURRENT_LIST_DIR}/h1_record.c ${CMAKE_CURRENT_LIST_DIR}/flow_body.c
          ${CMAKE_CURRENT_LIST_DIR}/replay.c ${CMAKE_CURRENT_LIST_DIR}/www_auth.c
          ${CMAKE_CURRENT_LIST_DIR}/h1_held.c
  LIBS mitmd_shared mitmd_rules)

# test_flow includes flow.c (static helpers), so it does not list it again.
mitmd_add_unit_test(test_flow
  SOURCES ${PROJECT_SOURCE_DIR}/tests/unit/test_flow.c)
