/* progress.c — see progress.h. */
#include "sat/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sat/util.h"

enum { REDRAW_EVERY_MS = 250 };

void sat_progress_begin(sat_progress *p, const char *unit, size_t total, int quiet)
{
    const char *delay = getenv("SAT_PROGRESS_DELAY");
    *p = (sat_progress){.unit = unit, .total = total, .enabled = !quiet && isatty(STDERR_FILENO),
                        .delay = delay ? atof(delay) : 1.0, .t0 = sat_now()};
}

/* "1:02" or "1:02:03" */
static void format_duration(double seconds, char *out, size_t len)
{
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else snprintf(out, len, "%ld:%02ld", s / 60, s % 60);
}

void sat_progress_update(sat_progress *p, size_t done, double fraction, const char *extra)
{
    if (!p->enabled) return;
    double now = sat_now(), elapsed = now - p->t0;
    if (elapsed < p->delay || now - p->last < REDRAW_EVERY_MS / 1000.0) return;
    p->last = now;
    char line[256];
    int n = p->total ? snprintf(line, sizeof line, "%s: %zu/%zu %s", sat_progname, done, p->total, p->unit)
                     : snprintf(line, sizeof line, "%s: %zu %s", sat_progname, done, p->unit);
    n += snprintf(line + n, sizeof line - (size_t)n, ", %.1f/s", done / (elapsed + 1e-9));
    if (fraction < 0 && p->total) fraction = (double)done / (double)p->total;
    if (fraction > 0 && fraction <= 1) {
        char eta[32];
        format_duration(elapsed * (1 - fraction) / fraction, eta, sizeof eta);
        if (!p->total) n += snprintf(line + n, sizeof line - (size_t)n, ", %.0f%%", 100 * fraction);
        n += snprintf(line + n, sizeof line - (size_t)n, ", ETA %s", eta);
    }
    if (extra) snprintf(line + n, sizeof line - (size_t)n, ", %s", extra);
    sat_status_draw(line);
}

void sat_progress_end(sat_progress *p)
{
    if (p->enabled) sat_status_erase();
}
