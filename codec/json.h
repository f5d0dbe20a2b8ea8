/* Values as JSON text: what a text file of the mount holds. */
#ifndef MPFS_CODEC_JSON_H
#define MPFS_CODEC_JSON_H

#include "codec/strbuf.h"
#include "codec/value.h"

/* Longest text mpfs_json_double writes, with its NUL. */
#define MPFS_JSON_DOUBLE_MAX 32

/* Writes the shortest text that reads back (strtod) to exactly f, in the
 * style of Python's repr: "0.0001", "1e-08", "100.0", "-0.0", "5e-324";
 * NaN, Infinity and -Infinity as such. Returns the length. */
size_t mpfs_json_double(double f, char out[MPFS_JSON_DOUBLE_MAX]);

/* Appends v as one line of JSON (no newline). Scalars and arrays of them
 * are meant; a map renders as an object, bin and ext as strings of their
 * bytes, so nothing ever fails but memory (out->oom). */
void mpfs_json_render(const struct mpfs_doc *doc, const struct mpfs_val *v,
		      struct mpfs_strbuf *out);

#endif
