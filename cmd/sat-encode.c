/* sat-encode — images to `features` records: the annotation vectors of
 * Show, Attend and Tell, from MobileNetV2 at output stride 16 (14x14x1280).
 *
 * parse options → open the model → a pool of workers, each taking the next
 * image, decoding, resizing and running the CNN → records written in input
 * order by the main thread as soon as each is done.  Memory is constant: at
 * most 2 records per worker wait for the writer.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sat/blas.h"
#include "sat/cnn.h"
#include "sat/escape.h"
#include "sat/frames.h"
#include "sat/image.h"
#include "sat/model.h"
#include "sat/progress.h"
#include "sat/qnn.h"
#include "sat/stream.h"
#include "sat/util.h"

#define DEFAULT_MODEL "mobilenet_v2_1.0_224_quant.satm"
#define MAX_FILE_BYTES ((size_t)1 << 30)

static const char usage[] =
    "Usage: sat-encode [OPTION]... [IMAGE]...\n"
    "Encode JPEG, PNG and netpbm (PBM/PGM/PPM/PAM) images into sat `features`\n"
    "records (14x14x1280 MobileNetV2 annotation vectors by default), written to\n"
    "stdout in input order.  IMAGE '-' reads stdin: one image, or several\n"
    "concatenated (a video's frames), whose ids are ID#0001, ID#0002, ...\n"
    "\n"
    "  -m, --model FILE       encoder model (default: the installed " DEFAULT_MODEL ")\n"
    "  -T, --files-from FILE  read image paths from FILE ('-' = stdin), one per line\n"
    "  -o, --output FILE      write the stream to FILE (atomically) instead of stdout;\n"
    "                         with --shard, %k in FILE is the shard, %n the count\n"
    "      --stride N         output stride: 16 (default: 14x14 at 224), 32 (7x7) or\n"
    "                         8 (28x28)\n"
    "      --size N           input side in pixels (default 224; a multiple of the stride)\n"
    "      --dtype T          f16 (default), f32, or u8 (a quarter of f32: 8 bits,\n"
    "                         scale and zero point per record)\n"
    "      --precision P      float, int8 or auto: the CNN in float32, or in integers\n"
    "                         as the uint8 model was trained (AVX-512 VNNI where the\n"
    "                         CPU has it, else portable C, slow); auto (default) is\n"
    "                         int8 where the CPU has VNNI, else float\n"
    "      --no-flip          one view: the image alone.  By default the left-right\n"
    "                         mirror image is a second view (`views` 2: its map flipped\n"
    "                         back, location for location) that captions read too, for\n"
    "                         a second CNN pass and twice the output; a cache for\n"
    "                         sat-train (which reads view 0) wants --no-flip\n"
    "      --flip             the two views (the default, except with --classify)\n"
    "      --id NAME          id of the image(s) read from stdin (default '-')\n"
    "      --thumbnail[=N]    embed a PNG of the image, longer side N pixels (default\n"
    "                         224), for sat-heatmap when the image file is gone\n"
    "      --classify         print the top ImageNet labels (label<TAB>probability) instead\n"
    "  -k, --top N            with --classify, how many labels (default 5)\n"
    "  -j, --jobs N           images encoded in parallel (default: the number of CPUs)\n"
    "      --shard K/N        encode only every N-th input from the K-th (0-based); K/N\n"
    "                         'mpi': this rank of mpirun's job (from its environment)\n"
    "      --max-pixels N     refuse larger images (default 100000000)\n"
    "  -q, --quiet            no progress on stderr\n"
    "  -h, --help             show this help and exit\n"
    "  -V, --version          show the version and exit\n"
    "\n"
    "Examples:\n"
    "  sat-encode photo.jpg | sat-decode\n"
    "  sat-encode --classify photo.jpg\n"
    "  find imgs -name '*.jpg' | sat-encode -T - -o feats.sat\n"
    "  ffmpeg -i clip.mp4 -vf fps=1 -f image2pipe -c:v ppm - | sat-encode - | sat-beam\n"
    "  mpirun -np 4 sat-encode --shard mpi -T list.txt -o feats-%k.sat\n";

typedef struct {
    const char *model_path;
    const char *files_from;
    const char *output;
    const char *stdin_id;
    const char *shard_arg;       /* --shard as given */
    char *output_expanded;       /* -o with --shard's %k and %n replaced */
    int stride, size, jobs, classify, top, quiet, thumbnail;
    int views;                   /* 2: the image and its mirror (default); 1: --no-flip */
    int shard, shards;           /* --shard K/N: inputs i with i % N == K */
    sat_dtype dtype;
    int precision;               /* -1: auto, else a sat_cnn_precision */
    uint64_t max_pixels;
} options;

/* Where the image paths come from: the command line or a list file. */
typedef struct {
    char **argv;
    int argc, next_arg;
    size_t inputs_seen;  /* paths read so far, in every shard (--shard) */
    int one_arg;         /* one IMAGE argument and no -T list */
    FILE *list;
    const char *list_name;
    char *line;
    size_t line_cap;
    size_t lineno;
    double list_size, list_read; /* bytes of a regular list file, and read so far (progress) */
    int in_frames;   /* reading images from stdin, one frame after another */
    int frame_no;    /* frames read so far */
    int numbered;    /* stdin holds several: their ids get #NNNN */
} input_source;

/* The next image to encode: a path to read, or a frame already read from
 * stdin (data), or the error met reading it. */
typedef struct {
    char *path;
    char *id, *shown;        /* id of the record, name in messages */
    unsigned char *data;
    size_t len;
    char *error;
    int alone;               /* the only image of the run (--classify: no header) */
} job;

/* One finished image waiting for the writer. */
typedef struct {
    int ready;
    char *bytes;     /* what to write to the output (a record or text) */
    size_t len;
    char *error;     /* or the one-line error for this image */
} slot;

typedef struct {
    const options *opt;
    const sat_model *model;
    const sat_cnn *cnn;
    int fh, fw, fc, nclasses;
    input_source src;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    slot *slots;
    size_t nslots;
    size_t next_in, next_out; /* image indices */
    int inputs_done;
    size_t total;             /* known number of inputs, 0 if streaming */
    size_t written;           /* images encoded and written */
    int views_side_by_side;   /* one image of two views: view 1 on a thread of its own */
} encoder;

/* An empty line, or one of white space only: no file name (skipped). */
static int is_blank(const char *s)
{
    return s[strspn(s, " \t\r\v\f")] == 0;
}

/* Next image path of any shard, or NULL at the end.  Caller holds the lock. */
static char *next_any_path(encoder *e)
{
    input_source *s = &e->src;
    if (s->list) {
        for (;;) {
            ssize_t n = getline(&s->line, &s->line_cap, s->list);
            if (n < 0) {
                if (ferror(s->list)) sat_warn("%s: read error: %s", s->list_name, strerror(errno));
                return NULL;
            }
            s->lineno++;
            s->list_read += (double)n;
            while (n > 0 && (s->line[n - 1] == '\n' || s->line[n - 1] == '\r')) s->line[--n] = 0;
            if (memchr(s->line, 0, (size_t)n))
                sat_warn("%s:%zu: a NUL byte in the line (no file name has one); line skipped",
                         s->list_name, s->lineno);
            else if (!is_blank(s->line)) return sat_xstrdup(s->line);
        }
    }
    if (s->next_arg < s->argc) return sat_xstrdup(s->argv[s->next_arg++]);
    return NULL;
}

/* Next image path of this shard (every path with --shard 0/1). */
static char *next_path(encoder *e)
{
    char *path;
    while ((path = next_any_path(e)) && e->src.inputs_seen++ % (size_t)e->opt->shards !=
                                            (size_t)e->opt->shard)
        free(path);
    return path;
}

static char *format_error(const char *path, const char *what)
{
    char *msg;
    if (asprintf(&msg, "%s: %s", path, what) < 0) sat_die("out of memory");
    return msg;
}

static char *frame_id(const char *base, int n)
{
    char *s;
    if (asprintf(&s, "%s#%04d", base, n) < 0) sat_die("out of memory");
    return s;
}

/* The next frame of stdin as a job; 0 when stdin is done (then the source
 * goes on with its next path).  A frame that cannot be read ends stdin. */
static int next_frame(encoder *e, job *j)
{
    input_source *s = &e->src;
    char err[SAT_ERR_MAX];
    int rc = sat_frame_read(stdin, MAX_FILE_BYTES, &j->data, &j->len, err, sizeof err);
    if (rc == 0 && s->frame_no > 0) {
        s->in_frames = 0;
        return 0;
    }
    int n = ++s->frame_no;
    if (n == 1 && rc == 1) s->numbered = sat_frame_more(stdin);
    if (rc == 0) sat_fail(err, sizeof err, "empty file");
    if (rc != 1) s->in_frames = 0;
    j->id = s->numbered ? frame_id(e->opt->stdin_id, n) : sat_xstrdup(e->opt->stdin_id);
    if (s->numbered && asprintf(&j->shown, "stdin (image %d)", n) < 0) sat_die("out of memory");
    if (!s->numbered) j->shown = sat_xstrdup("stdin");
    if (rc != 1) j->error = format_error(j->shown, err);
    j->alone = !s->numbered && s->one_arg;
    return 1;
}

/* The next job, 0 at the end of the inputs.  Caller holds the lock. */
static int next_job(encoder *e, job *j)
{
    memset(j, 0, sizeof *j);
    for (;;) {
        if (e->src.in_frames && next_frame(e, j)) return 1;
        char *path = next_path(e);
        if (!path) return 0;
        if (strcmp(path, "-") == 0) {
            free(path);
            e->src.in_frames = 1;
            e->src.frame_no = e->src.numbered = 0;
            continue;
        }
        j->path = path;
        j->id = sat_xstrdup(path);
        j->shown = sat_xstrdup(path);
        j->alone = e->src.one_arg;
        return 1;
    }
}

static void job_free(job *j)
{
    free(j->path);
    free(j->id);
    free(j->shown);
    free(j->data);
    free(j->error);
}

/* Top-k labels as text lines. */
static char *classify_text(const encoder *e, const job *j, const float *probs, size_t *len)
{
    char *text = NULL;
    FILE *mem = open_memstream(&text, len);
    if (!mem) sat_die("out of memory");
    if (!j->alone) {
        char *escaped = sat_escape_id(j->id);
        fprintf(mem, "==> %s <==\n", escaped);
        free(escaped);
    }
    int k = e->opt->top < e->nclasses ? e->opt->top : e->nclasses;
    char *used = sat_xcalloc((size_t)e->nclasses, 1);
    for (int r = 0; r < k; r++) {
        int best = -1;
        for (int i = 0; i < e->nclasses; i++)
            if (!used[i] && (best < 0 || probs[i] > probs[best])) best = i;
        used[best] = 1;
        const char *label = best < e->model->nlabels ? e->model->labels[best] : NULL;
        if (label) fprintf(mem, "%s\t%.4f\n", label, probs[best]);
        else fprintf(mem, "class %d\t%.4f\n", best, probs[best]);
    }
    free(used);
    fclose(mem);
    return text;
}

static char *features_bytes(const encoder *e, const char *id, const sat_image *img,
                            const float *feats, size_t *len)
{
    unsigned char *thumb = NULL;
    size_t thumb_len = 0;
    if (e->opt->thumbnail && sat_image_thumbnail_png(img, e->opt->thumbnail, &thumb, &thumb_len))
        sat_die("%s: cannot make a thumbnail", id);
    sat_features f = {
        .id = (char *)id, .h = (uint32_t)e->fh, .w = (uint32_t)e->fw, .c = (uint32_t)e->fc,
        .views = (uint32_t)e->opt->views, .dtype = e->opt->dtype, .image_width = (uint32_t)img->width,
        .image_height = (uint32_t)img->height, .encoder_name = e->model->name,
        .encoder_sha256 = (char *)e->model->weights_sha256,
        .encoder_size = (uint32_t)e->opt->size, .encoder_stride = (uint32_t)e->opt->stride,
        .encoder_precision = sat_cnn_get_precision(e->cnn) == SAT_CNN_INT8 ? "int8" : NULL,
        .thumbnail = thumb, .thumbnail_len = thumb_len,
    };
    sat_writer w;
    sat_writer_init(&w, NULL, "features");
    sat_features_pack(&w, &f, feats);
    free(thumb);
    *len = w.buf.size;
    return msgpack_sbuffer_release(&w.buf);
}

typedef struct {
    sat_cnn_work *ws, *ws1;       /* ws1, input1: view 1's, with views_side_by_side */
    float *input, *input1, *feats, *probs; /* feats: views × h × w × c */
    float *block;                 /* the four arrays above, in one allocation */
} worker_buffers;

/* A worker's buffers in one large allocation (huge pages: a lone photo's
 * inputs and maps would otherwise cost ~1000 first-touch page faults). */
static void worker_buffers_new(const encoder *e, worker_buffers *b)
{
    enum { ALIGN = 16 }; /* floats: 64 bytes */
    const size_t input = ((size_t)e->opt->size * e->opt->size * 3 + ALIGN - 1) / ALIGN * ALIGN;
    const size_t feats = ((size_t)e->opt->views * e->fh * e->fw * e->fc + ALIGN - 1) / ALIGN * ALIGN;
    const size_t probs = (size_t)(e->nclasses ? e->nclasses : 1);
    const size_t input1 = e->views_side_by_side ? input : 0;
    b->ws = sat_cnn_work_new(e->cnn);
    b->ws1 = e->views_side_by_side ? sat_cnn_work_new(e->cnn) : NULL;
    b->block = sat_xmalloc_large((input + input1 + feats + probs) * sizeof(float));
    b->input = b->block;
    b->input1 = input1 ? b->input + input : NULL;
    b->feats = b->input + input + input1;
    b->probs = b->feats + feats;
}

static void worker_buffers_free(worker_buffers *b)
{
    sat_cnn_work_free(b->ws);
    if (b->ws1) sat_cnn_work_free(b->ws1);
    free(b->block);
}

/* Mirror an h × w grid of c-vectors left-right in place: x -> w-1-x. */
static void flip_columns(float *x, int h, int w, int c)
{
    for (int y = 0; y < h; y++)
        for (int l = 0, r = w - 1; l < r; l++, r--) {
            float *a = x + ((size_t)y * w + l) * c, *b = x + ((size_t)y * w + r) * c;
            for (int k = 0; k < c; k++) {
                float t = a[k];
                a[k] = b[k];
                b[k] = t;
            }
        }
}

/* --flip: view 1, the map of the mirrored input, flipped back so that each
 * location is the same place of the image as in view 0 (the decoder's
 * attention has no notion of position: no caption changes by it, and the
 * views' attention maps average location by location). */
static void encode_mirror(const encoder *e, sat_cnn_work *ws, float *input, float *view1)
{
    flip_columns(input, e->opt->size, e->opt->size, 3);
    sat_cnn_forward(e->cnn, ws, input, view1, NULL);
    flip_columns(view1, e->fh, e->fw, e->fc);
}

typedef struct {
    const encoder *e;
    worker_buffers *b;
} mirror_job;

static void *mirror_thread(void *arg)
{
    const mirror_job *m = arg;
    const encoder *e = m->e;
    encode_mirror(e, m->b->ws1, m->b->input1, m->b->feats + (size_t)e->fh * e->fw * e->fc);
    return NULL;
}

/* Both views' maps of b->input (and the class probabilities of view 0 with
 * --classify).  A lone image's two CNN passes run side by side on two
 * threads (one BLAS thread each): the same floats as one after the other. */
static void encode_views(const encoder *e, worker_buffers *b)
{
    const options *o = e->opt;
    float *view1 = b->feats + (size_t)e->fh * e->fw * e->fc;
    pthread_t tid;
    mirror_job m = {e, b};
    int threaded = e->views_side_by_side;
    if (threaded) {
        memcpy(b->input1, b->input, (size_t)o->size * o->size * 3 * sizeof *b->input);
        threaded = pthread_create(&tid, NULL, mirror_thread, &m) == 0;
    }
    sat_cnn_forward(e->cnn, b->ws, b->input, b->feats, o->classify ? b->probs : NULL);
    if (threaded) pthread_join(tid, NULL);
    else if (o->views == 2) encode_mirror(e, b->ws, b->input, view1);
}

/* Encode one image; fills the slot's bytes or error. */
static void encode_one(const encoder *e, worker_buffers *b, job *j, slot *out)
{
    const options *o = e->opt;
    char err[SAT_ERR_MAX];
    if (j->error) {
        out->error = j->error;
        j->error = NULL;
        return;
    }
    if (j->path && sat_read_file_checked(j->path, MAX_FILE_BYTES, sat_image_check_head, &j->data,
                                         &j->len, err, sizeof err)) {
        out->error = format_error(j->shown, err);
        return;
    }
    sat_image img;
    if (sat_image_decode(j->data, j->len, o->max_pixels, &img, err, sizeof err)) {
        out->error = format_error(j->shown, err);
        return;
    }
    sat_image_to_input(&img, o->size, o->size, b->input);
    encode_views(e, b);
    out->bytes = o->classify ? classify_text(e, j, b->probs, &out->len)
                             : features_bytes(e, j->id, &img, b->feats, &out->len);
    sat_image_free(&img);
}

static void *worker(void *arg)
{
    encoder *e = arg;
    worker_buffers b;
    worker_buffers_new(e, &b);
    pthread_mutex_lock(&e->lock);
    for (;;) {
        /* Wait for room: never more than nslots images ahead of the writer. */
        while (!e->inputs_done && e->next_in >= e->next_out + e->nslots)
            pthread_cond_wait(&e->changed, &e->lock);
        job j;
        if (e->inputs_done || !next_job(e, &j)) {
            e->inputs_done = 1;
            pthread_cond_broadcast(&e->changed);
            break;
        }
        size_t index = e->next_in++;
        pthread_mutex_unlock(&e->lock);

        slot done = {0};
        encode_one(e, &b, &j, &done);
        job_free(&j);

        pthread_mutex_lock(&e->lock);
        done.ready = 1;
        e->slots[index % e->nslots] = done;
        pthread_cond_broadcast(&e->changed);
    }
    pthread_mutex_unlock(&e->lock);
    worker_buffers_free(&b);
    return NULL;
}

/* Main thread: write finished slots in input order until all are written. */
static void write_in_order(encoder *e, sat_writer *w)
{
    sat_progress progress; /* none for a single image: nothing to wait for */
    sat_progress_begin(&progress, "images", e->total,
                       e->opt->quiet || (e->src.one_arg && e->total == 1));
    pthread_mutex_lock(&e->lock);
    for (;;) {
        slot *s = &e->slots[e->next_out % e->nslots];
        while (!s->ready && !(e->inputs_done && e->next_out == e->next_in))
            pthread_cond_wait(&e->changed, &e->lock);
        if (!s->ready) break;
        slot done = *s;
        memset(s, 0, sizeof *s);
        e->next_out++;
        double fraction = e->src.list_size > 0 ? e->src.list_read / e->src.list_size : -1;
        pthread_cond_broadcast(&e->changed);
        pthread_mutex_unlock(&e->lock);
        if (done.error) {
            sat_warn("%s", done.error);
        } else {
            sat_writer_write(w, done.bytes, done.len);
            e->written++;
        }
        free(done.error);
        free(done.bytes);
        sat_progress_update(&progress, e->next_out, fraction, NULL);
        pthread_mutex_lock(&e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    sat_progress_end(&progress);
}

/* This process's rank and the job's size, from the environment the MPI
 * launchers give their processes (Open MPI, MPICH/Hydra and PMI, Slurm);
 * 0 when there is none. */
static int mpi_rank_from_env(int *rank, int *size)
{
    static const char *const vars[][2] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                          {"PMI_RANK", "PMI_SIZE"},
                                          {"SLURM_PROCID", "SLURM_NTASKS"}};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *r = getenv(vars[i][0]), *n = getenv(vars[i][1]);
        if (r && n) {
            *rank = (int)sat_parse_long(vars[i][0], r, 0, 1 << 20);
            *size = (int)sat_parse_long(vars[i][1], n, 1, 1 << 20);
            return 1;
        }
    }
    return 0;
}

/* --shard K/N, or 'mpi'. */
static void parse_shard(const char *arg, options *o)
{
    if (strcmp(arg, "mpi") == 0) {
        if (!mpi_rank_from_env(&o->shard, &o->shards))
            sat_usage_error("--shard mpi: no MPI rank in the environment (OMPI_COMM_WORLD_RANK, "
                            "PMI_RANK or SLURM_PROCID): run it under mpirun");
    } else {
        char extra;
        if (sscanf(arg, "%d/%d%c", &o->shard, &o->shards, &extra) != 2 || o->shards < 1 ||
            o->shards > (1 << 20) || o->shard < 0 || o->shard >= o->shards)
            sat_usage_error("--shard: '%s' is not K/N with 0 <= K < N, nor 'mpi'", arg);
    }
    if (o->shard >= o->shards)
        sat_usage_error("--shard mpi: rank %d of a job of %d", o->shard, o->shards);
}

/* FILE of -o with %k (the shard), %n (the shards) and %% replaced. */
static char *shard_output_name(const char *pattern, const options *o)
{
    char *name = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&name, &len);
    if (!f) sat_die("out of memory");
    for (const char *p = pattern; *p; p++) {
        if (p[0] == '%' && p[1] == 'k') fprintf(f, "%d", o->shard), p++;
        else if (p[0] == '%' && p[1] == 'n') fprintf(f, "%d", o->shards), p++;
        else if (p[0] == '%' && p[1] == '%') fputc('%', f), p++;
        else fputc(*p, f);
    }
    fclose(f);
    return name;
}

static int parse_precision(const char *arg)
{
    if (strcmp(arg, "auto") == 0) return -1;
    if (strcmp(arg, "float") == 0) return SAT_CNN_FLOAT;
    if (strcmp(arg, "int8") == 0) return SAT_CNN_INT8;
    sat_usage_error("--precision: '%s' is not auto, float or int8", arg);
}

static void parse_options(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},     {"files-from", required_argument, 0, 'T'},
        {"output", required_argument, 0, 'o'},    {"stride", required_argument, 0, 'S'},
        {"size", required_argument, 0, 'Z'},      {"dtype", required_argument, 0, 'D'},
        {"id", required_argument, 0, 'I'},        {"classify", no_argument, 0, 'C'},
        {"top", required_argument, 0, 'k'},       {"jobs", required_argument, 0, 'j'},
        {"max-pixels", required_argument, 0, 'P'}, {"quiet", no_argument, 0, 'q'},
        {"thumbnail", optional_argument, 0, 'H'}, {"shard", required_argument, 0, 'K'},
        {"precision", required_argument, 0, 'R'}, {"flip", no_argument, 0, 'F'},
        {"no-flip", no_argument, 0, 'N'},         {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (options){.stride = SAT_CNN_DEFAULT_STRIDE, .size = SAT_CNN_DEFAULT_SIZE, .top = 5,
                   .jobs = ncpu > 0 ? (int)ncpu : 1, .dtype = SAT_F16, .stdin_id = "-", .shards = 1, .precision = -1,
                   .max_pixels = SAT_IMAGE_DEFAULT_MAX_PIXELS, .views = 0};
    int c;
    while ((c = sat_getopt(argc, argv, "m:T:o:k:j:qhV", longopts)) != -1) {
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case 'T': o->files_from = optarg; break;
        case 'o': o->output = optarg; break;
        case 'S': o->stride = (int)sat_parse_long("--stride", optarg, 8, 32); break;
        case 'Z': o->size = (int)sat_parse_long("--size", optarg, 32, 2048); break;
        case 'D': {
            int t = sat_dtype_parse(optarg);
            if (t < 0) sat_usage_error("--dtype: '%s' is not f16, f32 or u8", optarg);
            o->dtype = (sat_dtype)t;
            break;
        }
        case 'I': o->stdin_id = optarg; break;
        case 'R': o->precision = parse_precision(optarg); break;
        case 'C': o->classify = 1; break;
        case 'F': o->views = 2; break;
        case 'N': o->views = 1; break;
        case 'k': o->top = (int)sat_parse_long("--top", optarg, 1, 1000000); break;
        case 'j': o->jobs = (int)sat_parse_long("--jobs", optarg, 1, 256); break;
        case 'P': o->max_pixels = (uint64_t)sat_parse_long("--max-pixels", optarg, 1, 1L << 40); break;
        case 'q': o->quiet = 1; break;
        case 'K': o->shard_arg = optarg; break;
        case 'H':
            o->thumbnail = optarg ? (int)sat_parse_long("--thumbnail", optarg, 8, 4096) : 224;
            break;
        case 'h': sat_print_usage(usage);
        case 'V': sat_print_version();
        }
    }
    if (o->stride != 8 && o->stride != 16 && o->stride != 32)
        sat_usage_error("--stride must be 8, 16 or 32");
    if (o->size % o->stride)
        sat_usage_error("--size %d is not a multiple of the stride %d", o->size, o->stride);
    if (optind == argc && !o->files_from)
        sat_usage_error("no images (give IMAGE arguments or --files-from)");
    if (o->classify && o->output) sat_usage_error("--classify writes text to stdout; drop -o");
    if (o->classify && o->views == 2) sat_usage_error("--flip makes features; --classify makes none");
    if (!o->views) o->views = o->classify ? 1 : 2;
    if (!o->shard_arg) return;
    parse_shard(o->shard_arg, o);
    int by_mpi = strcmp(o->shard_arg, "mpi") == 0;
    if (by_mpi && !(o->output && strstr(o->output, "%k")))
        sat_usage_error("--shard mpi needs -o FILE with %%k in it (the ranks cannot share one output)");
    if (o->output) o->output = o->output_expanded = shard_output_name(o->output, o);
}

static sat_model *open_model(const options *o)
{
    char *path = o->model_path ? sat_xstrdup(o->model_path) : sat_find_model(DEFAULT_MODEL);
    if (!path)
        sat_die("no encoder model: %s not found (run 'make models', set SAT_MODEL_DIR, or give -m)",
                DEFAULT_MODEL);
    char err[SAT_ERR_MAX];
    sat_model *m = sat_model_load(path, SAT_MODEL_IN_PLACE, err, sizeof err);
    if (!m) sat_die("%s", err);
    sat_model_convert_params(m); /* an f16 file's */
    free(path);
    return m;
}

/* --precision: int8 must be possible.  auto is int8 where its kernels are
 * fast (VNNI) and the model has its quantization, float elsewhere: int8's
 * features are within the tolerances issue 15 set (the man page has the
 * figures), and the portable integer kernels are slower than float. */
static void choose_precision(sat_cnn *cnn, const sat_model *model, int precision)
{
    char err[SAT_ERR_MAX];
    if (precision == -1 && qnn_have_vnni()) sat_cnn_set_precision(cnn, SAT_CNN_INT8, err, sizeof err);
    if (precision == SAT_CNN_INT8 && sat_cnn_set_precision(cnn, SAT_CNN_INT8, err, sizeof err) < 0)
        sat_die("%s: --precision int8: %s", model->name, err);
}

int main(int argc, char **argv)
{
    sat_init(argv[0]);
    options o;
    parse_options(argc, argv, &o);
    if (!o.classify && !o.output && isatty(STDOUT_FILENO))
        sat_die("refusing to write a binary stream to a terminal (pipe it into sat-dump, or use -o FILE)");

    sat_model *model = open_model(&o);
    char err[SAT_ERR_MAX];
    sat_cnn *cnn = sat_cnn_new(model, o.size, o.stride, err, sizeof err);
    if (!cnn) sat_die("%s", err);
    choose_precision(cnn, model, o.precision);

    encoder e = {.opt = &o, .model = model, .cnn = cnn};
    sat_cnn_feature_shape(cnn, &e.fh, &e.fw, &e.fc);
    e.nclasses = sat_cnn_num_classes(cnn);
    if (o.classify && e.nclasses == 0) sat_die("%s has no classifier head", model->name);
    e.src.argv = argv + optind;
    e.src.argc = argc - optind;
    e.src.one_arg = !o.files_from && e.src.argc == 1;
    if (o.files_from) {
        e.src.list = sat_fopen_check(o.files_from, "r");
        e.src.list_name = strcmp(o.files_from, "-") == 0 ? "stdin" : o.files_from;
        struct stat st;
        if (fstat(fileno(e.src.list), &st) == 0 && S_ISREG(st.st_mode)) e.src.list_size = (double)st.st_size;
    } else {
        for (int i = o.shard; i < e.src.argc; i += o.shards) e.total++;
        for (int i = 0; i < e.src.argc; i++)
            if (strcmp(e.src.argv[i], "-") == 0) e.total = 0; /* stdin may hold many */
    }

    /* Many inputs: one image per core.  One input (also the frames of a
     * lone '-'): with two views, one core per view.  The CNN's GEMMs always
     * run on one BLAS thread, because OpenBLAS rounds differently on two: an
     * image's record is then the same bytes however it is encoded (alone,
     * among others, from stdin), and view 0 is the --no-flip map. */
    int jobs = e.src.one_arg && o.shards == 1 ? 1 : o.jobs;
    e.views_side_by_side = jobs == 1 && o.jobs > 1 && o.views == 2;
    sat_blas_threads(1);
    e.nslots = 2 * (size_t)jobs;
    e.slots = sat_xcalloc(e.nslots, sizeof *e.slots);
    pthread_mutex_init(&e.lock, NULL);
    pthread_cond_init(&e.changed, NULL);

    sat_atomic out_file = {0};
    if (o.output) sat_atomic_open(&out_file, o.output);
    sat_writer w;
    sat_writer_init(&w, o.output ? out_file.f : stdout, o.output ? o.output : "stdout");

    pthread_t *threads = sat_xcalloc((size_t)jobs, sizeof *threads);
    for (int i = 0; i < jobs; i++)
        if (pthread_create(&threads[i], NULL, worker, &e)) sat_die("cannot start a thread");
    write_in_order(&e, &w);
    /* Every record is out: the stream ends before the workers' teardown,
     * so that the next stage of a pipe starts on it at once. */
    msgpack_sbuffer_destroy(&w.buf);
    /* An -o file is made only when at least one image was encoded. */
    if (o.output && e.written == 0) sat_atomic_abort(&out_file);
    else if (o.output) sat_atomic_commit(&out_file);
    else sat_fclose_check(stdout, "stdout");
    for (int i = 0; i < jobs; i++) pthread_join(threads[i], NULL);
    if (e.src.list && e.src.list != stdin) fclose(e.src.list);
    free(e.src.line);
    free(threads);
    free(e.slots);
    free(o.output_expanded);
    sat_cnn_free(cnn);
    sat_model_free(model);
    return sat_exit_status();
}
