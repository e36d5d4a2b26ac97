/* pipeline.c — see pipeline.h. */
#include "pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

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
    sat_features_to_f32(&f, feats);
    p->fn(p->ctx, &f, feats);
    sat_features_free(&f);
}

static void run_stream(const sat_pipeline *p, FILE *in, const char *name, float *feats)
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
        } else if (!(p->other && p->other(p->ctx, &rec, name)) && p->out) {
            sat_write_raw(p->out, &rec);
        }
    }
    sat_reader_close(r);
}

void sat_pipeline_run(const sat_pipeline *p, char *const *files, int n)
{
    const sat_decoder_config *c = sat_captioner_config(p->cap);
    float *feats = sat_xmalloc((size_t)c->L * c->D * sizeof *feats);
    if (n == 0) run_stream(p, stdin, "stdin", feats);
    for (int i = 0; i < n; i++) {
        int is_stdin = strcmp(files[i], "-") == 0;
        FILE *f = is_stdin ? stdin : fopen(files[i], "rb");
        if (!f) {
            sat_warn("%s: %s", files[i], strerror(errno));
            continue;
        }
        run_stream(p, f, is_stdin ? "stdin" : files[i], feats);
        if (!is_stdin) fclose(f);
    }
    free(feats);
}
