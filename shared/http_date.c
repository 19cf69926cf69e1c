/* http_date.c - see http_date.h. */
#include "shared/http_date.h"

#include <string.h>
#include <strings.h>

static const char *const MONTHS[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const MONTHS_FULL[12] = {"january", "february", "march",     "april",
                                            "may",     "june",     "july",      "august",
                                            "september", "october", "november", "december"};
static const struct {
    const char *name;
    int hours; /* east of UTC */
} ZONES[] = {{"UT", 0},   {"UTC", 0},  {"GMT", 0},  {"Z", 0},    {"AST", -4},
             {"ADT", -3}, {"EST", -5}, {"EDT", -4}, {"CST", -6}, {"CDT", -5},
             {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
static const char *const WDAYS[7] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
static const char *const MNAMES[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* days_from_civil returns the days since 1970-01-01 of y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

struct dparts {
    int64_t year, day, month, hh, mm, ss, zone;
};

/* token classifies one word of a date (no separators inside, but for a zone's sign).
 * Returns false when it cannot be part of a date. */
static bool token(struct dparts *d, const char *s, size_t len)
{
    static const char *const wd[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

    if (memchr(s, ':', len) != NULL) { /* HH:MM[:SS] */
        int v[3] = {0, 0, 0}, k = 0;
        size_t j = 0;

        while (j < len) {
            int x = 0, dg = 0;

            while (j < len && is_digit(s[j]) && dg < 2) {
                x = x * 10 + (s[j++] - '0');
                dg++;
            }
            if (dg == 0 || k == 3 || (j < len && s[j] != ':'))
                return false;
            v[k++] = x;
            j++;
        }
        if (k < 2 || v[0] > 23 || v[1] > 59 || v[2] > 61 || d->hh >= 0)
            return false;
        d->hh = v[0], d->mm = v[1], d->ss = v[2];
        return true;
    }
    if ((s[0] == '+' || s[0] == '-') && len == 5) { /* +HHMM / -HHMM */
        for (size_t j = 1; j < 5; j++)
            if (!is_digit(s[j]))
                return false;
        d->zone = ((s[1] - '0') * 10 + (s[2] - '0')) * 3600 + ((s[3] - '0') * 10 + (s[4] - '0')) * 60;
        if (s[0] == '+')
            d->zone = -d->zone;
        return true;
    }
    if (is_digit(s[0])) {
        int64_t x = 0;

        if (len > 4)
            return false;
        for (size_t j = 0; j < len; j++) {
            if (!is_digit(s[j]))
                return false;
            x = x * 10 + (s[j] - '0');
        }
        if (len <= 2 && d->day < 0 && x >= 1 && x <= 31)
            d->day = x;
        else if (d->year < 0)
            d->year = len <= 2 ? (x < 69 ? 2000 + x : 1900 + x) : x;
        else
            return false;
        return true;
    }
    if (!is_alpha(s[0]))
        return false;
    /* zone names as Python's email.utils (mitmproxy's refresh parses dates with it) */
    for (size_t k = 0; k < sizeof(ZONES) / sizeof(ZONES[0]); k++)
        if (len == strlen(ZONES[k].name) && strncasecmp(s, ZONES[k].name, len) == 0) {
            d->zone = -(int64_t)ZONES[k].hours * 3600;
            return true;
        }
    for (int k = 0; k < 12; k++) /* a full month name ("October"), as Python accepts */
        if (len > 3 && len == strlen(MONTHS_FULL[k]) && strncasecmp(s, MONTHS_FULL[k], len) == 0) {
            if (d->month >= 0)
                return false;
            d->month = k + 1;
            return true;
        }
    if (len == 3 || (len > 3 && d->month < 0 && d->day < 0 && d->year < 0)) {
        for (int k = 0; k < 12 && len == 3; k++)
            if (strncasecmp(s, MONTHS[k], 3) == 0) {
                if (d->month >= 0)
                    return false;
                d->month = k + 1;
                return true;
            }
        for (int k = 0; k < 7; k++) /* a weekday name ("Sun", "Sunday") before the date */
            if (len >= 3 && strncasecmp(s, wd[k], 3) == 0 && d->month < 0 && d->day < 0)
                return true;
    }
    if (d->hh >= 0 && len <= 5) { /* another zone name after the time ("CET"): Python reads
                                   * no offset, which on mitmproxy's UTC hosts is +0000 */
        for (size_t j = 0; j < len; j++)
            if (!is_alpha(s[j]))
                return false;
        return true;
    }
    return false;
}

bool http_date_parse(const char *s, size_t n, int64_t *t)
{
    struct dparts d = {-1, -1, -1, -1, -1, 0, 0};
    size_t i = 0;

    while (i < n) {
        size_t st;

        while (i < n && (s[i] == ' ' || s[i] == ',' || s[i] == '\t'))
            i++;
        st = i;
        while (i < n && s[i] != ' ' && s[i] != ',' && s[i] != '\t')
            i++;
        if (i == st)
            break;
        if ((s[st] == '+' || s[st] == '-') && i - st == 5) {
            if (!token(&d, s + st, 5))
                return false;
            continue;
        }
        for (size_t a = st; a < i;) { /* "06-Nov-94": dashes separate date parts */
            const char *dash = memchr(s + a, '-', i - a);
            size_t e = dash != NULL ? (size_t)(dash - s) : i;

            if (e == a || !token(&d, s + a, e - a))
                return false;
            a = e + (dash != NULL);
            if (dash != NULL && a == i)
                return false;
        }
    }
    if (d.year < 0 || d.month < 0 || d.day < 0 || d.hh < 0 || d.year > 9999)
        return false;
    *t = days_from_civil(d.year, (int)d.month, (int)d.day) * 86400 + d.hh * 3600 + d.mm * 60 +
         d.ss + d.zone;
    return true;
}

size_t http_date_format(int64_t t, char *out)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400), secs = t - days * 86400;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
    int64_t wd = ((days % 7) + 7) % 7;
    char *p = out;

    y += m <= 2;
    if (y < 0 || y > 9999)
        return 0;
    memcpy(p, WDAYS[wd], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    *p++ = (char)('0' + d / 10);
    *p++ = (char)('0' + d % 10);
    *p++ = ' ';
    memcpy(p, MNAMES[m - 1], 3);
    p += 3;
    *p++ = ' ';
    *p++ = (char)('0' + y / 1000);
    *p++ = (char)('0' + y / 100 % 10);
    *p++ = (char)('0' + y / 10 % 10);
    *p++ = (char)('0' + y % 10);
    *p++ = ' ';
    *p++ = (char)('0' + secs / 36000);
    *p++ = (char)('0' + secs / 3600 % 10);
    *p++ = ':';
    *p++ = (char)('0' + secs % 3600 / 600);
    *p++ = (char)('0' + secs % 3600 / 60 % 10);
    *p++ = ':';
    *p++ = (char)('0' + secs % 60 / 10);
    *p++ = (char)('0' + secs % 10);
    memcpy(p, " GMT", 5);
    return HTTP_DATE_LEN;
}

size_t http_date_refresh_cookie(const char *v, size_t n, int64_t delta, char *out, size_t cap)
{
    const char *semi = memchr(v, ';', n);
    size_t at, o = 0;
    bool changed = false;

    if (semi == NULL)
        return 0;
    at = (size_t)(semi - v);
    if (at > cap)
        return 0;
    memcpy(out, v, at);
    o = at;
    while (at < n) { /* at: a ';' */
        const char *a = v + at + 1, *end = memchr(a, ';', n - at - 1), *nm;
        size_t alen = (size_t)((end != NULL ? end : v + n) - a);

        nm = a;
        while (nm < a + alen && *nm == ' ')
            nm++;
        if ((size_t)(a + alen - nm) >= 8 && strncasecmp(nm, "expires=", 8) == 0) {
            int64_t t;
            char d[HTTP_DATE_LEN + 1];

            changed = true;
            if (http_date_parse(nm + 8, (size_t)(a + alen - nm - 8), &t) &&
                http_date_format(t + delta, d) != 0) {
                size_t pre = (size_t)(nm - a) + 8;

                if (o + 1 + pre + HTTP_DATE_LEN > cap)
                    return 0;
                out[o++] = ';';
                memcpy(out + o, a, pre);
                o += pre;
                memcpy(out + o, d, HTTP_DATE_LEN);
                o += HTTP_DATE_LEN;
            } /* else: dropped, as mitmproxy does */
        } else {
            if (o + 1 + alen > cap)
                return 0;
            out[o++] = ';';
            memcpy(out + o, a, alen);
            o += alen;
        }
        at += 1 + alen;
    }
    return changed ? o : 0;
}
