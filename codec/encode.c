/* Re-encoding: new values with msgpack-c's packer, the archive by copying
 * what no edit touches. */
#include "codec/encode.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/pack_i.h"

static int sb_write(void *data, const char *buf, size_t len)
{
	struct mpfs_strbuf *b = data;
	mpfs_strbuf_add(b, buf, len);
	return b->oom ? -1 : 0;
}

void mpfs_pack_init(msgpack_packer *pk, struct mpfs_strbuf *out)
{
	msgpack_packer_init(pk, out, sb_write);
}

/* ---- keys, bytes, maps --------------------------------------------------- */

void mpfs_encode_key(const struct mpfs_doc *doc, const uint8_t *key, size_t len, bool as_int,
		     struct mpfs_strbuf *out)
{
	msgpack_packer pk;
	char num[32];

	mpfs_pack_init(&pk, out);
	if (as_int && len && len < sizeof(num)) {
		memcpy(num, key, len);
		num[len] = '\0';
		if (num[0] == '-')
			msgpack_pack_int64(&pk, strtoll(num, NULL, 10));
		else
			msgpack_pack_uint64(&pk, strtoull(num, NULL, 10));
		return;
	}
	mpfs_pack_str_like(&pk, doc, NULL, key, len);
}

void mpfs_encode_empty_map(struct mpfs_strbuf *out)
{
	msgpack_packer pk;
	mpfs_pack_init(&pk, out);
	msgpack_pack_map(&pk, 0);
}

static bool old_spec(const struct mpfs_doc *doc)
{
	return doc && !doc->new_spec;
}

void mpfs_pack_str_like(msgpack_packer *pk, const struct mpfs_doc *doc, const struct mpfs_val *old,
			const void *s, size_t len)
{
	if (old && old->type == MPFS_BIN) {
		msgpack_pack_bin(pk, len);
		msgpack_pack_bin_body(pk, s, len);
	} else if ((old && (old->tag == 0xda || old->tag == 0xdb)) || old_spec(doc)) {
		msgpack_pack_v4raw(pk, len);
		msgpack_pack_v4raw_body(pk, s, len);
	} else {
		msgpack_pack_str(pk, len);
		msgpack_pack_str_body(pk, s, len);
	}
}

void mpfs_encode_bytes(const struct mpfs_doc *doc, const struct mpfs_val *old, const uint8_t *data,
		       size_t len, struct mpfs_strbuf *out)
{
	msgpack_packer pk;

	(void)doc;
	mpfs_pack_init(&pk, out);
	if (old->type == MPFS_EXT) {
		msgpack_pack_ext(&pk, len, old->ext_type);
		msgpack_pack_ext_body(&pk, data, len);
	} else {
		mpfs_pack_str_like(&pk, doc, old, data, len);
	}
}

/* ---- arrays ---------------------------------------------------------------- */

static uint64_t load(const uint8_t *p, unsigned n, bool big)
{
	uint64_t x = 0;
	for (unsigned i = 0; i < n; i++)
		x |= (uint64_t)p[big ? n - 1 - i : i] << 8 * i;
	return x;
}

static void pack_element(msgpack_packer *pk, const struct mpfs_array *a, const uint8_t *p)
{
	bool big = a->descr[0] == '>';
	unsigned n = a->itemsize;
	uint64_t x = load(p, n, big);
	float f;
	double d;
	uint32_t x32 = (uint32_t)x;

	switch (a->descr[1]) {
	case 'b':
		if (x)
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case 'u': msgpack_pack_uint64(pk, x); break;
	case 'i': /* sign-extend from n bytes */
		msgpack_pack_int64(pk, n == 8 ? (int64_t)x
					      : (int64_t)(x << (64 - 8 * n)) >> (64 - 8 * n));
		break;
	default:
		if (n == 4) {
			memcpy(&f, &x32, 4);
			msgpack_pack_float(pk, f);
		} else {
			memcpy(&d, &x, 8);
			msgpack_pack_double(pk, d);
		}
	}
}

/* Packs the lists of a from depth d on, elements from p on; returns where
 * the elements it packed end, or NULL once memory ran out (so a failure
 * stops the walk instead of going on for nothing). */
static const uint8_t *pack_nested(msgpack_packer *pk, const struct mpfs_array *a, unsigned d,
				  const uint8_t *p)
{
	const struct mpfs_strbuf *out = pk->data;

	msgpack_pack_array(pk, (size_t)a->shape[d]);
	for (uint64_t i = 0; i < a->shape[d] && !out->oom; i++) {
		if (d + 1 < a->ndim) {
			p = pack_nested(pk, a, d + 1, p);
		} else {
			pack_element(pk, a, p);
			p += a->itemsize;
		}
	}
	return out->oom ? NULL : p;
}

static void pack_shape(msgpack_packer *pk, const struct mpfs_array *a)
{
	msgpack_pack_array(pk, a->ndim);
	for (unsigned d = 0; d < a->ndim; d++)
		msgpack_pack_uint64(pk, a->shape[d]);
}

static void pack_text(msgpack_packer *pk, const struct mpfs_doc *doc, const struct mpfs_val *old,
		      const char *s)
{
	mpfs_pack_str_like(pk, doc, old, s, strlen(s));
}

/* MsgPack lists and bins hold at most 2^32 - 1 items or bytes. */
#define MSGPACK_MAX_LEN UINT32_MAX

/* The first ndim dimensions of a as numpy prints a shape: "(0, 5)", "(3,)". */
static const char *shape_text(const struct mpfs_array *a, unsigned ndim, char *buf, size_t cap)
{
	size_t n = (size_t)snprintf(buf, cap, "(");

	for (unsigned d = 0; d < ndim && n < cap; d++)
		n += (size_t)snprintf(buf + n, cap - n, "%s%" PRIu64, d ? ", " : "", a->shape[d]);
	if (n < cap)
		snprintf(buf + n, cap - n, "%s)", ndim == 1 ? "," : "");
	return buf;
}

/* The dtype nested lists holding a's non-empty data read back as (the
 * rules of mpfs_array_nested, DESIGN §2): integers are int64, or uint64
 * when a value needs it; floats keep float32 or float64; bools stay bools. */
static const char *nested_dtype(const struct mpfs_array *a, const uint8_t *data)
{
	switch (a->descr[1]) {
	case 'b': return "|b1";
	case 'f': return a->itemsize == 4 ? "<f4" : "<f8";
	case 'i': return "<i8";
	default:
		if (a->itemsize < 8)
			return "<i8";
		for (uint64_t i = 0; i < a->count; i++)
			if (load(data + i * a->itemsize, a->itemsize, a->descr[0] == '>') >
			    INT64_MAX)
				return "<u8";
		return "<i8";
	}
}

/* Nested lists hold numbers and lengths, nothing else: a is refused unless
 * the lists read back as a, with its shape and dtype (byte order aside:
 * nested arrays read back little-endian). Every check costs at most one
 * pass over the data, never a loop over a declared dimension. */
static enum mpfs_codec_err nested_fits(const struct mpfs_array *a, const uint8_t *data,
				       struct mpfs_error *err)
{
	char k = a->descr[1], sa[MPFS_MAX_DIMS * 22 + 4], sb[MPFS_MAX_DIMS * 22 + 4];
	const char *want;
	uint64_t lists = 1, level = 1;

	if (k == 'c' || (k == 'f' && a->itemsize == 2))
		return mpfs_error_set(err, MPFS_E_DTYPE, 0,
				      "dtype %s cannot be stored as nested lists", a->descr);
	if (a->ndim == 0)
		return mpfs_error_set(err, MPFS_E_ARRAY, 0,
				      "a 0-d array cannot be stored as nested lists");
	for (unsigned d = 0; d < a->ndim; d++)
		if (a->shape[d] > MSGPACK_MAX_LEN)
			return mpfs_error_set(err, MPFS_E_ARRAY, 0,
					      "dimension %u of shape %s is over 4294967295, the "
					      "most items a MsgPack list holds",
					      d, shape_text(a, a->ndim, sa, sizeof(sa)));
	if (a->count) {
		want = nested_dtype(a, data);
		if (want[1] != k || (unsigned)(want[2] - '0') != a->itemsize)
			return mpfs_error_set(err, MPFS_E_DTYPE, 0,
					      "nested lists keep numbers, not their dtype: %s data "
					      "would read back as %s; save it as %s",
					      a->descr, want, want);
		return MPFS_OK;
	}
	/* Empty: the lists stop at the first empty one, and hold no number. */
	for (unsigned d = 0; d + 1 < a->ndim; d++)
		if (a->shape[d] == 0)
			return mpfs_error_set(
				err, MPFS_E_ARRAY, 0,
				"an empty array of shape %s would read back as %s "
				"from nested lists (an empty list says nothing of the "
				"dimensions after it)",
				shape_text(a, a->ndim, sa, sizeof(sa)),
				shape_text(a, d + 1, sb, sizeof(sb)));
	if (k != 'f' || a->itemsize != 8)
		return mpfs_error_set(err, MPFS_E_DTYPE, 0,
				      "an empty %s array would read back as <f8 from nested "
				      "lists (an empty list has no dtype)",
				      a->descr);
	/* No data bounds the lists of an empty array: a 128-byte .npy of shape
	 * (10**12, 0) would be 10^12 lists. Bound them here. */
	for (unsigned d = 0; d + 1 < a->ndim; d++) {
		level *= a->shape[d]; /* at most MPFS_NESTED_EMPTY_LISTS * 2^32 */
		lists += level;
		if (lists > MPFS_NESTED_EMPTY_LISTS)
			return mpfs_error_set(err, MPFS_E_ARRAY, 0,
					      "an empty array of shape %s is more than %d empty "
					      "nested lists",
					      shape_text(a, a->ndim, sa, sizeof(sa)),
					      MPFS_NESTED_EMPTY_LISTS);
	}
	return MPFS_OK;
}

enum mpfs_codec_err mpfs_encode_array(const struct mpfs_doc *doc, const struct mpfs_array *old,
				      const struct mpfs_array *a, const uint8_t *data,
				      struct mpfs_strbuf *out, struct mpfs_error *err)
{
	struct mpfs_array sized = *a;
	size_t mark = out->len;
	msgpack_packer pk;
	enum mpfs_codec_err rc;

	/* The loops below trust the shape: it must be one numpy can make and
	 * agree with the element and byte counts the data was checked for. */
	if (!mpfs_array_sized(&sized) || sized.count != a->count || sized.nbytes != a->nbytes)
		return mpfs_error_set(err, MPFS_E_ARRAY, 0,
				      "array shape does not give %" PRIu64
				      " elements of %s, or needs 2^63 bytes or more",
				      a->count, a->descr);
	if (!data) /* an empty array may come without data: the packer copies none */
		data = (const uint8_t *)"";
	mpfs_pack_init(&pk, out);
	if (old && old->encoding == MPFS_ENC_NESTED) {
		char k = a->descr[1];
		/* Strings, times and long doubles have no nested form. */
		if (!strchr("biuf", k) || (k == 'f' && a->itemsize != 4 && a->itemsize != 8))
			return mpfs_error_set(err, MPFS_E_DTYPE, 0,
					      "dtype %s cannot be stored as nested lists",
					      a->descr);
		if ((rc = nested_fits(a, data, err)))
			return rc;
		pack_nested(&pk, a, 0, data);
		goto done;
	}
	if (a->nbytes > MSGPACK_MAX_LEN)
		return mpfs_error_set(err, MPFS_E_ARRAY, 0,
				      "array data of %" PRIu64 " bytes: a compact array's data "
				      "(a MsgPack bin) holds at most 4294967295",
				      a->nbytes);
	if (!old) {
		msgpack_pack_map(&pk, 5);
		pack_text(&pk, doc, NULL, "nd");
		msgpack_pack_true(&pk);
		pack_text(&pk, doc, NULL, "type");
		pack_text(&pk, doc, NULL, a->descr);
		pack_text(&pk, doc, NULL, "kind");
		msgpack_pack_bin(&pk, 0);
		pack_text(&pk, doc, NULL, "shape");
		pack_shape(&pk, a);
		pack_text(&pk, doc, NULL, "data");
		msgpack_pack_bin(&pk, a->nbytes);
		msgpack_pack_bin_body(&pk, data, a->nbytes);
		goto done;
	}
	/* Keep the map as written: its keys, their order and spelling. */
	const struct mpfs_val *m = old->src;
	mpfs_strbuf_add(out, doc->buf + m->off, m->hdr);
	for (uint32_t i = 0; i < m->len; i++) {
		const struct mpfs_val *key = &m->items[2 * i], *val = &m->items[2 * i + 1];

		mpfs_strbuf_add(out, doc->buf + key->off, key->end - key->off);
		if (mpfs_val_is(doc, key, "type")) {
			pack_text(&pk, doc, val, a->descr);
		} else if (mpfs_val_is(doc, key, "shape")) {
			pack_shape(&pk, a);
		} else if (mpfs_val_is(doc, key, "data")) {
			mpfs_pack_str_like(&pk, doc, val, data, a->nbytes); /* bin stays bin */
		} else {
			mpfs_strbuf_add(out, doc->buf + val->off, val->end - val->off);
		}
	}
done:
	if (!out->oom)
		return MPFS_OK;
	out->len = mark;
	return mpfs_error_set(err, MPFS_E_NOMEM, 0, "out of memory");
}

/* ---- the archive ------------------------------------------------------------ */

struct enc {
	const struct mpfs_doc *doc;
	const struct mpfs_edit *edits;
	size_t nedits;
	int (*write)(void *ctx, const void *buf, size_t n);
	void *ctx;
};

static bool inside(const struct mpfs_val *t, const struct mpfs_val *v)
{
	return t->off >= v->off && t->end <= v->end;
}

static bool dropped(const struct enc *e, const struct mpfs_val *v, uint32_t i)
{
	for (size_t j = 0; j < e->nedits; j++)
		if (e->edits[j].op == MPFS_EDIT_DELETE && e->edits[j].target == v &&
		    e->edits[j].index == i)
			return true;
	return false;
}

static int write_header(struct enc *e, const struct mpfs_val *v, uint64_t count)
{
	struct mpfs_strbuf hdr;
	msgpack_packer pk;
	int rc;

	if (count == v->len) /* as written: keeps its width */
		return e->write(e->ctx, e->doc->buf + v->off, v->hdr);
	mpfs_strbuf_init(&hdr);
	mpfs_pack_init(&pk, &hdr);
	if (v->type == MPFS_MAP)
		msgpack_pack_map(&pk, count);
	else
		msgpack_pack_array(&pk, count);
	rc = hdr.oom ? -1 : e->write(e->ctx, hdr.p, hdr.len);
	mpfs_strbuf_destroy(&hdr);
	return rc;
}

static int write_replace(struct enc *e, const struct mpfs_edit *ed)
{
	if (!ed->pieces)
		return e->write(e->ctx, ed->bytes, ed->len);
	for (size_t i = 0; i < ed->npieces; i++)
		if (e->write(e->ctx, ed->pieces[i].p, ed->pieces[i].len))
			return -1;
	return 0;
}

static int enc_val(struct enc *e, const struct mpfs_val *v)
{
	const struct mpfs_doc *doc = e->doc;
	bool touched = false;
	uint64_t count, off;
	size_t ins = 0;
	int per = v->type == MPFS_MAP ? 2 : 1;
	struct mpfs_val item;

	for (size_t i = 0; i < e->nedits; i++) {
		const struct mpfs_edit *ed = &e->edits[i];
		if (ed->op == MPFS_EDIT_REPLACE && ed->target == v)
			return write_replace(e, ed);
		if (inside(ed->target, v))
			touched = true;
		if (ed->target == v && ed->op == MPFS_EDIT_INSERT && v->type == MPFS_MAP)
			ins++;
	}
	if (!touched || (v->type != MPFS_MAP && v->type != MPFS_ARRAY))
		return e->write(e->ctx, doc->buf + v->off, v->end - v->off);

	/* Count what stays: each index once, whatever the edits say. */
	count = ins;
	for (uint32_t i = 0; i < v->len; i++)
		count += !dropped(e, v, i);
	if (write_header(e, v, count))
		return -1;
	off = v->off + v->hdr;
	for (uint32_t i = 0; i < v->len; i++) {
		if (!v->items) { /* a leaf array: its scalars lie in the buffer */
			uint64_t next = mpfs_scalar_next(doc->buf, doc->size, off, &item);
			if (!dropped(e, v, i) && e->write(e->ctx, doc->buf + off, next - off))
				return -1;
			off = next;
			continue;
		}
		if (dropped(e, v, i))
			continue;
		for (int k = 0; k < per; k++)
			if (enc_val(e, &v->items[per * i + k]))
				return -1;
	}
	for (size_t j = 0; j < e->nedits; j++) {
		const struct mpfs_edit *ed = &e->edits[j];
		if (ed->op != MPFS_EDIT_INSERT || ed->target != v || v->type != MPFS_MAP)
			continue;
		if (e->write(e->ctx, ed->key, ed->key_len) || e->write(e->ctx, ed->bytes, ed->len))
			return -1;
	}
	return 0;
}

int mpfs_encode_doc(const struct mpfs_doc *doc, const struct mpfs_edit *edits, size_t nedits,
		    int (*write)(void *ctx, const void *buf, size_t n), void *ctx)
{
	struct enc e = {.doc = doc, .edits = edits, .nedits = nedits, .write = write, .ctx = ctx};
	return enc_val(&e, &doc->root);
}
