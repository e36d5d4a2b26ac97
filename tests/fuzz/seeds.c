/* seeds — write the small seed inputs of the fuzz targets into DIR/NAME/
 * (`make fuzz-seeds`; the outputs are committed in tests/fuzz/corpus/).
 *
 * Real records are large (a 14x14x1280 features record is 500 KB) and the
 * stream target runs ~3 times a second on one; these seeds have every record
 * type and every optional key of formats/stream.md at sizes of a few hundred
 * bytes, packed by the library's own writers (sat_features_pack,
 * sat_caption_pack), so the fuzzer starts from what the tools write.  Images:
 * tiny JPEGs and PNGs of each kind the decoder handles, written with libjpeg
 * and libpng by the unit tests' fixtures. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The fixtures header holds more helpers than the seeds use. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../unit/image_fixtures.h"
#include "sat/captioner.h"
#include "sat/image.h"
#include "sat/stream.h"
#include "sat/util.h"

static const char *out_dir;

static FILE *open_seed(const char *target, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) sat_die("%s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f) sat_die("%s: %s", path, strerror(errno));
    return f;
}

static void write_seed(const char *target, const char *name, const void *data, size_t len)
{
    FILE *f = open_seed(target, name);
    if (fwrite(data, 1, len, f) != len) sat_die("%s: write error", name);
    sat_fclose_check(f, name);
}

/* ---- fuzz_stream ---- */

/* A 2x2 grid of c channels (views of it: c * views <= 8) with values that
 * are not all alike. */
static void pack_features(sat_writer *w, const char *id, sat_dtype dtype, int c, int views,
                          const unsigned char *thumb, size_t thumb_len)
{
    float values[2 * 2 * 8];
    for (int i = 0; i < 4 * c * views; i++) values[i] = 0.25f * (float)(i % 7) - 0.5f;
    sat_features f = {.id = (char *)id, .h = 2, .w = 2, .c = (uint32_t)c,
                      .views = (uint32_t)views, .dtype = dtype,
                      .image_width = 64, .image_height = 48, .encoder_name = "seed-cnn",
                      .encoder_sha256 = "0123456789abcdef", .encoder_size = 32,
                      .encoder_stride = 16, .thumbnail = thumb, .thumbnail_len = thumb_len};
    sat_features_pack(w, &f, values);
}

/* A captioner that only packs: a vocabulary and models' names, no decoders. */
typedef struct {
    sat_model model[2];
    sat_captioner cap;
} seed_captioner;

static void seed_captioner_init(seed_captioner *s, int nmodels)
{
    static char *const words[] = {"<end>", "<start>", "<unk>", "a", "dog", "runs"};
    char err[SAT_ERR_MAX];
    memset(s, 0, sizeof *s);
    s->cap.vocab = sat_vocab_from_words(words, 6, err, sizeof err);
    if (!s->cap.vocab) sat_die("seed vocabulary: %s", err);
    for (int m = 0; m < nmodels; m++) {
        s->model[m].name = m ? "seed-b" : "seed-a";
        memset(s->model[m].weights_sha256, 'a' + m, 64);
        s->cap.models[m] = &s->model[m];
    }
    s->cap.ens.n = nmodels;
}

/* A caption of "a dog runs" over a 2x2 grid; kind: 0 soft, 1 hard (with
 * locations), 2 teacher (word_logprobs and perplexity). */
static void pack_caption(sat_writer *w, const sat_captioner *cap, int kind, int rank)
{
    int tokens[] = {3, 4, 5}, locations[] = {0, 3, 1, 2};
    float alpha[4 * 4], word_logprobs[] = {-1.5f, -0.5f, -2.0f, -0.1f};
    for (int i = 0; i < 16; i++) alpha[i] = kind == 1 ? (i % 4 == locations[i / 4]) : 0.25f;
    sat_caption c = {.tokens = tokens, .n = 3, .alpha = alpha, .logprob = -4.1,
                     .locations = kind == 1 ? locations : NULL,
                     .word_logprobs = kind == 2 ? word_logprobs : NULL};
    static const char *const method[] = {"beam", "greedy", "teacher"};
    static const char *const attention[] = {"soft", "hard-argmax", "soft"};
    sat_caption_meta meta = {.id = "seed.jpg", .method = method[kind], .attention = attention[kind],
                             .alpha_h = 2, .alpha_w = 2, .rank = rank};
    sat_caption_pack(w, cap, &c, &meta);
}

/* The records one by one, then streams of several with garbage between. */
static void stream_seeds(const unsigned char *thumb, size_t thumb_len)
{
    seed_captioner one, two;
    seed_captioner_init(&one, 1);
    seed_captioner_init(&two, 2);
    sat_writer w;
    sat_writer_init(&w, NULL, "seed");
    struct {
        const char *name;
        int what; /* 0..2, 10, 11 features, 3..7 captions, 8 an unknown type, 9 a thumbnail */
    } seeds[] = {{"features-f16.sat", 0}, {"features-f32-thumbnail.sat", 1},
                 {"features-c8.sat", 2},  {"caption-beam.sat", 3},
                 {"caption-hard.sat", 4}, {"caption-teacher.sat", 5},
                 {"caption-ensemble.sat", 6}, {"caption-rank.sat", 7},
                 {"thumbnail.sat", 9},    {"other-type.sat", 8},
                 {"features-u8.sat", 10}, {"features-views.sat", 11}};
    FILE *all = open_seed("fuzz_stream", "mixed.sat");
    for (size_t i = 0; i < sizeof seeds / sizeof *seeds; i++) {
        switch (seeds[i].what) {
        case 0: pack_features(&w, "seed.jpg", SAT_F16, 3, 1, NULL, 0); break;
        case 1: pack_features(&w, "seed.png", SAT_F32, 3, 1, thumb, thumb_len); break;
        case 2: pack_features(&w, "seed-c8", SAT_F16, 8, 1, NULL, 0); break;
        case 3: pack_caption(&w, &one.cap, 0, -1); break;
        case 4: pack_caption(&w, &one.cap, 1, -1); break;
        case 5: pack_caption(&w, &one.cap, 2, -1); break;
        case 6: pack_caption(&w, &two.cap, 0, -1); break;
        case 7: pack_caption(&w, &one.cap, 0, 1); break;
        case 9: sat_thumbnail_pack(&w, &(sat_thumbnail){"seed.png", thumb, thumb_len}); break;
        case 10: pack_features(&w, "seed-u8", SAT_U8, 3, 1, NULL, 0); break;
        case 11: pack_features(&w, "seed-views", SAT_F16, 4, 2, NULL, 0); break;
        default:
            sat_writer_begin(&w, "note");
            sat_field_str(&w, "text", "passed through");
            sat_writer_seal(&w);
            break;
        }
        write_seed("fuzz_stream", seeds[i].name, w.buf.data, w.buf.size);
        if (fwrite(w.buf.data, 1, w.buf.size, all) != w.buf.size) sat_die("mixed.sat: write error");
        if (i == 2 && fwrite("garbage\0\xc1", 1, 9, all) != 9) sat_die("mixed.sat: write error");
    }
    sat_fclose_check(all, "mixed.sat");
    sat_writer_close(&w);
    sat_vocab_free(one.cap.vocab);
    sat_vocab_free(two.cap.vocab);
}

/* ---- fuzz_image ---- */

/* netpbm images of every kind, and a stream of frames (fuzz_image also
 * splits its input with sat_frame_read). */
static void netpbm_seeds(const uint8_t *px)
{
    static const char *const headers[][2] = {
        {"p6.ppm", "P6\n8 8\n255\n"},           {"p5-16.pgm", "P5\n# c\n8 4\n65535\n"},
        {"p4.pbm", "P4\n8 8\n"},                 {"alpha.pam", "P7\nWIDTH 4\nHEIGHT 4\nDEPTH 4\n"
                                                  "MAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n"}};
    static const size_t raster[] = {8 * 8 * 3, 8 * 4 * 2, 8, 4 * 4 * 4};
    char buf[512];
    size_t stream_len = 0;
    static char stream[2048];
    for (size_t i = 0; i < sizeof raster / sizeof *raster; i++) {
        size_t hl = strlen(headers[i][1]);
        memcpy(buf, headers[i][1], hl);
        memcpy(buf + hl, px, raster[i]);
        write_seed("fuzz_image", headers[i][0], buf, hl + raster[i]);
        memcpy(stream + stream_len, buf, hl + raster[i]);
        stream_len += hl + raster[i];
    }
    static const char plain[] = "P3\n2 2\n255\n1 2 3 4 5 6\n7 8 9 10 11 12\nP1\n3 1\n0 1 0\n";
    write_seed("fuzz_image", "plain.ppm", plain, sizeof plain - 1);
    memcpy(stream + stream_len, plain, sizeof plain - 1);
    write_seed("fuzz_image", "frames", stream, stream_len + sizeof plain - 1);
}

static void image_seeds(void)
{
    uint8_t px[8 * 8 * 4];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37);
    struct {
        const char *name;
        fx_jpeg_opts o;
    } jpegs[] = {{"rgb.jpg", {.in_space = JCS_RGB}},
                 {"progressive.jpg", {.in_space = JCS_RGB, .progressive = 1}},
                 {"gray.jpg", {.in_space = JCS_GRAYSCALE}},
                 {"cmyk.jpg", {.in_space = JCS_CMYK}}};
    for (size_t i = 0; i < sizeof jpegs / sizeof *jpegs; i++) {
        fx_blob b = fx_jpeg(px, 8, 8, &jpegs[i].o);
        write_seed("fuzz_image", jpegs[i].name, b.data, b.len);
        fx_blob_free(&b);
    }
    png_color palette[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    png_byte trns[4] = {0, 128, 255, 255};
    struct {
        const char *name;
        size_t rowbytes;
        fx_png_opts o;
    } pngs[] = {{"rgb.png", 24, {.bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB}},
                {"rgba16.png", 64, {.bit_depth = 16, .color_type = PNG_COLOR_TYPE_RGB_ALPHA}},
                {"gray2.png", 2, {.bit_depth = 2, .color_type = PNG_COLOR_TYPE_GRAY}},
                {"palette-trns.png", 2,
                 {.bit_depth = 2, .color_type = PNG_COLOR_TYPE_PALETTE, .palette = palette,
                  .npalette = 4, .trns = trns, .ntrns = 4}},
                {"interlaced.png", 24,
                 {.bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB,
                  .interlace = PNG_INTERLACE_ADAM7}}};
    uint8_t rows[8 * 64];
    for (size_t i = 0; i < sizeof rows; i++) rows[i] = (uint8_t)(i * 53);
    for (size_t i = 0; i < sizeof pngs / sizeof *pngs; i++) {
        fx_blob b = fx_png(rows, pngs[i].rowbytes, 8, 8, &pngs[i].o);
        write_seed("fuzz_image", pngs[i].name, b.data, b.len);
        fx_blob_free(&b);
    }
    netpbm_seeds(px);
}

/* ---- fuzz_captions ---- */

static void caption_seeds(void)
{
    static const char token[] =
        "img1.jpg#0\tA brown dog runs through the grass .\n"
        "img1.jpg#1\tA dog is running , jumping over a log !\n"
        "img1.jpg#2\tThe dog's ears flap in the wind .\n"
        "img2.jpg#0\tTwo children play on a red slide at the park\n"
        "img2.jpg#1\tKids playing outside .\n"
        "img2.jpg#2\ta Girl  in a pink DRESS climbs\ta ladder .\n";
    write_seed("fuzz_captions", "token.txt", token, sizeof token - 1);
    static const char karpathy[] =
        "{\"images\": [{\"filename\": \"img1.jpg\", \"split\": \"train\", \"sentences\": "
        "[{\"raw\": \"A brown dog runs .\", \"tokens\": [\"a\", \"brown\"]}, {\"raw\": \"Kids\"}]}, "
        "{\"filename\": \"img2.jpg\", \"split\": \"val\", \"filepath\": \"val2014\", "
        "\"sentences\": [{\"raw\": \"caf\\u00e9 \\\"x\\\"\"}]}], \"dataset\": \"coco\"}";
    write_seed("fuzz_captions", "karpathy.json", karpathy, sizeof karpathy - 1);
    static const char coco[] =
        "{\"images\": [{\"id\": 9, \"file_name\": \"img1.jpg\"}, {\"id\": 2, \"file_name\": \"img2.jpg\"}], "
        "\"annotations\": [{\"image_id\": 2, \"id\": 1, \"caption\": \"A dog\"}, "
        "{\"image_id\": 9, \"id\": 2, \"caption\": \"Two kids\"}]}";
    write_seed("fuzz_captions", "coco.json", coco, sizeof coco - 1);
}

int main(int argc, char **argv)
{
    sat_progname = "seeds";
    if (argc != 2) sat_die("usage: seeds DIR");
    out_dir = argv[1];
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) sat_die("%s: %s", out_dir, strerror(errno));
    uint8_t rgb[4 * 4 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 11);
    sat_image img = {.width = 4, .height = 4, .rgb = rgb};
    unsigned char *thumb;
    size_t thumb_len;
    if (sat_image_thumbnail_png(&img, 4, &thumb, &thumb_len) != 0) sat_die("thumbnail failed");
    stream_seeds(thumb, thumb_len);
    free(thumb);
    image_seeds();
    caption_seeds();
    return 0;
}
