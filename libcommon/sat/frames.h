/* frames.h — split a stream of concatenated image files into one image's
 * bytes at a time: what `ffmpeg -i clip.mp4 -vf fps=1 -f image2pipe -c:v ppm -`
 * (or `-c:v png`, `-c:v mjpeg`) writes, read by `sat-encode -`.
 *
 * Each frame is delimited by its own format's structure, never by reading
 * ahead, so the stream may be a pipe and the frames may differ in format:
 *   PNG     the signature, then chunks up to and including IEND;
 *   JPEG    markers up to EOI; entropy-coded data is scanned for the marker
 *           that ends it (0xFF followed by neither a stuffed 0x00 nor RSTn);
 *   netpbm  raw PBM/PGM/PPM (P4-P6) and PAM (P7): the header, then the
 *           raster whose size the header gives (width, height, depth, maxval);
 *           plain P1-P3: the header, then exactly width x height x depth
 *           samples.
 * White space between frames is skipped (netpbm writers may end a frame
 * with a newline).  The bytes are not decoded here: sat_image_decode does.
 */
#ifndef SAT_FRAMES_H
#define SAT_FRAMES_H

#include <stddef.h>
#include <stdio.h>

/* Read the next frame of f.  1: *data (malloc'd, free it) holds the frame's
 * *len bytes.  0: the stream ended cleanly (nothing but white space left).
 * -1: a one-line reason in err (a frame that is truncated, not an image, or
 * over max_bytes); the stream cannot be resynchronised after it. */
int sat_frame_read(FILE *f, size_t max_bytes, unsigned char **data, size_t *len, char *err,
                   size_t errlen);

/* Whether f has another byte to read (peeked, not consumed). */
int sat_frame_more(FILE *f);

#endif
