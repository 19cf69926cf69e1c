# tests/integration/ops/ops.cmake - integration tests of the operations endpoint (issue 13):
# /metrics with a real Prometheus, /healthz through a drain, counters across reloads and
# worker deaths, sd_notify, the Grafana dashboard's metric names. Uses
# mitmd_add_integration_test from tests/integration/integration.cmake.
if(NOT MITMD_TESTS)
  return()
endif()
mitmd_add_integration_test(ops/prometheus_scrapes_requests INTERCEPT)
mitmd_add_integration_test(ops/metrics_never_go_back INTERCEPT)
mitmd_add_integration_test(ops/metrics_by_listener INTERCEPT)
mitmd_add_integration_test(ops/metrics_h2_live INTERCEPT)
mitmd_add_integration_test(ops/healthz_drain_503 INTERCEPT)
mitmd_add_integration_test(ops/metrics_http_answers INTERCEPT)
mitmd_add_integration_test(ops/sd_notify_states INTERCEPT)
mitmd_add_integration_test(ops/grafana_dashboard_metrics INTERCEPT)
mitmd_add_integration_test(ops/upgrade_no_failed_requests INTERCEPT)
mitmd_add_integration_test(ops/upgrade_two_listeners INTERCEPT)
mitmd_add_integration_test(ops/upgrade_two_builds INTERCEPT)
mitmd_add_integration_test(ops/systemd_unit_verifies)
mitmd_add_integration_test(ops/upgrade_failed_keeps_serving INTERCEPT)
