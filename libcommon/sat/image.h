/* image.h — decode JPEG (libjpeg-turbo), PNG (libpng) and netpbm (libnetpbm:
 * PBM, PGM, PPM, PAM) into 8-bit RGB, resize to the network input, and write
 * PNG (thumbnails, figures).
 *
 * JPEG: baseline, progressive, grayscale, CMYK/YCCK (Adobe inverted), with
 * the EXIF orientation applied.  PNG: 1/2/4/8/16-bit, gray, gray+alpha,
 * palette (+tRNS), RGB, RGBA; alpha is composited over white.  netpbm: raw
 * and plain PBM/PGM/PPM, PAM of any tuple type, maxval up to 65535 (scaled to
 * 8 bits, rounded), an opacity plane composited over white.  The format is
 * found from the magic bytes, not the file name.
 *
 * Every decoder error is returned as a one-line reason (no exit, no longjmp
 * escaping), so one bad image in a batch does not stop the others.  Images
 * over `max_pixels` are refused from the header, before any pixel buffer is
 * allocated.
 */
#ifndef SAT_IMAGE_H
#define SAT_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SAT_IMAGE_DEFAULT_MAX_PIXELS (100u * 1000u * 1000u)

typedef struct {
    int width, height;
    uint8_t *rgb; /* height * width * 3, row-major */
} sat_image;

/* Whether the first bytes of a file are a JPEG, PNG or netpbm signature (a
 * sat_head_check): 0, or -1 with "empty file" or "not a JPEG, PNG or netpbm image (it
 * looks like text)" in err. */
int sat_image_check_head(const unsigned char *head, size_t n, char *err, size_t errlen);
/* Decode an in-memory JPEG, PNG or netpbm file.  0 on success; -1 with err set. */
int sat_image_decode(const unsigned char *data, size_t len, uint64_t max_pixels,
                     sat_image *out, char *err, size_t errlen);
void sat_image_free(sat_image *img);

/* Resize to out_w x out_h (aspect ratio not kept) with a bilinear (triangle)
 * filter whose support widens when downscaling (antialiased, as PIL does);
 * at equal size it is the identity.  Writes float RGB HWC values mapped as
 * (p - 128) / 128, the MobileNetV2 input. */
void sat_image_to_input(const sat_image *img, int out_w, int out_h, float *out);

/* The same resize to an 8-bit RGB image (out->rgb is allocated; free with
 * sat_image_free).  img must be non-empty, out_w and out_h positive. */
void sat_image_resize(const sat_image *img, int out_w, int out_h, sat_image *out);

/* Encode as an 8-bit RGB PNG.  The bytes depend on the pixels only (no time
 * or text chunks, fixed compression settings), so equal images give equal
 * files.  0 on success; -1 with err set (err may be NULL). */
int sat_image_encode_png(const sat_image *img, unsigned char **png, size_t *len, char *err,
                         size_t errlen);
/* The same PNG written to f (for sat_atomic_open's file); -1 on a write error. */
int sat_image_write_png(const sat_image *img, FILE *f, char *err, size_t errlen);

/* A PNG of the image shrunk so that its longer side is max_side pixels
 * (aspect ratio kept; an image already that small is not enlarged), for the
 * `thumbnail` of a features record.  0, or -1 (max_side < 1, empty image). */
int sat_image_thumbnail_png(const sat_image *img, int max_side, unsigned char **png, size_t *len);

#endif
