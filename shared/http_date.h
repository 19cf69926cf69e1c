/* http_date.h - HTTP dates for server replay's refresh (mitmproxy's Response.refresh): parse
 * the date forms Python's email.utils.parsedate_tz reads (IMF-fixdate, RFC 850, asctime, the
 * cookie form with dashes and a 4-digit year, full month names, numeric zones and the zone
 * names Python knows: UT, UTC, GMT, Z, AST/ADT, EST/EDT, CST/CDT, MST/MDT, PST/PDT; another
 * name after the time counts as +0000, as Python's no-offset on a UTC host), format
 * IMF-fixdate, and shift
 * the Expires attribute of a Set-Cookie value. Pure: no allocation, no I/O. */
#ifndef MITMD_SHARED_HTTP_DATE_H
#define MITMD_SHARED_HTTP_DATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* http_date_parse reads the date in `s` (`n` bytes) into *t (Unix seconds, UTC). Returns
 * false when it is not a date. */
bool http_date_parse(const char *s, size_t n, int64_t *t);

/* http_date_format writes `t` as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into `out`
 * (at least HTTP_DATE_LEN + 1 bytes, NUL-terminated). Returns HTTP_DATE_LEN, or 0 when the
 * year is outside 0..9999. */
size_t http_date_format(int64_t t, char *out);

/* http_date_refresh_cookie writes the Set-Cookie value `v` (`n` bytes) into `out` (`cap`
 * bytes) with its Expires attribute moved by `delta` seconds, as mitmproxy's
 * refresh_set_cookie_header: an Expires that is not a date is dropped. Returns the new
 * length, or 0 when nothing changes (no Expires) or `out` is too small. */
size_t http_date_refresh_cookie(const char *v, size_t n, int64_t delta, char *out, size_t cap);

#endif
