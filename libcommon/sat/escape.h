/* escape.h — ids in text output.
 *
 * An id (an image's path, or a record's id) may hold any byte but NUL, and
 * sat-encode takes file names with a tab or a newline.  In the tab-separated
 * lines of -f text (sat-decode, sat-beam, sat-attend) and in sat-encode
 * --classify's headers such an id would forge fields and lines, so ids are
 * written escaped, C-style: a backslash as \\, a tab \t, a newline \n, a
 * carriage return \r, any other control byte (below 0x20, 0x7f) \xHH; every
 * other byte as it is.  The readers of those lines (sat-eval, sat-attend
 * --captions) undo it with sat_unescape_id.
 */
#ifndef SAT_ESCAPE_H
#define SAT_ESCAPE_H

/* The escaped form of id, malloc'd. */
char *sat_escape_id(const char *id);
/* Undo sat_escape_id in place.  A backslash that starts none of its escapes
 * (and \x00) is kept as it is, so a hand-written id with a stray backslash
 * is read as written. */
void sat_unescape_id(char *s);

#endif
