/*
 * timespec.c - parsing the time grammar, offset specs, durations and sizes.
 *
 * Hand-written scanners over (p, len) rather than sscanf/strptime: those need
 * NUL-terminated input, accept leading spaces and signs silently, and cannot
 * say which part of the input was wrong. Each scanner walks a cursor that
 * never passes `end`, and reports the first problem with the input quoted.
 *
 * UTC calendar arithmetic is Howard Hinnant's days_from_civil/civil_from_days
 * (exact for every int64 day count we can reach), so UTC never depends on the
 * C library's time zone state; only zone-less input goes through mktime(3).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "stream/error.h"
#include "stream/timespec.h"

#define MS_PER_S INT64_C(1000)
#define MS_PER_DAY INT64_C(86400000)
/* Below this an epoch number is seconds, at or above it milliseconds. */
#define EPOCH_MS_THRESHOLD INT64_C(100000000000)

/* Writes "what 'input': detail" into errbuf; the input is quoted with
 * non-printable bytes escaped and cut at 64 bytes, since it may be hostile. */
static int fail(char *errbuf, size_t errbuf_len, const char *what, const char *p, size_t len,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int fail(char *errbuf, size_t errbuf_len, const char *what, const char *p, size_t len,
                const char *fmt, ...)
{
    if (errbuf == NULL || errbuf_len == 0)
        return STREAM_EINVAL;
    char quoted[64 * 4 + 8];
    size_t q = 0;
    for (size_t i = 0; i < len && i < 64; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f)
            quoted[q++] = (char)c;
        else
            q += (size_t)snprintf(quoted + q, sizeof quoted - q, "\\x%02x", c);
    }
    if (len > 64) {
        memcpy(quoted + q, "...", 3);
        q += 3;
    }
    quoted[q] = '\0';
    char detail[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    snprintf(errbuf, errbuf_len, "bad %s '%s': %s", what, quoted, detail);
    return STREAM_EINVAL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Case-insensitive comparison of p[0..len) with a lowercase word. */
static bool word_eq(const char *p, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (n != len)
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)p[i]) != word[i])
            return false;
    return true;
}

/* Reads a run of digits at *pos as a non-negative int64. Returns the count of
 * digits (0 if none) or -1 on overflow. */
static int scan_uint(const char *p, size_t len, size_t *pos, int64_t *out)
{
    int64_t v = 0;
    int n = 0;
    while (*pos < len && is_digit(p[*pos])) {
        int d = p[*pos] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        (*pos)++;
        n++;
    }
    *out = v;
    return n;
}

/* Reads exactly `width` digits at *pos. */
static bool scan_fixed(const char *p, size_t len, size_t *pos, int width, int *out)
{
    int v = 0;
    for (int i = 0; i < width; i++) {
        if (*pos >= len || !is_digit(p[*pos]))
            return false;
        v = v * 10 + (p[*pos] - '0');
        (*pos)++;
    }
    *out = v;
    return true;
}

/* ---- calendar --------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 29;
    return dim[m - 1];
}

/* ---- durations -------------------------------------------------------------- */

/* Milliseconds per unit at p[*pos]; advances past the unit. 0 if none. */
static int64_t scan_unit(const char *p, size_t len, size_t *pos)
{
    size_t i = *pos;
    if (i + 1 < len && p[i] == 'm' && p[i + 1] == 's') {
        *pos = i + 2;
        return 1;
    }
    if (i >= len)
        return 0;
    int64_t ms;
    switch (p[i]) {
    case 's': ms = MS_PER_S; break;
    case 'm': ms = 60 * MS_PER_S; break;
    case 'h': ms = 3600 * MS_PER_S; break;
    case 'd': ms = MS_PER_DAY; break;
    case 'w': ms = 7 * MS_PER_DAY; break;
    default: return 0;
    }
    *pos = i + 1;
    return ms;
}

/*
 * (number unit)+ over the whole of p[0..len). A bare number (no unit at all)
 * is accepted as milliseconds only when bare_ms is set. `what` names the
 * grammar in messages; `shown` is what to quote (the caller's whole input).
 */
static int scan_duration(const char *p, size_t len, bool bare_ms, int64_t *out_ms,
                         const char *what, const char *shown, size_t shown_len, char *errbuf,
                         size_t errbuf_len)
{
    size_t pos = 0;
    int64_t total = 0;
    if (len == 0)
        return fail(errbuf, errbuf_len, what, shown, shown_len, "expected a duration like 10s");
    while (pos < len) {
        int64_t n;
        int nd = scan_uint(p, len, &pos, &n);
        if (nd < 0)
            return fail(errbuf, errbuf_len, what, shown, shown_len, "number too large");
        if (nd == 0)
            return fail(errbuf, errbuf_len, what, shown, shown_len,
                        "expected a number at '%c'", p[pos]);
        if (pos == len && bare_ms && total == 0 && pos == (size_t)nd) {
            total = n;
            break;
        }
        int64_t unit = scan_unit(p, len, &pos);
        if (unit == 0) {
            if (pos == len)
                return fail(errbuf, errbuf_len, what, shown, shown_len,
                            "missing unit after %lld (ms, s, m, h, d or w)", (long long)n);
            return fail(errbuf, errbuf_len, what, shown, shown_len,
                        "unknown unit at '%c' (ms, s, m, h, d or w)", p[pos]);
        }
        if (n > INT64_MAX / unit || total > INT64_MAX - n * unit)
            return fail(errbuf, errbuf_len, what, shown, shown_len, "duration too large");
        total += n * unit;
    }
    *out_ms = total;
    return 0;
}

int stream_duration_parse(const char *p, size_t len, int64_t *out_ms, char *errbuf,
                          size_t errbuf_len)
{
    if (len > 0 && p[0] == '-')
        return fail(errbuf, errbuf_len, "duration", p, len, "durations cannot be negative");
    return scan_duration(p, len, true, out_ms, "duration", p, len, errbuf, errbuf_len);
}

int stream_duration_parse_str(const char *s, int64_t *out_ms, char *errbuf, size_t errbuf_len)
{
    return stream_duration_parse(s, strlen(s), out_ms, errbuf, errbuf_len);
}

/* ---- sizes ------------------------------------------------------------------ */

int stream_size_parse(const char *p, size_t len, int64_t *out_bytes, char *errbuf,
                      size_t errbuf_len)
{
    size_t pos = 0;
    int64_t n;
    int nd = scan_uint(p, len, &pos, &n);
    if (nd < 0)
        return fail(errbuf, errbuf_len, "size", p, len, "number too large");
    if (nd == 0)
        return fail(errbuf, errbuf_len, "size", p, len,
                    "expected a number of bytes like 512, 64k, 1m or 1g");
    int shift = 0;
    const char *u = p + pos;
    size_t ulen = len - pos;
    if (ulen > 0) {
        switch (tolower((unsigned char)u[0])) {
        case 'b': shift = ulen == 1 ? 0 : -1; break;
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        case 't': shift = 40; break;
        default: shift = -1; break;
        }
        /* After k/m/g/t: nothing, "b" or "ib". */
        if (shift > 0 && !(ulen == 1 || word_eq(u + 1, ulen - 1, "b") ||
                           word_eq(u + 1, ulen - 1, "ib")))
            shift = -1;
        if (shift < 0)
            return fail(errbuf, errbuf_len, "size", p, len,
                        "unknown unit '%.*s' (b, k, m, g or t)", (int)(ulen > 8 ? 8 : ulen),
                        u);
    }
    if (n > (INT64_MAX >> shift))
        return fail(errbuf, errbuf_len, "size", p, len, "size too large");
    *out_bytes = n << shift;
    return 0;
}

int stream_size_parse_str(const char *s, int64_t *out_bytes, char *errbuf, size_t errbuf_len)
{
    return stream_size_parse(s, strlen(s), out_bytes, errbuf, errbuf_len);
}

/* ---- times ------------------------------------------------------------------ */

/* Epoch seconds or milliseconds, optionally with a fraction of a second. */
static int parse_epoch(const char *p, size_t len, int64_t *out_ms, char *errbuf,
                       size_t errbuf_len)
{
    size_t pos = 0;
    int64_t n;
    if (scan_uint(p, len, &pos, &n) < 0)
        return fail(errbuf, errbuf_len, "time", p, len, "number too large");
    if (pos == len) {
        if (n >= EPOCH_MS_THRESHOLD) {
            *out_ms = n;
        } else {
            *out_ms = n * MS_PER_S;
        }
        return 0;
    }
    if (p[pos] != '.' || n >= EPOCH_MS_THRESHOLD)
        return fail(errbuf, errbuf_len, "time", p, len,
                    "expected epoch seconds or milliseconds, or YYYY-MM-DD");
    pos++;
    int64_t frac = 0;
    int digits = 0;
    while (pos < len && is_digit(p[pos])) {
        if (digits < 3)
            frac = frac * 10 + (p[pos] - '0');
        digits++;
        pos++;
    }
    if (digits == 0 || pos != len)
        return fail(errbuf, errbuf_len, "time", p, len,
                    "expected digits after the decimal point of epoch seconds");
    for (; digits < 3; digits++)
        frac *= 10;
    *out_ms = n * MS_PER_S + frac;
    return 0;
}

/* Local wall time -> epoch seconds through the C library's zone rules. */
static int local_to_epoch(int64_t y, int mo, int d, int h, int mi, int s, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = (int)(y - 1900);
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    tm.tm_isdst = -1; /* let the zone rules decide whether DST applies */
    errno = 0;
    time_t t = mktime(&tm);
    /* -1 is also one second before the epoch; glibc sets errno
     * (EOVERFLOW) only when the conversion failed. */
    if (t == (time_t)-1 && errno != 0)
        return -1;
    *out = (int64_t)t;
    return 0;
}

static int parse_iso(const char *p, size_t len, int64_t *out_ms, char *errbuf, size_t errbuf_len)
{
    size_t pos = 0;
    int year, mon, day, hour = 0, min = 0, sec = 0;
    int64_t frac_ms = 0;
    bool has_zone = false;
    int64_t zone_s = 0;

    if (!scan_fixed(p, len, &pos, 4, &year) || pos >= len || p[pos] != '-')
        return fail(errbuf, errbuf_len, "time", p, len,
                    "expected YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM], epoch seconds or "
                    "milliseconds, -DURATION or now");
    pos++;
    if (!scan_fixed(p, len, &pos, 2, &mon) || pos >= len || p[pos] != '-')
        return fail(errbuf, errbuf_len, "time", p, len, "expected a two-digit month at column 6");
    pos++;
    if (!scan_fixed(p, len, &pos, 2, &day))
        return fail(errbuf, errbuf_len, "time", p, len, "expected a two-digit day at column 9");
    if (mon < 1 || mon > 12)
        return fail(errbuf, errbuf_len, "time", p, len, "month %02d is out of range (01-12)", mon);
    int dim = days_in_month(year, mon);
    if (day < 1 || day > dim)
        return fail(errbuf, errbuf_len, "time", p, len,
                    "day %02d is out of range for %04d-%02d (01-%02d)", day, year, mon, dim);

    if (pos < len) {
        if (p[pos] != 'T' && p[pos] != 't' && p[pos] != ' ')
            return fail(errbuf, errbuf_len, "time", p, len,
                        "expected 'T' or a space after the date at column %zu", pos + 1);
        pos++;
        if (!scan_fixed(p, len, &pos, 2, &hour) || pos >= len || p[pos] != ':')
            return fail(errbuf, errbuf_len, "time", p, len,
                        "expected HH:MM after the date at column %zu", pos + 1);
        pos++;
        if (!scan_fixed(p, len, &pos, 2, &min))
            return fail(errbuf, errbuf_len, "time", p, len,
                        "expected two-digit minutes at column %zu", pos + 1);
        if (pos < len && p[pos] == ':') {
            pos++;
            if (!scan_fixed(p, len, &pos, 2, &sec))
                return fail(errbuf, errbuf_len, "time", p, len,
                            "expected two-digit seconds at column %zu", pos + 1);
            if (pos < len && (p[pos] == '.' || p[pos] == ',')) {
                pos++;
                int digits = 0;
                while (pos < len && is_digit(p[pos])) {
                    if (digits < 3)
                        frac_ms = frac_ms * 10 + (p[pos] - '0');
                    digits++;
                    pos++;
                }
                if (digits == 0)
                    return fail(errbuf, errbuf_len, "time", p, len,
                                "expected digits after the decimal point at column %zu",
                                pos + 1);
                for (; digits < 3; digits++)
                    frac_ms *= 10;
            }
        }
        if (hour > 23)
            return fail(errbuf, errbuf_len, "time", p, len, "hour %02d is out of range (00-23)",
                        hour);
        if (min > 59)
            return fail(errbuf, errbuf_len, "time", p, len,
                        "minute %02d is out of range (00-59)", min);
        if (sec > 60) /* 60 is a leap second, as RFC 3339 allows */
            return fail(errbuf, errbuf_len, "time", p, len,
                        "second %02d is out of range (00-60)", sec);
        if (pos < len) {
            char z = p[pos];
            if (z == 'Z' || z == 'z') {
                has_zone = true;
                pos++;
            } else if (z == '+' || z == '-') {
                int zh, zm = 0;
                pos++;
                if (!scan_fixed(p, len, &pos, 2, &zh))
                    return fail(errbuf, errbuf_len, "time", p, len,
                                "expected a zone offset like +01:00 at column %zu", pos + 1);
                if (pos < len) {
                    if (p[pos] == ':')
                        pos++;
                    if (!scan_fixed(p, len, &pos, 2, &zm))
                        return fail(errbuf, errbuf_len, "time", p, len,
                                    "expected zone minutes at column %zu", pos + 1);
                }
                if (zh > 23 || zm > 59)
                    return fail(errbuf, errbuf_len, "time", p, len,
                                "zone offset %c%02d:%02d is out of range", z, zh, zm);
                has_zone = true;
                zone_s = (int64_t)(zh * 3600 + zm * 60) * (z == '-' ? -1 : 1);
            }
        }
    }
    if (pos != len)
        return fail(errbuf, errbuf_len, "time", p, len, "unexpected '%c' at column %zu", p[pos],
                    pos + 1);

    int64_t secs;
    if (has_zone) {
        secs = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec - zone_s;
    } else if (local_to_epoch(year, mon, day, hour, min, sec, &secs) != 0) {
        return fail(errbuf, errbuf_len, "time", p, len,
                    "cannot convert to local time (check TZ)");
    }
    *out_ms = secs * MS_PER_S + frac_ms;
    return 0;
}

int stream_time_parse(const char *p, size_t len, int64_t now_ms, int64_t *out_ms, char *errbuf,
                      size_t errbuf_len)
{
    if (len == 0)
        return fail(errbuf, errbuf_len, "time", p, len,
                    "empty (expected a date, epoch time, -DURATION or now)");
    if (word_eq(p, len, "now")) {
        *out_ms = now_ms;
        return 0;
    }
    if (p[0] == '-' || p[0] == '+') {
        int64_t d;
        int rc = scan_duration(p + 1, len - 1, false, &d, "time", p, len, errbuf, errbuf_len);
        if (rc != 0)
            return rc;
        if (p[0] == '-' ? now_ms < INT64_MIN + d : now_ms > INT64_MAX - d)
            return fail(errbuf, errbuf_len, "time", p, len, "duration too large");
        *out_ms = p[0] == '-' ? now_ms - d : now_ms + d;
        return 0;
    }
    /* Four digits and a dash start a date; any other digits are epoch time. */
    if (len > 4 && is_digit(p[0]) && is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3]) &&
        p[4] == '-')
        return parse_iso(p, len, out_ms, errbuf, errbuf_len);
    if (is_digit(p[0]))
        return parse_epoch(p, len, out_ms, errbuf, errbuf_len);
    return parse_iso(p, len, out_ms, errbuf, errbuf_len);
}

int stream_time_parse_str(const char *s, int64_t now_ms, int64_t *out_ms, char *errbuf,
                          size_t errbuf_len)
{
    return stream_time_parse(s, strlen(s), now_ms, out_ms, errbuf, errbuf_len);
}

/* The first ".." in p[0..len), or len if none. */
static size_t find_dotdot(const char *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (p[i] == '.' && p[i + 1] == '.')
            return i;
    return len;
}

int stream_time_range_parse(const char *p, size_t len, int64_t now_ms, stream_time_range *out,
                            char *errbuf, size_t errbuf_len)
{
    size_t dd = find_dotdot(p, len);
    const char *a = p, *b = p + (dd < len ? dd + 2 : len);
    size_t alen = dd, blen = dd < len ? len - dd - 2 : 0;
    stream_time_range r = {false, 0, false, INT64_MAX};
    if (alen > 0 && a[0] == '@') {
        a++;
        alen--;
    }
    if (blen > 0 && b[0] == '@') {
        b++;
        blen--;
    }
    if (dd < len && alen == 0 && blen == 0)
        return fail(errbuf, errbuf_len, "time range", p, len,
                    "expected a time before or after '..'");
    if (dd == len || alen > 0) {
        int rc = stream_time_parse(a, alen, now_ms, &r.start_ms, errbuf, errbuf_len);
        if (rc != 0)
            return rc;
        r.has_start = true;
    }
    if (blen > 0) {
        int rc = stream_time_parse(b, blen, now_ms, &r.end_ms, errbuf, errbuf_len);
        if (rc != 0)
            return rc;
        r.has_end = true;
    }
    if (r.has_start && r.has_end && r.end_ms < r.start_ms)
        return fail(errbuf, errbuf_len, "time range", p, len, "the end is before the start");
    *out = r;
    return 0;
}

int stream_time_range_parse_str(const char *s, int64_t now_ms, stream_time_range *out,
                                char *errbuf, size_t errbuf_len)
{
    return stream_time_range_parse(s, strlen(s), now_ms, out, errbuf, errbuf_len);
}

int stream_time_format(int64_t ms, char *buf, size_t buf_len)
{
    if (buf_len < STREAM_TIME_FORMAT_MAX)
        return STREAM_EINVAL;
    /* Floor division, so times before 1970 get a non-negative ms/second part. */
    int64_t secs = ms / 1000, msec = ms % 1000;
    if (msec < 0) {
        msec += 1000;
        secs--;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(buf, buf_len, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
                     (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)msec);
    return n;
}

void stream_time_format_buf(stream_buf *out, int64_t ms)
{
    char t[STREAM_TIME_FORMAT_MAX];
    int n = stream_time_format(ms, t, sizeof t);
    if (n > 0)
        stream_buf_put(out, t, (size_t)n);
}

/* ---- offset specs ----------------------------------------------------------- */

static int parse_pos(const char *p, size_t len, int64_t now_ms, bool is_end,
                     stream_offset_pos *out, const char *all, size_t all_len, char *errbuf,
                     size_t errbuf_len)
{
    const char *expected = is_end ? "expected end, N, -N or @TIME after '..'"
                                  : "expected beginning, end, stored, N, -N, +N or @TIME";
    out->value = 0;
    if (len == 0)
        return fail(errbuf, errbuf_len, "offset", all, all_len, "%s", expected);
    if (!is_end && (word_eq(p, len, "beginning") || word_eq(p, len, "earliest") ||
                    word_eq(p, len, "oldest") || word_eq(p, len, "start"))) {
        out->kind = STREAM_OFFSET_BEGINNING;
        return 0;
    }
    if (word_eq(p, len, "end") || (!is_end && (word_eq(p, len, "latest") ||
                                               word_eq(p, len, "newest")))) {
        out->kind = STREAM_OFFSET_END;
        return 0;
    }
    if (!is_end && word_eq(p, len, "stored")) {
        out->kind = STREAM_OFFSET_STORED;
        return 0;
    }
    if (p[0] == '@' || (len >= 2 && (p[0] == 's' || p[0] == 'S') && p[1] == '@' && !is_end)) {
        size_t skip = p[0] == '@' ? 1 : 2;
        out->kind = STREAM_OFFSET_TIME;
        return stream_time_parse(p + skip, len - skip, now_ms, &out->value, errbuf, errbuf_len);
    }
    size_t pos = 0;
    stream_offset_kind kind = STREAM_OFFSET_ABSOLUTE;
    if (p[0] == '-') {
        kind = STREAM_OFFSET_FROM_END;
        pos = 1;
    } else if (p[0] == '+' && !is_end) {
        kind = STREAM_OFFSET_FROM_START;
        pos = 1;
    }
    int64_t n;
    int nd = scan_uint(p, len, &pos, &n);
    if (nd < 0)
        return fail(errbuf, errbuf_len, "offset", all, all_len, "number too large");
    if (nd == 0 || pos != len)
        return fail(errbuf, errbuf_len, "offset", all, all_len, "%s", expected);
    out->kind = kind;
    out->value = n;
    return 0;
}

int stream_offset_spec_parse(const char *p, size_t len, int64_t now_ms, stream_offset_spec *out,
                             char *errbuf, size_t errbuf_len)
{
    size_t dd = find_dotdot(p, len);
    stream_offset_spec s;
    memset(&s, 0, sizeof s);
    int rc = parse_pos(p, dd, now_ms, false, &s.start, p, len, errbuf, errbuf_len);
    if (rc != 0)
        return rc;
    if (dd < len && dd + 2 < len) {
        rc = parse_pos(p + dd + 2, len - dd - 2, now_ms, true, &s.end, p, len, errbuf,
                       errbuf_len);
        if (rc != 0)
            return rc;
        if (s.start.kind == s.end.kind &&
            (s.end.kind == STREAM_OFFSET_ABSOLUTE || s.end.kind == STREAM_OFFSET_TIME) &&
            s.end.value < s.start.value)
            return fail(errbuf, errbuf_len, "offset", p, len, "the end is before the start");
    }
    *out = s;
    return 0;
}

int stream_offset_spec_parse_str(const char *s, int64_t now_ms, stream_offset_spec *out,
                                 char *errbuf, size_t errbuf_len)
{
    return stream_offset_spec_parse(s, strlen(s), now_ms, out, errbuf, errbuf_len);
}

int64_t stream__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
