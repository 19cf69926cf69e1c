/* mb_report.h - the human summary and the one-line JSON summary of a mitmd-bench run.
 * Owns output formats only (field names are a contract with bench scripts). Called by main
 * after the threads are joined. Never allocates; formats into caller buffers. */
#ifndef MITMD_BENCH_MB_REPORT_H
#define MITMD_BENCH_MB_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bench/mb_opts.h"
#include "bench/mb_stats.h"

/* MB_REPORT_JSON_MAX bounds the JSON line (first_error is at most MB_STATS_ERROR_MAX bytes,
 * escaped to at most six bytes each). */
#define MB_REPORT_JSON_MAX (2048 + 6 * MB_STATS_ERROR_MAX)

/* mb_report_json writes the summary of `s`, measured over `measured_ns`, as one JSON object
 * without a trailing newline into `out` (`cap` >= MB_REPORT_JSON_MAX). Returns its length,
 * or -ENOSPC if it did not fit. */
int mb_report_json(const struct mb_opts *o, const struct mb_stats *s, uint64_t measured_ns,
                   char *out, size_t cap);

/* mb_report_text prints the human-readable summary to `f`. */
void mb_report_text(FILE *f, const struct mb_opts *o, const struct mb_stats *s,
                    uint64_t measured_ns);

/* mb_report_json_escape writes `in` as a JSON string literal (with quotes) into `out`.
 * Returns the length written, or -ENOSPC. */
int mb_report_json_escape(const char *in, char *out, size_t cap);

#endif
