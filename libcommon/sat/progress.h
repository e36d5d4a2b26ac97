/* progress.h — a progress meter on stderr for long work: "sat-encode:
 * 120/1000 images, 14.2/s, ETA 1:02".  Drawn only when stderr is a terminal,
 * not with -q, and only once the work has lasted SAT_PROGRESS_DELAY seconds
 * (default 1; the environment may set it), so a quick run never draws one;
 * erased at the end and before any message (sat_status_draw), so it never
 * stays mixed with other output on the terminal.
 */
#ifndef SAT_PROGRESS_H
#define SAT_PROGRESS_H

#include <stddef.h>

typedef struct {
    const char *unit;   /* what is counted: "images", "batches" */
    size_t total;       /* how many are expected; 0: unknown */
    int enabled;
    double delay, t0, last;
} sat_progress;

void sat_progress_begin(sat_progress *p, const char *unit, size_t total, int quiet);
/* done units so far; fraction: the share of the whole work done, in (0, 1],
 * or < 0 for done/total (no ETA when neither is known); extra: text appended
 * (e.g. "loss 2.31"), or NULL. */
void sat_progress_update(sat_progress *p, size_t done, double fraction, const char *extra);
void sat_progress_end(sat_progress *p);

#endif
