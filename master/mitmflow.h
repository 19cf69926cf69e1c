/* mitmflow.h - mitmproxy's own flow files (what mitmdump -w writes: one tnetstring per flow,
 * format 17 in mitmproxy 8) read as mitmd -w records, so that -r and -S take a mitmproxy
 * recording. HTTP flows are converted (request, response, bodies, the server's address and
 * TLS, the error, is_replay); other flow types (TCP, DNS) are skipped with a reason. Called
 * by master/rfile.c and master/replay_load.c at start-up; allocates the returned line. */
#ifndef MITMD_MASTER_MITMFLOW_H
#define MITMD_MASTER_MITMFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* MITMFLOW_FLOW_MAX bounds one flow (its tnetstring, bodies included). */
#define MITMFLOW_FLOW_MAX (256u << 20)

/* mitmflow_sniff returns whether `in` (at its start) holds a mitmproxy flow file: its first
 * byte is a digit (a tnetstring's length), where a mitmd recording starts with '{'. Reads
 * nothing away (the byte is pushed back). */
bool mitmflow_sniff(FILE *in);

/* mitmflow_to_record converts one flow's tnetstring (`buf`, `len` bytes, the whole
 * "LEN:DATA}" element) into a mitmd record: one JSON object, no newline, malloc'ed into
 * *line (*line_len bytes). Returns 0, or -EINVAL with a one-line reason in *why when the
 * element is not a well-formed HTTP flow, or -ENOMEM. */
int mitmflow_to_record(const uint8_t *buf, size_t len, char **line, size_t *line_len,
                       const char **why);

/* mitmflow_read reads the next flow of `in` and converts it (mitmflow_to_record). Returns 1
 * with a record in *line, 0 at the end of the file, 2 when the flow was read but is not an
 * HTTP flow or not well-formed (*why says which; the next call reads on), or -1 when the file
 * cannot be read on (a broken length, a flow over MITMFLOW_FLOW_MAX, a read error; *why). */
int mitmflow_read(FILE *in, char **line, size_t *line_len, const char **why);

#endif
