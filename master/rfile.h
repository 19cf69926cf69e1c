/* rfile.h - mitmdump's -r / --rfile: read the flows of a -w recording (mitmd's JSON Lines,
 * or mitmproxy's flow file through master/mitmflow.h), print each as its flow line, and append the ones -w keeps to the -w file. Owns the record
 * to struct flow mapping (what a flow line and the filters read from a record). Called by
 * master/main.c before the proxy starts (mitmdump reads the file, then serves only with
 * --keepserving); blocking file I/O, allocates one flow and each line's JSON. */
#ifndef MITMD_MASTER_RFILE_H
#define MITMD_MASTER_RFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "shared/config.h"
#include "worker/flow.h"

#define RFILE_STR_MAX 256 /* a proxy_mode or rules_note kept for a read flow */

/* struct rfile_strs holds the strings a read flow points to (struct flow keeps pointers
 * for them): valid while the flow is used. */
struct rfile_strs {
    char proxy_mode[RFILE_STR_MAX];
    char rules_note[RFILE_STR_MAX];
};

/* rfile_flow_from_line fills `f` (flow_init'ed here) from one record (`len` bytes of
 * `line`, no newline): client and server, TLS details, request and response lines, fields
 * and body sizes, the time, WebSocket counts, the listener's mode, the rules note and the
 * error (mode and note copied into `keep`, when not NULL). Returns 0, or -EINVAL with a
 * reason in `why` (static text) when the line is not JSON or not a flow record. Strings that
 * do not fit the flow are cut (and `truncated` set), as when recording. The record keeps the
 * Host field's URL, not the target the client addressed: a line read back shows that URL. */
int rfile_flow_from_line(const char *line, size_t len, struct flow *f, struct rfile_strs *keep,
                         const char **why);

/* rfile_run reads cfg->rfile ("-": standard input): every record that matches readfile_filter is printed on `out`
 * as its flow line if it matches dumper_filter (not with -q), and appended as it was read to
 * cfg->flow_file (-w) if it matches save_stream_filter. Lines name each record's listener
 * mode when the file holds several (a first pass reads them; not for standard input).
 * Messages go to `err`. Returns the
 * exit status: 0, 1 (some lines were not flow records: named on `err` and skipped) or 2 (the
 * file cannot be read, is not a recording at all, is the -w file itself, or a write
 * failed). */
int rfile_run(const struct config *cfg, FILE *out, FILE *err);

#endif
