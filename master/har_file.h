/* har_file.h - the hardump file's life in the master: created (truncated) with the HAR
 * document's head before the workers start, handed to them (they append one entry per flow,
 * worker/flow_out.c), and closed with the document's tail once they have stopped. Called by
 * master/master.c only; blocking file I/O at start and stop. */
#ifndef MITMD_MASTER_HAR_FILE_H
#define MITMD_MASTER_HAR_FILE_H

#include "master/supervise.h"
#include "shared/config.h"

/* har_file_start creates cfg->hardump (mode 0600, truncated; nothing to do when NULL), writes
 * the head and passes the file to the workers as --hardump /dev/fd/N. Returns 0 or -errno
 * (logged). */
int har_file_start(struct supervise *s, const struct config *cfg);

/* har_file_stop closes the HAR document of cfg->hardump (shared/har.h har_file_finish) after
 * the workers stopped. Logs the entry count or the failure. */
void har_file_stop(const struct config *cfg);

#endif
