/* MsgPack values decoded from an archive held in memory (usually a mapping).
 *
 * The decoder is our own rather than msgpack-c's object unpacker: archives are
 * untrusted, and we need (a) the byte offset of every value, so unchanged
 * spans can be copied on write and errors can name where they are, and (b)
 * memory bounded by the bytes actually present, never by a declared length.
 * Strings, bins and exts are never copied: a value records where its payload
 * lies in the buffer. */
#ifndef MPFS_CODEC_VALUE_H
#define MPFS_CODEC_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/utf8.h"

enum mpfs_type {
	MPFS_NIL,
	MPFS_BOOL,
	MPFS_INT,   /* negative integer, held in .i */
	MPFS_UINT,  /* non-negative integer, held in .u */
	MPFS_FLOAT, /* float32 or float64 (tag tells which), held in .f */
	MPFS_STR,
	MPFS_BIN,
	MPFS_EXT,
	MPFS_ARRAY,
	MPFS_MAP,
};

/* Summary of the elements of an array, OR-ed over all depths. */
enum {
	MPFS_EL_BOOL = 1 << 0,
	MPFS_EL_INT = 1 << 1,	/* an integer that fits int64 */
	MPFS_EL_BIGU = 1 << 2,	/* an integer above INT64_MAX */
	MPFS_EL_NEG = 1 << 3,	/* a negative integer */
	MPFS_EL_F32 = 1 << 4,	/* a float32 */
	MPFS_EL_F64 = 1 << 5,	/* a float64 */
	MPFS_EL_OTHER = 1 << 6, /* nil or a UTF-8 str */
	MPFS_EL_RAW = 1 << 7,	/* bin, ext or a str that is not UTF-8 */
	MPFS_EL_MAP = 1 << 8,	/* a map (directly or deeper) */
	MPFS_EL_LIST = 1 << 9,	/* an array (in a materialised array) */
};

struct mpfs_val {
	uint64_t off; /* offset of the first (tag) byte */
	uint64_t end; /* offset one past the last byte of the whole value */
	union {
		bool b;
		int64_t i;
		uint64_t u;
		double f;
		/* ARRAY: len items, or NULL for a leaf array (only scalars), whose
		 * elements are read back with mpfs_scalar_at(); MAP: 2*len items,
		 * key then value. */
		struct mpfs_val *items;
	};
	uint32_t len;	 /* STR/BIN/EXT: payload bytes; ARRAY: items; MAP: pairs */
	uint8_t type;	 /* enum mpfs_type */
	uint8_t tag;	 /* first byte as written: keeps widths and str vs raw */
	uint8_t hdr;	 /* bytes before the payload (STR/BIN/EXT) */
	int8_t ext_type; /* EXT only */
	uint16_t flags;	 /* ARRAY: MPFS_EL_* over its elements; STR: 1 if UTF-8 */
};

enum mpfs_codec_err {
	MPFS_OK = 0,
	MPFS_E_EMPTY,
	MPFS_E_TRUNCATED,
	MPFS_E_RESERVED,
	MPFS_E_DEPTH,
	MPFS_E_TRAILING,
	MPFS_E_NOT_MAP,
	MPFS_E_NOMEM,
	MPFS_E_ARRAY, /* a malformed compact or csr array */
	MPFS_E_DTYPE, /* an unsupported array element type */
};

/* Where decoding stopped and why; msg is one line without a newline. */
struct mpfs_error {
	enum mpfs_codec_err code;
	uint64_t off;
	char msg[200];
};

/* Hard limits for untrusted input. */
#define MPFS_MAX_DEPTH 128

/* A decoded archive. Values live in an arena owned by the document. */
struct mpfs_doc {
	const uint8_t *buf; /* borrowed: must outlive the document */
	size_t size;
	struct mpfs_val root;
	/* Filled in as decoding goes, so that a decode cut short by a SIGBUS
	 * (the archive truncated under its mapping) leaves nothing behind that
	 * mpfs_doc_destroy cannot free. */
	struct mpfs_arena *arena;
	uint64_t nvalues; /* values that are not map keys, the root included */
	/* The archive uses str8, bin or ext, which readers of the old MsgPack
	 * spec cannot read; if not, new strings of 32 to 255 bytes are written
	 * as str16 (raw16 to old readers) rather than str8. */
	bool new_spec;
};

/* Decodes buf[0..size) as exactly one MsgPack value. On success fills *doc
 * (release with mpfs_doc_destroy) and returns MPFS_OK; otherwise fills *err
 * and returns its code, leaving nothing to release. */
enum mpfs_codec_err mpfs_doc_init(struct mpfs_doc *doc, const uint8_t *buf, size_t size,
				  struct mpfs_error *err);
void mpfs_doc_destroy(struct mpfs_doc *doc);

/* Decodes the scalar at buf+off of an already validated document into *v,
 * reading nothing at or past end (the end of the buffer, or of the leaf
 * array being walked); returns the next offset. Used to walk the elements of
 * a leaf array. The buffer is usually a mapping of the archive, which
 * someone may rewrite in place: if the bytes at off are no longer a scalar
 * that ends by end, *v is a nil with v->off == v->end == end and end is
 * returned, so a walk of any length stays inside the buffer. */
uint64_t mpfs_scalar_next(const uint8_t *buf, uint64_t end, uint64_t off, struct mpfs_val *v);

/* mpfs_scalar_next() for walkers that do not pass an end: bounded by the
 * innermost mpfs_scalar_bound() scope of this thread that covers buf, and
 * unbounded otherwise. New code calls mpfs_scalar_next(). */
uint64_t mpfs_scalar_at(const uint8_t *buf, uint64_t off, struct mpfs_val *v);

/* Bounds this thread's mpfs_scalar_at() walks of buf to buf[0..size) until
 * the matching mpfs_scalar_unbound(saved). Scopes nest: *saved keeps the
 * outer one. Cheap (two thread-local stores). */
struct mpfs_scalar_bound {
	const uint8_t *buf;
	uint64_t size;
};
void mpfs_scalar_bound(const uint8_t *buf, uint64_t size, struct mpfs_scalar_bound *saved);
void mpfs_scalar_unbound(const struct mpfs_scalar_bound *saved);

/* Payload of a STR/BIN/EXT value. */
static inline const uint8_t *mpfs_val_data(const struct mpfs_doc *doc, const struct mpfs_val *v)
{
	return doc->buf + v->off + v->hdr;
}

/* True if v is a STR or BIN holding UTF-8 text. */
static inline bool mpfs_val_text(const struct mpfs_doc *doc, const struct mpfs_val *v)
{
	if (v->type == MPFS_STR)
		return v->flags;
	return v->type == MPFS_BIN && mpfs_utf8_valid(mpfs_val_data(doc, v), v->len);
}

/* True if v is a STR or BIN whose bytes equal the NUL-terminated s. */
bool mpfs_val_is(const struct mpfs_doc *doc, const struct mpfs_val *v, const char *s);

/* The value stored under string key k in map m, or NULL. */
const struct mpfs_val *mpfs_map_get(const struct mpfs_doc *doc, const struct mpfs_val *m,
				    const char *k);

/* Fills err (code, off, printf-style message) and returns err->code. */
enum mpfs_codec_err mpfs_error_set(struct mpfs_error *err, enum mpfs_codec_err code, uint64_t off,
				   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

const char *mpfs_codec_strerror(enum mpfs_codec_err code);

#endif
