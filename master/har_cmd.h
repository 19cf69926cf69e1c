/* har_cmd.h - `mitmd har FILE`: closes a HAR file whose writer was killed (a hardump cut by
 * kill -9), or converts a -w recording (JSON Lines) to a HAR 1.2 document on stdout. Owns
 * the record-to-entry mapping of the converter. Called by master/main.c only; blocking I/O. */
#ifndef MITMD_MASTER_HAR_CMD_H
#define MITMD_MASTER_HAR_CMD_H

#include <stdio.h>

/* har_cmd_run runs `mitmd har PATH`. A HAR document (starts with {"log":) is completed in
 * place; anything else is read as JSON Lines flow records and written to `out` as HAR.
 * Messages go to `err`. Returns the exit status: 0, 1 (some records were not flows: they are
 * named on `err` and left out) or 2 (the file could not be read or written). */
int har_cmd_run(const char *path, FILE *out, FILE *err);

/* har_cmd_entry converts one -w record (`line`, `len` bytes) into a HAR entry object, one
 * line of compact JSON (ASCII, no separator). Returns it (free() it), or NULL with a reason
 * in `errbuf` when the line is not a flow record (or without memory). Allocates. */
char *har_cmd_entry(const char *line, size_t len, char *errbuf, size_t errlen);

#endif
