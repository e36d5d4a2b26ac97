/* util.h — errors, checked allocation and file helpers shared by every sat program.
 *
 * Errors follow netpbm's pm_error: one line on stderr, "PROG: message", then
 * exit(1).  sat_warn() prints the same line and returns, for errors that
 * concern one input of many (the others go on; the program exits non-zero
 * at the end through sat_exit_status()).
 *
 * Outputs that matter (models, checkpoints, caches, -o files) go through
 * sat_atomic_open()/sat_atomic_commit(): written to a temp file in the same
 * directory and renamed over the target, so a kill never leaves a torn file.
 * A symlink is followed (the file it names is replaced, the link stays); an
 * existing device or FIFO is written in place, never replaced by a file; a
 * directory or socket is refused.  Temp files of writers killed by a signal
 * that runs no handler (kill -9) are removed by the next writer of the path.
 */
#ifndef SAT_UTIL_H
#define SAT_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef SAT_VERSION
#define SAT_VERSION "unknown"
#endif

extern const char *sat_progname;

/* Record the program name (basename of argv[0]) for messages, and choose
 * OpenBLAS's kernels (sat_blas_init). */
void sat_init(const char *argv0);

_Noreturn void sat_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sat_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The library's error convention: write a one-line reason into err (errlen
 * bytes; err may be NULL) and return -1.  A caller's buffer for it is
 * SAT_ERR_MAX bytes, whatever the callee (one size, so that a message that
 * nests another, "FILE: record 3: why", is cut at the same length
 * everywhere). */
enum { SAT_ERR_MAX = 1024 };
int sat_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int sat_vfail(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* sat_fail for a message that quotes another library's (or a stream's id):
 * its control characters become spaces (sat_one_line), so that it stays one
 * line. */
int sat_fail_line(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sat_one_line(char *s);
/* 0 if no sat_warn() was issued, 1 otherwise. */
int sat_exit_status(void);

void *sat_xmalloc(size_t n);
void *sat_xcalloc(size_t n, size_t size);
/* n bytes for a large array (weights, activations), uninitialised, freed
 * with free(), aligned to 64 bytes; from 512 KiB up, rounded up to whole
 * 2 MiB pages, aligned to 2 MiB and marked for transparent huge pages, so
 * that first touching it takes one page fault per 2 MiB instead of one per
 * 4 KiB (a program's start-up is mostly page faults otherwise: ~10 us each
 * on a virtual machine). */
void *sat_xmalloc_large(size_t n);
/* The same, NULL when out of memory (a huge image is an error, not the end). */
void *sat_malloc_large(size_t n);
/* The bytes sat_xmalloc_large(n) makes usable: n rounded up as above. */
size_t sat_large_size(size_t n);
/* free() for a block of sat_(x)malloc_large(n) that is made again and again
 * (a batch's decoding state): a few such blocks of huge pages are kept, and
 * a later request of the same rounded size takes one back, without the page
 * faults and the kernel's zeroing of fresh pages (~5% of a batched beam
 * search).  Thread-safe; p may be NULL. */
void sat_free_large(void *p, size_t n);
void *sat_xrealloc(void *p, size_t n);
char *sat_xstrdup(const char *s);

/* A bump allocator for many arrays freed together (a CNN plan's packed
 * weights): chunks of sat_xmalloc_large's huge pages, so that a plan of
 * 3.5 MB in 60 arrays takes two page faults instead of ~900. */
typedef struct sat_pool sat_pool;
sat_pool *sat_pool_new(void);
/* n zeroed bytes, aligned to 64, valid until sat_pool_free. */
void *sat_pool_zalloc(sat_pool *pool, size_t n);
void sat_pool_free(sat_pool *pool);

/* Print "PROG VERSION" and exit 0; print usage text to stdout and exit 0. */
_Noreturn void sat_print_version(void);
_Noreturn void sat_print_usage(const char *usage);
/* "PROG: MSG\nTry 'PROG --help'." on stderr, exit 2 (bad command line). */
/* A status line on stderr (progress), redrawn in place; every message above
 * erases it first, so lines never mix with it. */
void sat_status_draw(const char *text);
void sat_status_erase(void);
_Noreturn void sat_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* getopt_long (without its own messages): an unknown option or one without
 * its argument is a usage error, one line naming it and the --help hint. */
struct option;
int sat_getopt(int argc, char *const argv[], const char *shortopts, const struct option *longopts);

/* Parse a whole decimal integer in [lo, hi] or die naming the option. */
long sat_parse_long(const char *opt, const char *s, long lo, long hi);
double sat_parse_double(const char *opt, const char *s, double lo, double hi);

/* fopen that dies with "PROG: PATH: strerror" on failure. "-" is stdin/stdout. */
FILE *sat_fopen_check(const char *path, const char *mode);
/* fclose/fflush with error check; dies naming `what` (e.g. "stdout"). */
void sat_fclose_check(FILE *f, const char *what);

/* Read a whole file (at most max bytes) into a malloc'd buffer.
 * Returns 0, or -1 with a message in err (no exit). */
int sat_read_file(const char *path, size_t max, unsigned char **data, size_t *len,
                  char *err, size_t errlen);
/* A look at the first bytes of a file (n: up to 64 KiB, fewer only at its
 * end) before the rest is read: 0 to read on, or -1 with a message in err. */
typedef int (*sat_head_check)(const unsigned char *head, size_t n, char *err, size_t errlen);
/* sat_read_file, refusing what check refuses before buffering any more (a
 * FIFO or a device of the wrong kind, such as /dev/zero, is not read whole). */
int sat_read_file_checked(const char *path, size_t max, sat_head_check check,
                          unsigned char **data, size_t *len, char *err, size_t errlen);

/* Atomic output file: temp file beside `path`, renamed on commit. */
typedef struct {
    FILE *f;
    char *path; /* the file written: `path` with its symlinks resolved */
    char *tmp;  /* PATH.tmp.PID.XXXXXX, or NULL for a device or FIFO written in place */
} sat_atomic;
void sat_atomic_open(sat_atomic *a, const char *path);
/* Flush, fsync, close and rename; dies (after removing the temp file) on error,
 * e.g. "PATH: write error: No space left on device". */
void sat_atomic_commit(sat_atomic *a);
/* Remove the temp file (on error paths). */
void sat_atomic_abort(sat_atomic *a);

/* Directory of the running executable (from /proc/self/exe), malloc'd. */
char *sat_exe_dir(void);
/* Locate a model file by name: $SAT_MODEL_DIR, EXE_DIR/../models,
 * EXE_DIR/../share/sat, SAT_DATADIR.  Returns a malloc'd path or NULL. */
char *sat_find_model(const char *name);

/* Hex SHA-256 (65 bytes with NUL) of a buffer, via OpenSSL's libcrypto. */
void sat_sha256_hex(const void *data, size_t len, char out[65]);

/* Wall-clock seconds (monotonic). */
double sat_now(void);

#endif
