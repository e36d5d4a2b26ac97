/* util.c — see util.h. */
#include "sat/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sat/blas.h"

const char *sat_progname = "sat";
static int warned;

void sat_init(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    sat_progname = slash ? slash + 1 : (argv0 ? argv0 : "sat");
    sat_blas_init();
}

static atomic_int status_shown; /* drawn by one thread, erased by any that reports */

void sat_status_draw(const char *text)
{
    fprintf(stderr, "\r%s\033[K", text);
    status_shown = 1;
}

void sat_status_erase(void)
{
    if (atomic_exchange(&status_shown, 0)) fputs("\r\033[K", stderr);
}

__attribute__((format(printf, 1, 0))) static void vmessage(const char *fmt, va_list ap)
{
    sat_status_erase();
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

int sat_vfail(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    return -1;
}

int sat_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sat_vfail(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void sat_one_line(char *s)
{
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
}

int sat_fail_line(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sat_vfail(err, errlen, fmt, ap);
    va_end(ap);
    if (err && errlen) sat_one_line(err);
    return -1;
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

enum { HUGE_PAGE = 2 << 20, CACHE_LINE = 64 };

/* From a quarter of a huge page up: a features record (1-2 MB for two
 * views) then takes one page fault instead of ~250, for at most 1.5 MiB
 * unused per buffer. */
static size_t large_align(size_t n) { return n < HUGE_PAGE / 4 ? CACHE_LINE : HUGE_PAGE; }

size_t sat_large_size(size_t n)
{
    size_t align = large_align(n);
    return n ? (n + align - 1) / align * align : align;
}

/* Blocks of huge pages that sat_free_large keeps, by their rounded size. */
enum { LARGE_KEPT = 4 };
static struct {
    void *p;
    size_t size;
} kept[LARGE_KEPT];
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

/* A kept block of `size` bytes, or NULL. */
static void *take_kept(size_t size)
{
    void *p = NULL;
    pthread_mutex_lock(&kept_lock);
    for (int i = 0; i < LARGE_KEPT && !p; i++)
        if (kept[i].p && kept[i].size == size) {
            p = kept[i].p;
            kept[i].p = NULL;
        }
    pthread_mutex_unlock(&kept_lock);
    return p;
}

void sat_free_large(void *p, size_t n)
{
    if (!p) return;
    if (large_align(n) == HUGE_PAGE) {
        pthread_mutex_lock(&kept_lock);
        for (int i = 0; i < LARGE_KEPT && p; i++)
            if (!kept[i].p) {
                kept[i].p = p, kept[i].size = sat_large_size(n);
                p = NULL;
            }
        pthread_mutex_unlock(&kept_lock);
    }
    free(p); /* a small block, or no room to keep it */
}

void *sat_malloc_large(size_t n)
{
    size_t align = large_align(n), rounded = sat_large_size(n);
    void *p;
    if (rounded < n) return NULL;
    if (align == HUGE_PAGE && (p = take_kept(rounded))) return p;
    if (posix_memalign(&p, align, rounded) != 0) return NULL;
    if (align == HUGE_PAGE) madvise(p, rounded, MADV_HUGEPAGE); /* a hint: without THP it is ordinary memory */
    return p;
}

void *sat_xmalloc_large(size_t n)
{
    void *p = sat_malloc_large(n);
    if (!p) sat_die("out of memory (%zu bytes)", n);
    return p;
}

/* ---- pools ---- */

enum { POOL_CHUNK = 4 << 20 };

typedef struct pool_chunk {
    struct pool_chunk *next;
    size_t used, cap;
    unsigned char *bytes;
} pool_chunk;

struct sat_pool {
    pool_chunk *chunks; /* the newest first: the one allocated from */
};

sat_pool *sat_pool_new(void) { return sat_xcalloc(1, sizeof(sat_pool)); }

void *sat_pool_zalloc(sat_pool *pool, size_t n)
{
    n = (n + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    pool_chunk *c = pool->chunks;
    if (!c || c->cap - c->used < n) {
        c = sat_xcalloc(1, sizeof *c);
        c->cap = sat_large_size(n > POOL_CHUNK ? n : POOL_CHUNK);
        c->bytes = sat_xmalloc_large(c->cap);
        c->next = pool->chunks;
        pool->chunks = c;
    }
    void *p = c->bytes + c->used;
    c->used += n;
    return memset(p, 0, n);
}

void sat_pool_free(sat_pool *pool)
{
    if (!pool) return;
    for (pool_chunk *c = pool->chunks, *next; c; c = next) {
        next = c->next;
        free(c->bytes);
        free(c);
    }
    free(pool);
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

int sat_getopt(int argc, char *const argv[], const char *shortopts, const struct option *longopts)
{
    char spec[128]; /* a leading ':' tells a missing argument from an unknown option */
    snprintf(spec, sizeof spec, ":%s", shortopts);
    opterr = 0;
    int c = getopt_long(argc, argv, spec, longopts, NULL);
    if (c != '?' && c != ':') return c;
    const char *arg = argv[optind - 1];
    char name[64];
    if (strncmp(arg, "--", 2) == 0) /* the long option as given, without "=value" */
        snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    else
        snprintf(name, sizeof name, "-%c", optopt);
    if (c == ':') sat_usage_error("option '%s' needs an argument", name);
    for (const struct option *o = longopts; o->name; o++)
        if (strcmp(o->name, name + 2) == 0) sat_usage_error("option '%s' takes no argument", name);
    sat_usage_error("unknown option '%s'", name);
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

/* What is refused before a byte is read: a directory, a regular file over
 * max.  *size: a regular file's size, else 0. */
static int refuse_unread(FILE *f, size_t max, size_t *size, char *err, size_t errlen)
{
    struct stat st;
    *size = 0;
    if (fstat(fileno(f), &st) != 0) return 0;
    if (S_ISDIR(st.st_mode)) {
        sat_fail(err, errlen, "is a directory");
        return -1;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
        sat_fail(err, errlen, "larger than the limit of %zu bytes", max);
        return -1;
    }
    if (S_ISREG(st.st_mode)) *size = (size_t)st.st_size;
    return 0;
}

/* Read what is left of f after the n bytes in *buf (cap allocated), up to
 * max + 1 bytes in all. */
static size_t read_rest(FILE *f, unsigned char **buf, size_t cap, size_t n, size_t max)
{
    for (;;) {
        if (n == cap) {
            if (cap >= max + 1) break;
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            *buf = sat_xrealloc(*buf, cap);
        }
        size_t got = fread(*buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    return n;
}

int sat_read_file(const char *path, size_t max, unsigned char **data, size_t *len,
                  char *err, size_t errlen)
{
    return sat_read_file_checked(path, max, NULL, data, len, err, errlen);
}

int sat_read_file_checked(const char *path, size_t max, sat_head_check check,
                          unsigned char **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        sat_fail(err, errlen, "%s", strerror(errno));
        return -1;
    }
    size_t size, head = 1 << 16;
    if (refuse_unread(f, max, &size, err, errlen)) {
        if (f != stdin) fclose(f);
        return -1;
    }
    /* A regular file's whole size (and a byte to see its end) at once, in
     * huge pages when large: a model's params are used where they lie. */
    size_t cap = size + 1 > head ? size + 1 : head;
    unsigned char *buf = sat_xmalloc_large(cap);
    size_t n = fread(buf, 1, head, f);
    /* The first 64 KiB (all of a smaller input) are looked at before any
     * more is read: a FIFO or /dev/zero of the wrong kind is refused at once. */
    int refused = check && !ferror(f) && check(buf, n, err, errlen) != 0;
    if (!refused) n = read_rest(f, &buf, cap, n, max);
    int rerr = ferror(f);
    if (f != stdin) fclose(f);
    if (!refused && rerr) {
        sat_fail(err, errlen, "read error: %s", strerror(errno ? errno : EIO));
        refused = 1;
    } else if (!refused && n > max) {
        sat_fail(err, errlen, "larger than the limit of %zu bytes", max);
        refused = 1;
    }
    if (refused) {
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

/* Where a write to `path` goes: the end of its chain of symlinks (a dangling
 * one too: the file it names is created), so that the rename replaces the
 * file the link points to, not the link.  malloc'd. */
static char *resolve_links(const char *path)
{
    char *p = sat_xstrdup(path);
    for (int hops = 0; hops < 40; hops++) {
        struct stat st;
        if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode)) return p;
        char target[PATH_MAX];
        ssize_t n = readlink(p, target, sizeof target - 1);
        if (n <= 0) sat_die("%s: %s", path, strerror(n < 0 ? errno : ENOENT));
        target[n] = 0;
        const char *slash = strrchr(p, '/');
        char *next;
        if (target[0] == '/' || !slash) next = sat_xstrdup(target);
        else if (asprintf(&next, "%.*s/%s", (int)(slash - p), p, target) < 0) sat_die("out of memory");
        free(p);
        p = next;
    }
    sat_die("%s: %s", path, strerror(ELOOP));
}

/* A device, FIFO or the like is written in place (as '> path' would): a
 * rename would replace the node itself (-o /dev/null, for everyone).  Such
 * a write cannot be undone; a->tmp stays NULL. */
static void open_in_place(sat_atomic *a, const char *path, const struct stat *st)
{
    if (S_ISDIR(st->st_mode)) sat_die("%s: is a directory", path);
    if (S_ISSOCK(st->st_mode)) sat_die("%s: is a socket, not a file or device to write", path);
    a->path = sat_xstrdup(path);
    a->tmp = NULL;
    a->f = fopen(path, "wbe");
    if (!a->f) sat_die("%s: %s", path, strerror(errno));
}

/* Temp files are named PATH.tmp.PID.XXXXXX and flock'ed while written, so
 * that the next writer of PATH can remove those of a writer that was killed
 * (kill -9 runs no cleanup): its pid is gone and the lock is free.  Both are
 * asked: the pid alone may be another pid namespace's (a container sharing
 * the directory), the lock alone is not yet taken between mkstemp and flock.
 * Only PATH's own temp files are looked at: PATH is about to be replaced. */

/* The PID in name if it is a temp name of base's, else 0. */
static long temp_pid(const char *name, const char *base, size_t baselen)
{
    if (strncmp(name, base, baselen) != 0 || strncmp(name + baselen, ".tmp.", 5) != 0) return 0;
    const char *digits = name + baselen + 5;
    if (*digits < '0' || *digits > '9') return 0;
    char *end;
    long pid = strtol(digits, &end, 10);
    return *end == '.' && strlen(end + 1) == 6 && pid <= INT_MAX ? pid : 0;
}

static void remove_if_unlocked(int dir, const char *name)
{
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0)
        unlinkat(dir, name, 0);
    close(fd);
}

static void remove_stale_temps(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : sat_xstrdup(".");
    if (!dir) sat_die("out of memory");
    const char *base = slash ? slash + 1 : path;
    DIR *d = opendir(dir);
    free(dir);
    if (!d) return; /* mkstemp will say why */
    size_t baselen = strlen(base);
    for (struct dirent *e; (e = readdir(d));) {
        long pid = temp_pid(e->d_name, base, baselen);
        if (pid > 0 && pid != getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            remove_if_unlocked(dirfd(d), e->d_name);
    }
    closedir(d);
}

void sat_atomic_open(sat_atomic *a, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        open_in_place(a, path, &st);
        return;
    }
    a->path = resolve_links(path);
    remove_stale_temps(a->path);
    size_t n = strlen(a->path) + 48;
    a->tmp = sat_xmalloc(n);
    snprintf(a->tmp, n, "%s.tmp.%ld.XXXXXX", a->path, (long)getpid());
    int fd = mkostemp(a->tmp, O_CLOEXEC);
    if (fd < 0) sat_die("%s: cannot create temp file: %s", a->path, strerror(errno));
    track_pending(a->tmp, 1);
    flock(fd, LOCK_EX); /* a new file: nobody else holds it */
    a->f = fdopen(fd, "wb");
    if (!a->f) sat_die("%s: %s", a->path, strerror(errno));
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

/* Flush, sync and close f: 0, or the errno of the first failure.  A pipe or
 * a character device cannot be synced (EINVAL): nothing is lost. */
static int finish_file(FILE *f)
{
    int err = 0;
    if (fflush(f) != 0 || ferror(f)) err = errno ? errno : EIO;
    else if (fsync(fileno(f)) != 0 && errno != EINVAL) err = errno;
    if (fclose(f) != 0 && !err) err = errno ? errno : EIO;
    return err;
}

void sat_atomic_commit(sat_atomic *a)
{
    int err = finish_file(a->f);
    a->f = NULL;
    if (!err && a->tmp) {
        /* mkstemp creates 0600; give the result the usual umask-derived mode. */
        mode_t um = umask(0);
        umask(um);
        chmod(a->tmp, 0666 & ~um);
        if (rename(a->tmp, a->path) != 0) err = errno;
    }
    if (err) {
        char *path = a->path;
        a->path = NULL;
        sat_atomic_abort(a);
        sat_die("%s: write error: %s", path, strerror(err));
    }
    if (a->tmp) track_pending(a->tmp, 0);
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
