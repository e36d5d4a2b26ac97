/* util.c — see util.h. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *sat_progname = "sat";
static int warned;

void sat_init(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    sat_progname = slash ? slash + 1 : (argv0 ? argv0 : "sat");
}

static void vmessage(const char *fmt, va_list ap)
{
    /* One fprintf of a pre-formatted line keeps lines from worker threads whole. */
    char line[2048];
    int n = snprintf(line, sizeof line, "%s: ", sat_progname);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    /* Names from outside (paths, record ids) may hold control characters:
     * keep the message on one line and the terminal sane. */
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    fprintf(stderr, "%s\n", line);
}

void sat_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    exit(1);
}

void sat_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    warned = 1;
}

int sat_exit_status(void) { return warned ? 1 : 0; }

void *sat_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) sat_die("out of memory (%zu bytes)", n);
    return p;
}

void *sat_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) sat_die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *sat_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) sat_die("out of memory (%zu bytes)", n);
    return q;
}

char *sat_xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) sat_die("out of memory");
    return d;
}

void sat_print_version(void)
{
    printf("%s (sat) %s\n", sat_progname, SAT_VERSION);
    exit(0);
}

void sat_print_usage(const char *usage)
{
    fputs(usage, stdout);
    exit(0);
}

void sat_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help'.\n", sat_progname);
    exit(2);
}

long sat_parse_long(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        sat_usage_error("%s: '%s' is not a whole number in [%ld, %ld]", opt, s, lo, hi);
    return v;
}

double sat_parse_double(const char *opt, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        sat_usage_error("%s: '%s' is not a number in [%g, %g]", opt, s, lo, hi);
    return v;
}

FILE *sat_fopen_check(const char *path, const char *mode)
{
    if (strcmp(path, "-") == 0) return mode[0] == 'r' ? stdin : stdout;
    FILE *f = fopen(path, mode);
    if (!f) sat_die("%s: %s", path, strerror(errno));
    return f;
}

void sat_fclose_check(FILE *f, const char *what)
{
    int bad = fflush(f) != 0 || ferror(f);
    int err = errno;
    if (f != stdout && f != stdin && f != stderr) bad |= fclose(f) != 0;
    if (bad) sat_die("%s: write error: %s", what, strerror(err ? err : EIO));
}

int sat_read_file(const char *path, size_t max, unsigned char **data, size_t *len,
                  char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "is a directory");
        if (f != stdin) fclose(f);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = sat_xmalloc(cap);
    for (;;) {
        if (n == cap) {
            if (cap >= max + 1) break;
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            buf = sat_xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int rerr = ferror(f);
    if (f != stdin) fclose(f);
    if (rerr) {
        snprintf(err, errlen, "read error: %s", strerror(errno ? errno : EIO));
        free(buf);
        return -1;
    }
    if (n > max) {
        snprintf(err, errlen, "larger than the limit of %zu bytes", max);
        free(buf);
        return -1;
    }
    *data = buf;
    *len = n;
    return 0;
}

/* Temp files not yet committed, removed at exit and on SIGINT/SIGTERM/SIGHUP,
 * so that an error or an interrupt leaves neither a torn output nor litter. */
#define MAX_PENDING 16
static char *pending[MAX_PENDING];

static void remove_pending(void)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending[i]) unlink(pending[i]);
}

static void remove_pending_and_reraise(int sig)
{
    remove_pending();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void track_pending(char *tmp, int add)
{
    static int installed;
    if (!installed) {
        installed = 1;
        atexit(remove_pending);
        int sigs[] = {SIGINT, SIGTERM, SIGHUP};
        for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
            struct sigaction sa = {0};
            sa.sa_handler = remove_pending_and_reraise;
            sigaction(sigs[i], &sa, NULL);
        }
    }
    for (int i = 0; i < MAX_PENDING; i++) {
        if (add && !pending[i]) {
            pending[i] = tmp;
            return;
        }
        if (!add && pending[i] == tmp) {
            pending[i] = NULL;
            return;
        }
    }
}

void sat_atomic_open(sat_atomic *a, const char *path)
{
    a->path = sat_xstrdup(path);
    size_t n = strlen(path) + 32;
    a->tmp = sat_xmalloc(n);
    snprintf(a->tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(a->tmp);
    if (fd < 0) sat_die("%s: cannot create temp file: %s", path, strerror(errno));
    track_pending(a->tmp, 1);
    a->f = fdopen(fd, "wb");
    if (!a->f) sat_die("%s: %s", path, strerror(errno));
}

void sat_atomic_abort(sat_atomic *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp) {
        track_pending(a->tmp, 0);
        unlink(a->tmp);
    }
    free(a->tmp);
    free(a->path);
    a->f = NULL;
    a->tmp = a->path = NULL;
}

void sat_atomic_commit(sat_atomic *a)
{
    int bad = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
    int err = errno;
    bad |= fclose(a->f) != 0;
    if (!bad) {
        /* mkstemp creates 0600; give the result the usual umask-derived mode. */
        mode_t um = umask(0);
        umask(um);
        chmod(a->tmp, 0666 & ~um);
    }
    a->f = NULL;
    if (bad || rename(a->tmp, a->path) != 0) {
        if (!err) err = errno;
        char *path = a->path;
        a->path = NULL;
        sat_atomic_abort(a);
        sat_die("%s: write error: %s", path, strerror(err ? err : EIO));
    }
    track_pending(a->tmp, 0);
    free(a->tmp);
    free(a->path);
    a->tmp = a->path = NULL;
}

char *sat_exe_dir(void)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return NULL;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (slash) *slash = 0;
    return sat_xstrdup(buf);
}

static char *try_model(const char *dir, const char *sub, const char *name)
{
    size_t n = strlen(dir) + strlen(sub) + strlen(name) + 3;
    char *p = sat_xmalloc(n);
    snprintf(p, n, "%s%s/%s", dir, sub, name);
    if (access(p, R_OK) == 0) return p;
    free(p);
    return NULL;
}

char *sat_find_model(const char *name)
{
    char *p = NULL;
    const char *env = getenv("SAT_MODEL_DIR");
    if (env && *env && (p = try_model(env, "", name))) return p;
    char *exe = sat_exe_dir();
    if (exe) {
        p = try_model(exe, "/../models", name);
        if (!p) p = try_model(exe, "/../share/sat", name);
        free(exe);
        if (p) return p;
    }
    return try_model(SAT_DATADIR, "", name);
}

void sat_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        sat_die("sha256 failed");
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

double sat_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
