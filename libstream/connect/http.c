/*
 * http.c - the libcurl set-up every HTTP connector shares (http.h).
 *
 * One place decides what a connector's -H, --insecure, --cacert and
 * timeouts mean and how long a retry waits, so the sink and the source
 * cannot drift apart. Headers are checked when they are added (a header
 * that would split a request, or a name libcurl would send verbatim as
 * garbage, is a usage error before any data moves) and kept as a
 * curl_slist the connectors copy into each request's own list.
 *
 * Retry-After is either delay-seconds or an HTTP-date (RFC 9110 10.2.3);
 * dates are parsed by libcurl's curl_getdate, which reads the three date
 * formats RFC 9110 asks a recipient to accept.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "stream/error.h"
#include "stream/http.h"

/* A day: longer than any connector waits for a server. */
#define RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int stream_http_global_init(char *errbuf, size_t errbuf_len)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return stream__fail(STREAM_EIO, errbuf, errbuf_len, "cannot initialise libcurl: %s",
                            curl_easy_strerror(global_rc));
    return 0;
}

void stream_http_conf_init(stream_http_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->timeout_ms = 30000;
    conf->connect_timeout_ms = 10000;
    conf->retries = 5;
    conf->backoff_ms = 200;
    conf->backoff_max_ms = 30000;
}

void stream_http_conf_release(stream_http_conf *conf)
{
    curl_slist_free_all(conf->headers);
    conf->headers = NULL;
    conf->header_count = 0;
}

/* RFC 9110 5.6.2: tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int stream_http_header_check(const char *p, size_t len, char *errbuf, size_t errbuf_len)
{
    size_t i = 0;
    while (i < len && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "a header is 'Name: value' and the name is missing");
    if (i == len || p[i] != ':')
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                            "a header is 'Name: value'; the name may hold letters, digits and "
                            "!#$%%&'*+-.^_`|~ only, and a ':' must follow it");
    for (i++; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return stream__fail(STREAM_EINVAL, errbuf, errbuf_len,
                                "the value of header '%.*s' holds a control character "
                                "(byte %zu)",
                                (int)(strchr(p, ':') - p), p, i + 1);
    }
    return 0;
}

/* Appends one checked line to a list being built. */
static int append_line(struct curl_slist **list, size_t *count, const char *p, size_t len)
{
    char *s = stream__strndup(p, len);
    if (s == NULL)
        return STREAM_ENOMEM;
    struct curl_slist *l = curl_slist_append(*list, s);
    free(s);
    if (l == NULL)
        return STREAM_ENOMEM;
    *list = l;
    (*count)++;
    return 0;
}

/* Reads FILE's headers into a new list (all or nothing). */
static int headers_from_file(const char *path, struct curl_slist **list, size_t *count,
                             char *errbuf, size_t errbuf_len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return stream__fail(STREAM_EIO, errbuf, errbuf_len, "-H @%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    size_t lineno = 0;
    char why[256];
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t start = 0;
        while (start < len && (line[start] == ' ' || line[start] == '\t'))
            start++;
        if (start == len || line[start] == '#')
            continue;
        if (memchr(line, '\0', len) != NULL) {
            rc = stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "-H @%s line %zu: a NUL byte",
                              path, lineno);
            break;
        }
        if (stream_http_header_check(line + start, len - start, why, sizeof(why)) != 0) {
            rc = stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "-H @%s line %zu: %s", path,
                              lineno, why);
            break;
        }
        if ((rc = append_line(list, count, line + start, len - start)) != 0)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = stream__fail(STREAM_EIO, errbuf, errbuf_len, "-H @%s: read error", path);
    free(line);
    fclose(f);
    return rc;
}

int stream_http_conf_add_header(stream_http_conf *conf, const char *arg, char *errbuf,
                                size_t errbuf_len)
{
    struct curl_slist *list = NULL;
    size_t count = 0;
    int rc;
    if (arg[0] == '@') {
        rc = headers_from_file(arg + 1, &list, &count, errbuf, errbuf_len);
    } else {
        char why[256];
        rc = stream_http_header_check(arg, strlen(arg), why, sizeof(why));
        if (rc != 0) {
            const char *colon = strchr(arg, ':');
            int name_len = colon ? (int)(colon - arg) : (int)strlen(arg);
            return stream__fail(rc, errbuf, errbuf_len, "-H '%.*s: ...': %s", name_len, arg, why);
        }
        rc = append_line(&list, &count, arg, strlen(arg));
    }
    if (rc != 0) {
        curl_slist_free_all(list);
        return rc;
    }
    /* Move the new lines to the end of conf's list, in order. */
    for (struct curl_slist *l = list; l; l = l->next) {
        struct curl_slist *nl = curl_slist_append(conf->headers, l->data);
        if (nl == NULL) {
            curl_slist_free_all(list);
            return STREAM_ENOMEM;
        }
        conf->headers = nl;
        conf->header_count++;
    }
    curl_slist_free_all(list);
    return 0;
}

int stream_http_conf_headers(const stream_http_conf *conf, struct curl_slist **list)
{
    for (const struct curl_slist *l = conf->headers; l; l = l->next) {
        struct curl_slist *nl = curl_slist_append(*list, l->data);
        if (nl == NULL)
            return STREAM_ENOMEM;
        *list = nl;
    }
    return 0;
}

int stream_http_easy_setup(const stream_http_conf *conf, void *easy, const char *agent,
                           char *errbuf, size_t errbuf_len)
{
    CURL *e = easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, (long)conf->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)conf->connect_timeout_ms);
    SET(CURLOPT_SSL_VERIFYPEER, conf->insecure ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, conf->insecure ? 0L : 2L);
    if (conf->cacert)
        SET(CURLOPT_CAINFO, conf->cacert);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, agent);
#undef SET
    if (rc != CURLE_OK)
        return stream__fail(STREAM_EINVAL, errbuf, errbuf_len, "libcurl refused an option: %s",
                            curl_easy_strerror(rc));
    return 0;
}

bool stream_http_status_retryable(long status)
{
    return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

bool stream_http_curl_retryable(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_OK:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_OUT_OF_MEMORY:
        return false;
    default:
        return true;
    }
}

int stream_http_curl_error(int curl_code)
{
    switch ((CURLcode)curl_code) {
    case CURLE_COULDNT_CONNECT:
        return STREAM_ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return STREAM_ETIMEDOUT;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return STREAM_ECONNRESET;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return STREAM_EINVAL;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        return STREAM_EPROTO;
    case CURLE_OUT_OF_MEMORY:
        return STREAM_ENOMEM;
    default:
        return STREAM_EIO;
    }
}

int stream_http_retry_after_ms(const char *p, size_t len, int64_t now_ms, int64_t *delay_ms)
{
    while (len > 0 && (*p == ' ' || *p == '\t'))
        p++, len--;
    while (len > 0 &&
           (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r' || p[len - 1] == '\n'))
        len--;
    if (len == 0)
        return STREAM_EINVAL;
    if (p[0] >= '0' && p[0] <= '9') {
        int64_t secs = 0;
        for (size_t i = 0; i < len; i++) {
            if (p[i] < '0' || p[i] > '9')
                return STREAM_EINVAL;
            if (secs < RETRY_AFTER_MAX_MS / 1000)
                secs = secs * 10 + (p[i] - '0');
        }
        *delay_ms = secs * 1000 < RETRY_AFTER_MAX_MS ? secs * 1000 : RETRY_AFTER_MAX_MS;
        return 0;
    }
    char date[64]; /* the longest HTTP-date is 29 bytes (asctime form 24) */
    if (len >= sizeof(date))
        return STREAM_EINVAL;
    memcpy(date, p, len);
    date[len] = '\0';
    time_t t = curl_getdate(date, NULL);
    if (t == (time_t)-1)
        return STREAM_EINVAL;
    /* curl_getdate takes any year: compare in seconds first, so a date
     * centuries away cannot overflow the milliseconds. */
    int64_t now_s = now_ms / 1000;
    if ((int64_t)t > now_s + RETRY_AFTER_MAX_MS / 1000) {
        *delay_ms = RETRY_AFTER_MAX_MS;
        return 0;
    }
    if ((int64_t)t < now_s - 1) {
        *delay_ms = 0;
        return 0;
    }
    int64_t d = (int64_t)t * 1000 - now_ms;
    *delay_ms = d < 0 ? 0 : d > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : d;
    return 0;
}

int64_t stream_http_backoff_ms(const stream_http_conf *conf, int attempt, uint64_t *rng)
{
    int64_t d = conf->backoff_ms > 0 ? conf->backoff_ms : 1;
    int64_t max = conf->backoff_max_ms > d ? conf->backoff_max_ms : d;
    for (int i = 1; i < attempt && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    /* xorshift64 */
    uint64_t x = *rng ? *rng : 0x9e3779b97f4a7c15ULL;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *rng = x;
    int64_t half = d / 2;
    int64_t w = d - (half > 0 ? (int64_t)(x % (uint64_t)(half + 1)) : 0);
    return w > 0 ? w : 1;
}
