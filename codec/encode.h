/* Encoding edits back into MsgPack (with msgpack-c's packer).
 *
 * New values are produced as encoded bytes in a strbuf, so the layers above
 * never see msgpack-c; the archive is then re-encoded with a set of edits,
 * copying every span no edit touches byte for byte. */
#ifndef MPFS_CODEC_ENCODE_H
#define MPFS_CODEC_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "codec/array.h"
#include "codec/strbuf.h"
#include "codec/value.h"

/* Parses text (one JSON value; NaN and ±Infinity accepted; surrounding
 * whitespace ignored) into MsgPack appended to out. With an old value, its
 * kind is kept where the new value fits: an integer keeps its width, a float
 * stays a float (float32 if exact), bin stays bin. If text is not JSON and
 * old is a string (or old is NULL: a new file), the trimmed text becomes the
 * string. Otherwise fails with MPFS_E_ARRAY, err naming the byte offset
 * into text and what was expected there. */
enum mpfs_codec_err mpfs_encode_json(const struct mpfs_doc *doc, const struct mpfs_val *old,
				     const char *text, size_t len, struct mpfs_strbuf *out,
				     struct mpfs_error *err);

/* Most lists an empty array may write as nested lists, the outer one
 * included: no data bounds them, so a shape of (10**12, 0) must be refused,
 * not looped over. Small, so a 128-byte .npy costs at most a few KiB and a
 * few thousand decoded values; real empty arrays have a handful of lists. */
#define MPFS_NESTED_EMPTY_LISTS 4096

/* Encodes an array of dtype/shape a, whose bytes are data (a->nbytes of
 * them), in the encoding of old (a compact map keeps its keys as written)
 * or compact when old is NULL. Work and output are bounded by the data
 * (plus MPFS_NESTED_EMPTY_LISTS). Fails, with nothing appended to out, with
 * MPFS_E_ARRAY when a's shape is no array numpy makes or disagrees with its
 * counts, when the data is over 4 GiB - 1 (a bin's limit) in compact form,
 * or when nested lists cannot hold the shape: 0-d, a dimension over
 * 2^32 - 1, an empty array whose lists would lose a dimension (a zero
 * before the last) or exceed the bound above; with MPFS_E_DTYPE when nested
 * lists would not read back with a's dtype (byte order aside; see
 * nested_fits); with MPFS_E_NOMEM. */
enum mpfs_codec_err mpfs_encode_array(const struct mpfs_doc *doc, const struct mpfs_array *old,
				      const struct mpfs_array *a, const uint8_t *data,
				      struct mpfs_strbuf *out, struct mpfs_error *err);

/* Encodes raw bytes as the payload of old's kind (bin, ext of the same
 * type, or str). */
void mpfs_encode_bytes(const struct mpfs_doc *doc, const struct mpfs_val *old, const uint8_t *data,
		       size_t len, struct mpfs_strbuf *out);

/* Encodes a map key of doc: a str (old-spec raw where doc keeps to the old
 * spec), or an integer when as_int. */
void mpfs_encode_key(const struct mpfs_doc *doc, const uint8_t *key, size_t len, bool as_int,
		     struct mpfs_strbuf *out);

/* An empty map, for mkdir. */
void mpfs_encode_empty_map(struct mpfs_strbuf *out);

enum mpfs_edit_op {
	MPFS_EDIT_REPLACE, /* target: the value to replace by bytes */
	MPFS_EDIT_DELETE,  /* target: a map or array; index: the entry to drop */
	MPFS_EDIT_INSERT,  /* target: a map; key and bytes appended as a new pair */
};

/* Bytes to write in turn: a value given in pieces, some of which may point
 * into the document's own buffer (so a writer can copy those from the old
 * file instead). */
struct mpfs_piece {
	const uint8_t *p;
	size_t len;
};

struct mpfs_edit {
	enum mpfs_edit_op op;
	const struct mpfs_val *target;
	uint32_t index;
	const uint8_t *key; /* INSERT: an encoded key */
	size_t key_len;
	const uint8_t *bytes; /* REPLACE, INSERT: an encoded value */
	size_t len;
	const struct mpfs_piece *pieces; /* REPLACE: the value in pieces, if not NULL */
	size_t npieces;
};

/* Writes doc with the edits applied through write(ctx, bytes, n), which
 * returns 0 or -1. Unchanged values (and headers whose count is unchanged)
 * are copied as they are. Returns 0, or -1 if write failed or memory ran out. */
int mpfs_encode_doc(const struct mpfs_doc *doc, const struct mpfs_edit *edits, size_t nedits,
		    int (*write)(void *ctx, const void *buf, size_t n), void *ctx);

#endif
