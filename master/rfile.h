/* rfile.h - mitmdump's -r / --rfile: read the flows of a -w recording (mitmd's JSON Lines),
 * print each as its flow line, and append the ones -w keeps to the -w file. Owns the record
 * to struct flow mapping (what a flow line and the filters read from a record). Called by
 * master/main.c before the proxy starts (mitmdump reads the file, then serves only with
 * --keepserving); blocking file I/O, allocates one flow and each line's JSON. */
#ifndef MITMD_MASTER_RFILE_H
#define MITMD_MASTER_RFILE_H

#include <stddef.h>
#include <stdio.h>

#include "shared/config.h"
#include "worker/flow.h"

/* rfile_flow_from_line fills `f` (flow_init'ed here) from one record (`len` bytes of
 * `line`, no newline): client and server, TLS details, request and response lines, fields
 * and body sizes, the time, WebSocket counts and the error. Returns 0, or -EINVAL with a
 * reason in `why` (static text) when the line is not JSON or not a flow record. Strings that
 * do not fit the flow are cut (and `truncated` set), as when recording. */
int rfile_flow_from_line(const char *line, size_t len, struct flow *f, const char **why);

/* rfile_run reads cfg->rfile: every record that matches readfile_filter is printed on `out`
 * as its flow line if it matches dumper_filter (not with -q), and appended as it was read to
 * cfg->flow_file (-w) if it matches save_stream_filter. Messages go to `err`. Returns the
 * exit status: 0, 1 (some lines were not flow records: named on `err` and skipped) or 2 (the
 * file cannot be read, is not a recording at all, is the -w file itself, or a write
 * failed). */
int rfile_run(const struct config *cfg, FILE *out, FILE *err);

#endif
