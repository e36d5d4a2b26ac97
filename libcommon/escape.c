/* escape.c — see escape.h. */
#include "sat/escape.h"

#include <stdio.h>
#include <string.h>

#include "sat/util.h"

/* The letter of a one-letter escape, or 0. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '\\': return '\\';
    case '\t': return 't';
    case '\n': return 'n';
    case '\r': return 'r';
    default: return 0;
    }
}

char *sat_escape_id(const char *id)
{
    char *out = sat_xmalloc(4 * strlen(id) + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        char letter = short_escape(*p);
        if (letter) {
            *o++ = '\\';
            *o++ = letter;
        } else if (*p < 0x20 || *p == 0x7f) {
            o += sprintf(o, "\\x%02x", *p);
        } else {
            *o++ = (char)*p;
        }
    }
    *o = 0;
    return out;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The byte an escape at s (just after the backslash) stands for, and its
 * length in *n; -1 when s starts no escape. */
static int unescape_one(const char *s, int *n)
{
    *n = 1;
    switch (s[0]) {
    case '\\': return '\\';
    case 't': return '\t';
    case 'n': return '\n';
    case 'r': return '\r';
    case 'x': {
        int hi = hex_digit(s[1]), lo = hi < 0 ? -1 : hex_digit(s[2]);
        *n = 3;
        return lo < 0 || (hi == 0 && lo == 0) ? -1 : 16 * hi + lo;
    }
    default: return -1;
    }
}

void sat_unescape_id(char *s)
{
    char *o = s;
    while (*s) {
        int n, c = *s == '\\' ? unescape_one(s + 1, &n) : -1;
        if (c < 0) {
            *o++ = *s++;
            continue;
        }
        *o++ = (char)c;
        s += 1 + n;
    }
    *o = 0;
}
