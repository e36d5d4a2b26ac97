/* pipeline.c — see pipeline.h. */
#include "pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"

/* How far the run is: images handed to the stage, bytes read of the inputs. */
typedef struct {
    sat_progress meter;
    size_t images;
    double bytes_done, bytes_total; /* bytes_total 0: some input's size is unknown */
} run_progress;

static double regular_size(FILE *f)
{
    struct stat st;
    return fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (double)st.st_size : 0;
}

/* The sizes of all inputs, or 0 if any is not a regular file (a pipe). */
static double inputs_size(char *const *files, int n)
{
    if (n == 0) return regular_size(stdin);
    double total = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        int is_stdin = strcmp(files[i], "-") == 0;
        if (is_stdin ? fstat(STDIN_FILENO, &st) : stat(files[i], &st)) continue; /* reported later */
        if (!S_ISREG(st.st_mode)) return 0;
        total += (double)st.st_size;
    }
    return total;
}

static void on_features(const sat_pipeline *p, const sat_record *rec, float *feats)
{
    sat_features f;
    char err[512];
    if (sat_features_parse(rec, &f, err, sizeof err) ||
        sat_captioner_check(p->cap, &f, err, sizeof err)) {
        sat_warn("%s", err);
        sat_features_free(&f);
        return;
    }
    if (f.thumbnail && p->out && !p->keep_features) {
        sat_thumbnail_pack(p->out, f.id, f.thumbnail, f.thumbnail_len);
        sat_writer_end(p->out);
    }
    sat_features_to_f32(&f, feats);
    p->fn(p->ctx, &f, feats);
    sat_features_free(&f);
}

static void run_stream(const sat_pipeline *p, FILE *in, const char *name, float *feats,
                       run_progress *rp)
{
    sat_reader *r = sat_reader_open(in, name, p->max_record);
    sat_record rec;
    int st;
    while ((st = sat_reader_next(r, &rec)) != SAT_READ_END) {
        if (st != SAT_READ_OK) {
            sat_warn("%s", sat_reader_error(r));
            if (st == SAT_READ_FATAL) break;
            continue;
        }
        if (sat_record_is(&rec, "features")) {
            if (p->out && p->keep_features) sat_write_raw(p->out, &rec);
            on_features(p, &rec, feats);
            double read = rp->bytes_done + (double)(rec.offset + rec.raw_len);
            sat_progress_update(&rp->meter, ++rp->images,
                                rp->bytes_total > 0 ? read / rp->bytes_total : -1, NULL);
        } else if (!(p->other && p->other(p->ctx, &rec, name)) && p->out) {
            sat_write_raw(p->out, &rec);
        }
    }
    rp->bytes_done += regular_size(in);
    sat_reader_close(r);
}

void sat_pipeline_run(const sat_pipeline *p, char *const *files, int n)
{
    const sat_decoder_config *c = sat_captioner_config(p->cap);
    float *feats = sat_xmalloc((size_t)c->L * c->D * sizeof *feats);
    run_progress rp = {.bytes_total = inputs_size(files, n)};
    sat_progress_begin(&rp.meter, "images", 0, p->quiet);
    if (n == 0) run_stream(p, stdin, "stdin", feats, &rp);
    for (int i = 0; i < n; i++) {
        int is_stdin = strcmp(files[i], "-") == 0;
        FILE *f = is_stdin ? stdin : fopen(files[i], "rb");
        if (!f) {
            sat_warn("%s: %s", files[i], strerror(errno));
            continue;
        }
        run_stream(p, f, is_stdin ? "stdin" : files[i], feats, &rp);
        if (!is_stdin) fclose(f);
    }
    sat_progress_end(&rp.meter);
    free(feats);
}
