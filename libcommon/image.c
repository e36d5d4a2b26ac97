/* image.c — see image.h.
 *
 * The three decoders report errors through setjmp/longjmp, as libjpeg, libpng
 * and libnetpbm require.  Each keeps its state in a "job" struct that lives in the caller of
 * the function doing the setjmp, so nothing it holds is indeterminate after
 * the longjmp and the caller can free whatever was allocated.
 */
#include "sat/image.h"
#include "sat/sniff.h"
#include "sat/util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <netpbm/pam.h>
#include <png.h>
#include <pthread.h>

/* A progressive JPEG has about 10 scans; thousands of tiny scans make the
 * decoder spin (the limit libjpeg-turbo's own fuzzers use). */
#define JPEG_MAX_SCANS 500

static int over_limit(uint64_t w, uint64_t h, uint64_t max_pixels, char *err, size_t errlen)
{
    if (w * h <= max_pixels) return 0; /* w, h < 2^32: no overflow */
    sat_fail_line(err, errlen, "image is %" PRIu64 "x%" PRIu64 ", over the limit of %" PRIu64 " pixels",
              w, h, max_pixels);
    return 1;
}

/* ---- EXIF orientation ---------------------------------------------------- */

static unsigned read16(const uint8_t *p, int little)
{
    return little ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | p[1];
}

static uint32_t read32(const uint8_t *p, int little)
{
    return little ? (uint32_t)read16(p, 1) | (uint32_t)read16(p + 2, 1) << 16
                  : (uint32_t)read16(p, 0) << 16 | read16(p + 2, 0);
}

/* Orientation tag (1..8) of an APP1 payload "Exif\0\0" + TIFF header + IFD0;
 * 0 when the payload is not EXIF, 1 when it is but has no valid tag.
 * TIFF: "II"|"MM", 42, offset of IFD0; IFD: count, count x 12-byte entries
 * (tag 2, type 2, count 4, value 4), all relative to the TIFF header. */
static int exif_orientation(const uint8_t *p, size_t n)
{
    if (n < 6 || memcmp(p, "Exif\0\0", 6) != 0) return 0;
    p += 6, n -= 6;
    if (n < 8) return 1;
    int little;
    if (p[0] == 'I' && p[1] == 'I') little = 1;
    else if (p[0] == 'M' && p[1] == 'M') little = 0;
    else return 1;
    if (read16(p + 2, little) != 42) return 1;
    uint32_t ifd = read32(p + 4, little);
    if (ifd > n - 2) return 1;
    size_t count = read16(p + ifd, little);
    size_t room = (n - ifd - 2) / 12;
    if (count > room) count = room; /* a truncated IFD: use the entries present */
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = p + ifd + 2 + i * 12;
        if (read16(e, little) != 0x0112) continue;
        unsigned type = read16(e + 2, little), value = read16(e + 8, little);
        return type == 3 && value >= 1 && value <= 8 ? (int)value : 1; /* 3: SHORT */
    }
    return 1;
}

/* Where output pixel (ox, oy) of the displayed image comes from in the
 * stored w x h image, for EXIF orientation o (5..8 swap width and height). */
static void orient_source(int o, long w, long h, long ox, long oy, long *sx, long *sy)
{
    switch (o) {
    case 2: *sx = w - 1 - ox, *sy = oy; break;          /* mirrored left-right */
    case 3: *sx = w - 1 - ox, *sy = h - 1 - oy; break;  /* rotated 180 */
    case 4: *sx = ox, *sy = h - 1 - oy; break;          /* mirrored top-bottom */
    case 5: *sx = oy, *sy = ox; break;                  /* transposed */
    case 6: *sx = oy, *sy = h - 1 - ox; break;          /* needs 90 clockwise */
    case 7: *sx = w - 1 - oy, *sy = h - 1 - ox; break;  /* transversed */
    case 8: *sx = w - 1 - oy, *sy = ox; break;          /* needs 90 counter-clockwise */
    default: *sx = ox, *sy = oy; break;
    }
}

/* Apply orientation o to img in place (a new buffer when o != 1).  The
 * mapping is affine, so it is evaluated at three points to get the source
 * offsets of the first output pixel and of one step right and down. */
static int apply_orientation(sat_image *img, int o, char *err, size_t errlen)
{
    if (o <= 1 || o > 8) return 0;
    long w = img->width, h = img->height;
    long ow = o >= 5 ? h : w, oh = o >= 5 ? w : h;
    uint8_t *rgb = sat_malloc_large((size_t)w * (size_t)h * 3);
    if (!rgb) {
        sat_fail_line(err, errlen, "out of memory for a %ldx%ld image", w, h);
        return -1;
    }
    long x0, y0, x1, y1, x2, y2;
    orient_source(o, w, h, 0, 0, &x0, &y0);
    orient_source(o, w, h, 1, 0, &x1, &y1);
    orient_source(o, w, h, 0, 1, &x2, &y2);
    ptrdiff_t origin = (ptrdiff_t)(y0 * w + x0) * 3;
    ptrdiff_t step_x = (ptrdiff_t)((y1 - y0) * w + (x1 - x0)) * 3;
    ptrdiff_t step_y = (ptrdiff_t)((y2 - y0) * w + (x2 - x0)) * 3;
    uint8_t *dst = rgb;
    for (long oy = 0; oy < oh; oy++) {
        const uint8_t *src = img->rgb + origin + oy * step_y;
        for (long ox = 0; ox < ow; ox++, src += step_x, dst += 3)
            dst[0] = src[0], dst[1] = src[1], dst[2] = src[2];
    }
    free(img->rgb);
    img->rgb = rgb;
    img->width = (int)ow, img->height = (int)oh;
    return 0;
}

/* ---- JPEG ---------------------------------------------------------------- */

typedef struct {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    jmp_buf jmp;
    char *err;
    size_t errlen;
    uint8_t *rgb;  /* height x width x 3 */
    uint8_t *cmyk; /* one scanline, width x 4 */
    int orientation;
} jpeg_job;

static _Noreturn void jpeg_fail(jpeg_job *job) { longjmp(job->jmp, 1); }

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_job *job = cinfo->client_data;
    char msg[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, msg);
    sat_fail_line(job->err, job->errlen, "invalid JPEG: %s", msg);
    jpeg_fail(job);
}

/* Level -1 is a "corrupt data" warning: libjpeg would go on and fill the
 * rest with gray, but a damaged photo must not be captioned as if it were
 * whole, so those are errors.  Only warnings about harmless header details
 * are let through; higher levels are trace messages. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    jpeg_job *job = cinfo->client_data;
    int code = cinfo->err->msg_code;
    if (level >= 0 || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM) return;
    if (code == JWRN_JPEG_EOF) {
        sat_fail_line(job->err, job->errlen, "truncated JPEG (premature end of data)");
        jpeg_fail(job);
    }
    jpeg_on_error(cinfo);
}

static void jpeg_on_progress(j_common_ptr cinfo)
{
    jpeg_job *job = cinfo->client_data;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number <= JPEG_MAX_SCANS) return;
    sat_fail_line(job->err, job->errlen, "invalid JPEG: more than %d scans", JPEG_MAX_SCANS);
    jpeg_fail(job);
}

static int jpeg_find_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        int o = m->marker == JPEG_APP0 + 1 ? exif_orientation(m->data, m->data_length) : 0;
        if (o) return o;
    }
    return 1;
}

/* CMYK scanline to RGB.  With an Adobe marker the values are stored inverted
 * (Photoshop's convention: 255 = no ink), so R = C*K/255; without one they
 * are plain ink amounts. */
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t width, int inverted)
{
    for (size_t i = 0; i < width; i++, cmyk += 4, rgb += 3) {
        unsigned k = inverted ? cmyk[3] : 255u - cmyk[3];
        for (int c = 0; c < 3; c++) {
            unsigned v = inverted ? cmyk[c] : 255u - cmyk[c];
            rgb[c] = (uint8_t)((v * k + 127) / 255);
        }
    }
}

/* The part that may longjmp.  Everything it allocates hangs off job. */
static int jpeg_run(jpeg_job *job, const unsigned char *data, size_t len, uint64_t max_pixels)
{
    j_decompress_ptr cinfo = &job->cinfo;
    if (setjmp(job->jmp)) return -1;
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)len);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xffff);
    cinfo->progress = &job->progress;
    jpeg_read_header(cinfo, TRUE);
    if (over_limit(cinfo->image_width, cinfo->image_height, max_pixels, job->err, job->errlen))
        return -1;
    job->orientation = jpeg_find_orientation(cinfo);
    int cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(cinfo);

    size_t w = cinfo->output_width, h = cinfo->output_height;
    if (cinfo->output_components != (cmyk ? 4 : 3) || w != cinfo->image_width) {
        sat_fail_line(job->err, job->errlen, "invalid JPEG: unexpected output format");
        return -1;
    }
    job->rgb = sat_malloc_large(w * h * 3);
    job->cmyk = cmyk ? malloc(w * 4) : NULL;
    if (!job->rgb || (cmyk && !job->cmyk)) {
        sat_fail_line(job->err, job->errlen, "out of memory for a %zux%zu image", w, h);
        return -1;
    }
    while (cinfo->output_scanline < h) {
        uint8_t *rgb_row = job->rgb + cinfo->output_scanline * w * 3;
        JSAMPROW row = cmyk ? job->cmyk : rgb_row;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            sat_fail_line(job->err, job->errlen, "truncated JPEG (premature end of data)");
            return -1;
        }
        if (cmyk) cmyk_to_rgb(job->cmyk, rgb_row, w, cinfo->saw_Adobe_marker);
    }
    jpeg_finish_decompress(cinfo); /* reads up to EOI: catches a cut tail */
    return 0;
}

static int decode_jpeg(const unsigned char *data, size_t len, uint64_t max_pixels,
                       sat_image *out, char *err, size_t errlen)
{
    jpeg_job job;
    memset(&job, 0, sizeof job);
    job.err = err, job.errlen = errlen;
    job.cinfo.err = jpeg_std_error(&job.jerr);
    job.jerr.error_exit = jpeg_on_error;
    job.jerr.emit_message = jpeg_on_message;
    job.progress.progress_monitor = jpeg_on_progress;
    job.cinfo.client_data = &job;

    int rc = jpeg_run(&job, data, len, max_pixels);
    if (rc == 0) {
        out->width = (int)job.cinfo.output_width;
        out->height = (int)job.cinfo.output_height;
        out->rgb = job.rgb;
        job.rgb = NULL;
        rc = apply_orientation(out, job.orientation, err, errlen);
        if (rc) sat_image_free(out);
    }
    jpeg_destroy_decompress(&job.cinfo);
    free(job.cmyk);
    free(job.rgb);
    return rc;
}

/* ---- PNG ----------------------------------------------------------------- */

typedef struct {
    png_structp png;
    png_infop info;
    const unsigned char *data;
    size_t len, pos;
    int truncated; /* the reader ran out of bytes */
    char *err;
    size_t errlen;
    uint8_t *pixels;  /* height x width x channels (3 or 4) */
    png_bytep *rows;
} png_job;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_job *job = png_get_error_ptr(png);
    if (job->truncated)
        sat_fail_line(job->err, job->errlen, "truncated PNG (premature end of data)");
    else
        sat_fail_line(job->err, job->errlen, "invalid PNG: %s", msg);
    png_longjmp(png, 1);
}

/* Warnings concern ancillary chunks (bad CRC, odd gamma), which libpng then
 * ignores; the pixels are still right, and a library must not print. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png, (void)msg;
}

static void png_read_memory(png_structp png, png_bytep dst, size_t n)
{
    png_job *job = png_get_io_ptr(png);
    if (n > job->len - job->pos) {
        job->truncated = 1;
        png_error(png, "premature end of data");
    }
    memcpy(dst, job->data + job->pos, n);
    job->pos += n;
}

/* RGBA to RGB over a white background, in place: x*a + 255*(1 - a). */
static void composite_over_white(uint8_t *px, size_t npixels)
{
    const uint8_t *src = px;
    for (size_t i = 0; i < npixels; i++, src += 4, px += 3) {
        unsigned a = src[3];
        for (int c = 0; c < 3; c++)
            px[c] = (uint8_t)((src[c] * a + 255u * (255u - a) + 127) / 255);
    }
}

static int png_run(png_job *job, uint64_t max_pixels)
{
    png_structp png = job->png;
    png_infop info = job->info;
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_read_fn(png, job, png_read_memory);
    /* libpng's own limit is per axis (1e6 by default, which refuses valid
     * panoramas); ours is on the pixel count, checked right after IHDR and
     * before any row buffer exists, so it is the one that speaks. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);
    size_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (over_limit(w, h, max_pixels, job->err, job->errlen)) return -1;

    png_set_expand(png);   /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
    png_set_scale_16(png); /* 16 -> 8 bits, rounded */
    png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t channels = png_get_channels(png, info);
    if ((channels != 3 && channels != 4) || png_get_rowbytes(png, info) != w * channels) {
        sat_fail_line(job->err, job->errlen, "invalid PNG: unexpected output format");
        return -1;
    }
    job->pixels = sat_malloc_large(w * h * channels);
    job->rows = malloc(h * sizeof *job->rows);
    if (!job->pixels || !job->rows) {
        sat_fail_line(job->err, job->errlen, "out of memory for a %zux%zu image", w, h);
        return -1;
    }
    for (size_t y = 0; y < h; y++) job->rows[y] = job->pixels + y * w * channels;
    png_read_image(png, job->rows);
    png_read_end(png, NULL); /* checks the last IDAT's CRC and reads up to IEND */
    if (channels == 4) composite_over_white(job->pixels, w * h);
    return 0;
}

static int decode_png(const unsigned char *data, size_t len, uint64_t max_pixels,
                      sat_image *out, char *err, size_t errlen)
{
    png_job job;
    memset(&job, 0, sizeof job);
    job.data = data, job.len = len;
    job.err = err, job.errlen = errlen;
    job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_on_error, png_on_warning);
    job.info = job.png ? png_create_info_struct(job.png) : NULL;
    int rc = -1;
    if (!job.info)
        sat_fail_line(err, errlen, "out of memory for the PNG decoder");
    else
        rc = png_run(&job, max_pixels);
    if (rc == 0) {
        out->width = (int)png_get_image_width(job.png, job.info);
        out->height = (int)png_get_image_height(job.png, job.info);
        out->rgb = job.pixels;
        job.pixels = NULL;
    }
    png_destroy_read_struct(&job.png, &job.info, NULL);
    free(job.rows);
    free(job.pixels);
    return rc;
}

/* ---- netpbm (PBM, PGM, PPM, PAM) through libnetpbm ------------------------ */

/* libnetpbm reports errors through one process-wide jump buffer and message
 * hook, so its decodes take turns; a netpbm raster is decoded at memory
 * speed, next to which the CNN's time is everything. */
static pthread_mutex_t netpbm_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t netpbm_once = PTHREAD_ONCE_INIT;
static char netpbm_message[SAT_ERR_MAX]; /* guarded by netpbm_lock */

static void netpbm_on_error(const char *msg)
{
    snprintf(netpbm_message, sizeof netpbm_message, "%s", msg);
}

static void netpbm_on_message(const char *msg) { (void)msg; } /* a library must not print */

static void netpbm_init(void)
{
    pm_init("sat", 0);
    pm_setusererrormsgfn(netpbm_on_error);
    pm_setusermessagefn(netpbm_on_message);
}

/* The struct pam up to the members read here; PAM_STRUCT_SIZE's null-pointer
 * arithmetic is undefined behaviour to UBSan. */
#define NETPBM_PAM_SIZE (offsetof(struct pam, opacity_plane) + sizeof(unsigned))

typedef struct {
    FILE *f;
    struct pam pam;
    tuple *row;
    uint8_t *pixels; /* height x width x 3 */
    jmp_buf *outer;  /* libnetpbm's jump buffer before ours */
} netpbm_job;

/* A sample of 0..maxval to 0..255, rounded (as png_set_scale_16 does). */
static unsigned netpbm_to8(sample s, sample maxval)
{
    return (unsigned)((s * 255 + maxval / 2) / maxval);
}

/* One row of tuples to RGB: gray planes are repeated, an opacity plane is
 * composited over white as for PNG.  Non-visual PAM tuple types are read as
 * gray (depth 1-2) or as RGB from their first three planes. */
static void netpbm_row_to_rgb(const struct pam *pam, const tuple *row, uint8_t *dst)
{
    int visual = pam->visual;
    unsigned colors = visual ? pam->color_depth : (pam->depth >= 3 ? 3 : 1);
    int alpha = visual && pam->have_opacity;
    for (int x = 0; x < pam->width; x++, dst += 3) {
        unsigned a = alpha ? netpbm_to8(row[x][pam->opacity_plane], pam->maxval) : 255;
        for (unsigned c = 0; c < 3; c++) {
            unsigned v = netpbm_to8(row[x][colors >= 3 ? c : 0], pam->maxval);
            dst[c] = (uint8_t)((v * a + 255u * (255u - a) + 127) / 255);
        }
    }
}

static int netpbm_run(netpbm_job *job, uint64_t max_pixels, char *err, size_t errlen)
{
    jmp_buf jmp;
    if (setjmp(jmp)) {
        pm_setjmpbuf(job->outer);
        sat_fail_line(err, errlen, "invalid netpbm image: %s", netpbm_message);
        return -1;
    }
    pm_setjmpbufsave(&jmp, &job->outer);
    struct pam *pam = &job->pam;
    pnm_readpaminit(job->f, pam, NETPBM_PAM_SIZE);
    int rc = -1;
    if (over_limit((uint64_t)pam->width, (uint64_t)pam->height, max_pixels, err, errlen)) {
    } else if (pam->depth > 16) {
        sat_fail_line(err, errlen, "netpbm image of depth %u: at most 16 planes are read", pam->depth);
    } else {
        job->row = pnm_allocpamrow(pam);
        job->pixels = sat_malloc_large((size_t)pam->width * pam->height * 3);
        if (!job->pixels) sat_fail_line(err, errlen, "out of memory for a %dx%d image", pam->width, pam->height);
        for (int y = 0; job->pixels && y < pam->height; y++) {
            pnm_readpamrow(pam, job->row);
            netpbm_row_to_rgb(pam, job->row, job->pixels + (size_t)y * pam->width * 3);
        }
        rc = job->pixels ? 0 : -1;
    }
    pm_setjmpbuf(job->outer);
    return rc;
}

static int decode_netpbm(const unsigned char *data, size_t len, uint64_t max_pixels,
                         sat_image *out, char *err, size_t errlen)
{
    netpbm_job job;
    memset(&job, 0, sizeof job);
    /* libnetpbm reads a plain (text) sample up to the byte after it, so a
     * plain image whose last sample ends the file, which is legal, is read
     * with a newline after it. */
    unsigned char *copy = NULL;
    if (len >= 2 && data[1] >= '1' && data[1] <= '3') {
        copy = malloc(len + 1);
        if (copy) memcpy(copy, data, len), copy[len++] = '\n', data = copy;
    }
    job.f = fmemopen((void *)data, len, "rb");
    if (!job.f) {
        free(copy);
        sat_fail_line(err, errlen, "cannot read the netpbm image: %s", strerror(errno));
        return -1;
    }
    pthread_once(&netpbm_once, netpbm_init);
    pthread_mutex_lock(&netpbm_lock);
    int rc = netpbm_run(&job, max_pixels, err, errlen);
    pthread_mutex_unlock(&netpbm_lock);
    fclose(job.f);
    free(copy);
    if (job.row) pnm_freepamrow(job.row);
    if (rc == 0) {
        out->width = job.pam.width;
        out->height = job.pam.height;
        out->rgb = job.pixels;
    } else {
        free(job.pixels);
    }
    return rc;
}

/* ---- entry points -------------------------------------------------------- */

int sat_image_check_head(const unsigned char *head, size_t n, char *err, size_t errlen)
{
    sat_kind k = sat_sniff(head, n);
    if (k == SAT_KIND_JPEG || k == SAT_KIND_PNG || k == SAT_KIND_PNM) return 0;
    char what[96];
    if (k == SAT_KIND_EMPTY) sat_fail_line(err, errlen, "empty file");
    else sat_fail_line(err, errlen, "not a JPEG, PNG or netpbm image (%s)",
                   sat_sniff_describe(head, n, what, sizeof what));
    return -1;
}

int sat_image_decode(const unsigned char *data, size_t len, uint64_t max_pixels,
                     sat_image *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = '\0';
    /* Keeps width * height * 4 within size_t (all three formats' dimensions fit an int). */
    if (max_pixels > SIZE_MAX / 4) max_pixels = SIZE_MAX / 4;
    if (sat_image_check_head(data, len, err, errlen)) return -1;
    sat_kind kind = sat_sniff(data, len);
    if (kind == SAT_KIND_JPEG) return decode_jpeg(data, len, max_pixels, out, err, errlen);
    if (kind == SAT_KIND_PNM) return decode_netpbm(data, len, max_pixels, out, err, errlen);
    return decode_png(data, len, max_pixels, out, err, errlen);
}

void sat_image_free(sat_image *img)
{
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

/* ---- resizing ------------------------------------------------------------ */

/* The taps of one axis: output i reads source pixels first[i] ..
 * first[i] + count[i] - 1 with weights w[i * stride + k], which sum to 1. */
typedef struct {
    int *first, *count;
    float *w;
    int stride;
} resample_axis;

static double triangle(double x)
{
    x = fabs(x);
    return x < 1 ? 1 - x : 0;
}

/* PIL's convention: output pixel i is centered at (i + 0.5) * scale in
 * source coordinates and, when shrinking, the triangle is stretched by the
 * scale so every source pixel contributes (antialiasing).  Zero taps at the
 * ends are dropped, which makes equal sizes a single tap of weight 1. */
static void axis_init(resample_axis *ax, int in, int out)
{
    double scale = (double)in / out;
    double support = scale > 1 ? scale : 1; /* the triangle's radius is 1 */
    /* The window spans 2 * support pixels, so at most this many taps; and
     * never more than the whole axis.  Computed in double: no int overflow. */
    double taps = 2 * ceil(support) + 2;
    int stride = taps < in ? (int)taps : in;
    ax->stride = stride;
    ax->first = sat_xmalloc((size_t)out * sizeof *ax->first);
    ax->count = sat_xmalloc((size_t)out * sizeof *ax->count);
    ax->w = sat_xmalloc((size_t)out * (size_t)stride * sizeof *ax->w);
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)fmax(center - support + 0.5, 0), hi = (int)fmin(center + support + 0.5, in);
        while (lo < hi - 1 && triangle((lo + 0.5 - center) / support) == 0) lo++;
        while (hi - 1 > lo && triangle((hi - 0.5 - center) / support) == 0) hi--;
        if (hi - lo > stride) hi = lo + stride; /* cannot happen; keeps w in bounds */
        /* total >= 0.5: the pixel under the center is in the window */
        double total = 0;
        for (int x = lo; x < hi; x++) total += triangle((x + 0.5 - center) / support);
        float *w = ax->w + (size_t)i * (size_t)stride;
        for (int x = lo; x < hi; x++) w[x - lo] = (float)(triangle((x + 0.5 - center) / support) / total);
        ax->first[i] = lo;
        ax->count[i] = hi - lo;
    }
}

static void axis_free(resample_axis *ax)
{
    free(ax->first);
    free(ax->count);
    free(ax->w);
}

/* The two passes of the separable filter.  When the height shrinks (the
 * usual case) the vertical pass goes first, straight from the 8-bit rows: a
 * weighted sum of whole rows, contiguous and vectorizable, leaving few rows
 * for the horizontal pass.  When the height grows, narrowing every output
 * row from full width would repeat work per output row, so each source row
 * is narrowed once into a small ring (the vertical window is at most
 * ay.stride rows) and the vertical pass combines the narrowed rows.
 * Memory is O(width + taps x out_w), never O(image). */
typedef struct {
    const sat_image *img;
    resample_axis ax, ay;
    int vertical_first;
    size_t len;     /* floats per combined row: width*3 or out_w*3 */
    float *line;    /* width*3 floats: a combined row, or a source row as float */
    float *ring;    /* horizontal first: ring_rows x out_w*3, row y in slot y % ring_rows */
    int ring_rows, next_row;
} resizer;

/* dst += w * src.  Blocks of 16 with a fixed trip count are what gcc -O2
 * vectorizes (its "very cheap" cost model), not a loop of unknown length. */
static void add_row_u8(float *restrict dst, const uint8_t *restrict src, float w, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) dst[i + j] += w * src[i + j];
    for (; i < n; i++) dst[i] += w * src[i];
}

static void add_row_f32(float *restrict dst, const float *restrict src, float w, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) dst[i + j] += w * src[i + j];
    for (; i < n; i++) dst[i] += w * src[i];
}

/* dst[ox] = sum_k w[k] * src[first + k], per RGB channel. */
static void resize_across(float *restrict dst, const float *restrict src, const resample_axis *ax,
                          int out_w)
{
    for (int ox = 0; ox < out_w; ox++, dst += 3) {
        const float *w = ax->w + (size_t)ox * (size_t)ax->stride;
        const float *s = src + (size_t)ax->first[ox] * 3;
        float r = 0, g = 0, b = 0;
        for (int k = 0; k < ax->count[ox]; k++, s += 3)
            r += w[k] * s[0], g += w[k] * s[1], b += w[k] * s[2];
        dst[0] = r, dst[1] = g, dst[2] = b;
    }
}

static const uint8_t *source_row(const resizer *rz, int y)
{
    return rz->img->rgb + (size_t)y * (size_t)rz->img->width * 3;
}

static float *ring_row(const resizer *rz, int y)
{
    return rz->ring + (size_t)(y % rz->ring_rows) * rz->len;
}

/* Horizontal first: narrow source rows up to `end` into the ring. */
static void fill_ring(resizer *rz, int first, int end, int out_w)
{
    size_t n = (size_t)rz->img->width * 3;
    if (rz->next_row < first) rz->next_row = first;
    for (; rz->next_row < end; rz->next_row++) {
        memset(rz->line, 0, n * sizeof *rz->line);
        add_row_u8(rz->line, source_row(rz, rz->next_row), 1.0f, n);
        resize_across(ring_row(rz, rz->next_row), rz->line, &rz->ax, out_w);
    }
}

/* dst (len floats) = sum_k w[k] * row[first + k] for output row oy. */
static void combine_rows(resizer *rz, int oy, float *dst, int out_w)
{
    const resample_axis *ay = &rz->ay;
    int first = ay->first[oy], n = ay->count[oy];
    const float *w = ay->w + (size_t)oy * (size_t)ay->stride;
    memset(dst, 0, rz->len * sizeof *dst);
    if (rz->vertical_first) {
        for (int k = 0; k < n; k++) add_row_u8(dst, source_row(rz, first + k), w[k], rz->len);
    } else {
        fill_ring(rz, first, first + n, out_w);
        for (int k = 0; k < n; k++) add_row_f32(dst, ring_row(rz, first + k), w[k], rz->len);
    }
}

/* The resized image as float RGB HWC in 0..255 (not rounded). */
static void resize_rgb(const sat_image *img, int out_w, int out_h, float *out)
{
    resizer rz = {.img = img, .vertical_first = img->height >= out_h};
    axis_init(&rz.ax, img->width, out_w);
    axis_init(&rz.ay, img->height, out_h);
    rz.len = (size_t)(rz.vertical_first ? img->width : out_w) * 3;
    rz.line = sat_xmalloc((size_t)img->width * 3 * sizeof *rz.line);
    if (!rz.vertical_first) {
        rz.ring_rows = rz.ay.stride; /* at most the height */
        rz.ring = sat_xmalloc((size_t)rz.ring_rows * rz.len * sizeof *rz.ring);
    }

    size_t out_len = (size_t)out_w * 3;
    for (int oy = 0; oy < out_h; oy++) {
        float *dst = out + (size_t)oy * out_len;
        if (rz.vertical_first) {
            combine_rows(&rz, oy, rz.line, out_w);
            resize_across(dst, rz.line, &rz.ax, out_w);
        } else {
            combine_rows(&rz, oy, dst, out_w);
        }
    }
    axis_free(&rz.ax);
    axis_free(&rz.ay);
    free(rz.ring);
    free(rz.line);
}

void sat_image_to_input(const sat_image *img, int out_w, int out_h, float *out)
{
    if (img->width <= 0 || img->height <= 0 || out_w <= 0 || out_h <= 0) return;
    resize_rgb(img, out_w, out_h, out);
    size_t n = (size_t)out_w * (size_t)out_h * 3;
    for (size_t i = 0; i < n; i++) out[i] = (out[i] - 128.0f) / 128.0f;
}

void sat_image_resize(const sat_image *img, int out_w, int out_h, sat_image *out)
{
    size_t n = (size_t)out_w * (size_t)out_h * 3;
    float *values = sat_xmalloc(n * sizeof *values);
    resize_rgb(img, out_w, out_h, values);
    out->width = out_w, out->height = out_h;
    out->rgb = sat_xmalloc(n);
    for (size_t i = 0; i < n; i++) out->rgb[i] = (uint8_t)fminf(fmaxf(values[i] + 0.5f, 0), 255);
    free(values);
}

/* ---- PNG encoding -------------------------------------------------------- */

/* Where the encoder's bytes go: a growing memory buffer or a FILE. */
typedef struct {
    unsigned char *data;
    size_t len, cap;
    FILE *file;
    char *err;
    size_t errlen;
} png_sink;

static void png_write_error(png_structp png, png_const_charp msg)
{
    png_sink *sink = png_get_error_ptr(png);
    sat_fail_line(sink->err, sink->errlen, "cannot write PNG: %s", msg);
    png_longjmp(png, 1);
}

static void png_write_bytes(png_structp png, png_bytep src, size_t n)
{
    png_sink *sink = png_get_io_ptr(png);
    if (sink->file) {
        if (fwrite(src, 1, n, sink->file) != n) png_error(png, strerror(errno));
        return;
    }
    if (n > sink->cap - sink->len) {
        sink->cap = sink->cap * 2 > sink->len + n ? sink->cap * 2 : sink->len + n;
        sink->data = sat_xrealloc(sink->data, sink->cap);
    }
    memcpy(sink->data + sink->len, src, n);
    sink->len += n;
}

static void png_flush_nothing(png_structp png) { (void)png; }

/* The part that may longjmp.  No tIME, text or gamma chunk and fixed zlib
 * settings: the same pixels always give the same bytes. */
static int png_write_run(png_structp png, png_infop info, const sat_image *img)
{
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    size_t stride = (size_t)img->width * 3;
    for (int y = 0; y < img->height; y++) png_write_row(png, img->rgb + (size_t)y * stride);
    png_write_end(png, NULL);
    return 0;
}

static int png_encode(const sat_image *img, png_sink *sink)
{
    if (img->width <= 0 || img->height <= 0 || !img->rgb) {
        sat_fail_line(sink->err, sink->errlen, "cannot write PNG: empty image");
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, sink, png_write_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (!info) {
        sat_fail_line(sink->err, sink->errlen, "out of memory for the PNG encoder");
    } else {
        png_set_write_fn(png, sink, png_write_bytes, png_flush_nothing);
        rc = png_write_run(png, info, img);
    }
    png_destroy_write_struct(&png, &info);
    return rc;
}

int sat_image_encode_png(const sat_image *img, unsigned char **png, size_t *len, char *err,
                         size_t errlen)
{
    png_sink sink = {.err = err, .errlen = errlen};
    if (png_encode(img, &sink)) {
        free(sink.data);
        return -1;
    }
    *png = sink.data;
    *len = sink.len;
    return 0;
}

int sat_image_write_png(const sat_image *img, FILE *f, char *err, size_t errlen)
{
    png_sink sink = {.file = f, .err = err, .errlen = errlen};
    return png_encode(img, &sink);
}

int sat_image_thumbnail_png(const sat_image *img, int max_side, unsigned char **png, size_t *len)
{
    if (max_side <= 0 || img->width <= 0 || img->height <= 0) return -1;
    int longer = img->width > img->height ? img->width : img->height;
    if (longer <= max_side) return sat_image_encode_png(img, png, len, NULL, 0);
    /* Aspect ratio kept, rounded, at least one pixel on the shorter side. */
    int w = (int)fmax(1, round((double)img->width * max_side / longer));
    int h = (int)fmax(1, round((double)img->height * max_side / longer));
    sat_image small;
    sat_image_resize(img, w, h, &small);
    int rc = sat_image_encode_png(&small, png, len, NULL, 0);
    sat_image_free(&small);
    return rc;
}
