/* msgpack-numpy's numpy scalars and pickled object arrays: see numpy.h. */
#include "codec/numpy.h"

#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <string.h>

#include "codec/encode.h"
#include "codec/json.h"
#include "codec/pack_i.h"

static bool is_text(const struct mpfs_val *v)
{
	return v && (v->type == MPFS_STR || v->type == MPFS_BIN);
}

/* ---- recognising ---------------------------------------------------------- */

bool mpfs_numpy_scalar(const struct mpfs_doc *doc, const struct mpfs_val *v, struct mpfs_array *out)
{
	const struct mpfs_val *nd, *type, *data;
	struct mpfs_array a = {.encoding = MPFS_ENC_COMPACT, .src = v, .count = 1};

	if (v->type != MPFS_MAP || v->len != 3)
		return false;
	nd = mpfs_map_get(doc, v, "nd");
	type = mpfs_map_get(doc, v, "type");
	data = mpfs_map_get(doc, v, "data");
	if (!nd || nd->type != MPFS_BOOL || nd->b || !is_text(type) || !is_text(data))
		return false;
	if (!mpfs_array_parse_dtype(mpfs_val_data(doc, type), type->len, &a) ||
	    !strchr("biufc", a.descr[1]) || data->len != a.itemsize)
		return false;
	a.nbytes = a.itemsize;
	a.data_off = data->off + data->hdr;
	*out = a;
	return true;
}

bool mpfs_numpy_is_pickled(const struct mpfs_doc *doc, const struct mpfs_val *v)
{
	const struct mpfs_val *kind = mpfs_map_get(doc, v, "kind");
	return kind && mpfs_val_is(doc, kind, "O");
}

enum mpfs_codec_err mpfs_numpy_pickled(const struct mpfs_doc *doc, const struct mpfs_val *v,
				       struct mpfs_array *out, struct mpfs_error *err)
{
	const struct mpfs_val *shape = mpfs_map_get(doc, v, "shape");
	const struct mpfs_val *data = mpfs_map_get(doc, v, "data");
	struct mpfs_array a = {.encoding = MPFS_ENC_COMPACT, .src = v, .count = 1};
	uint64_t off, count = 1;
	struct mpfs_val e;
	bool ok;

	if (!is_text(data))
		return mpfs_error_set(err, MPFS_E_ARRAY, v->off,
				      "pickled object array: data must be a bin or str");
	strcpy(a.descr, "|O");
	/* The shape is only shown (user.mpfs.shape): one that is not a flat
	 * list of at most 32 integers is left out rather than refused. */
	ok = shape && shape->type == MPFS_ARRAY && !shape->items && shape->len <= MPFS_MAX_DIMS;
	off = ok ? shape->off + shape->hdr : 0;
	for (uint32_t d = 0; ok && d < shape->len; d++) {
		off = mpfs_scalar_next(doc->buf, doc->size, off, &e);
		ok = e.type == MPFS_UINT && !__builtin_mul_overflow(count, e.u, &count);
		a.shape[d] = e.u;
	}
	if (ok) {
		a.ndim = (uint8_t)shape->len;
		a.count = count;
	} else {
		memset(a.shape, 0, sizeof(a.shape));
	}
	a.nbytes = data->len;
	a.data_off = data->off + data->hdr;
	*out = a;
	return MPFS_OK;
}

/* ---- float16 ------------------------------------------------------------------ */

static double half_to_double(uint16_t h)
{
	int exp = (h >> 10) & 31;
	unsigned man = h & 1023;
	double m;

	if (exp == 0)
		m = ldexp(man, -24);
	else if (exp == 31)
		m = man ? NAN : INFINITY;
	else
		m = ldexp(1024 + man, exp - 25);
	return h & 0x8000 ? -m : m;
}

/* The float16 holding exactly d, if there is one. */
static bool double_to_half(double d, uint16_t *out)
{
	uint16_t sign = signbit(d) ? 0x8000 : 0;
	double m = fabs(d), s;
	int e;

	if (isnan(d)) {
		*out = 0x7e00;
		return true;
	}
	if (isinf(d) || m == 0) {
		*out = sign | (isinf(d) ? 0x7c00 : 0);
		return true;
	}
	if (m > 65504)
		return false;
	if (m < 0x1p-14) { /* subnormal: a multiple of 2^-24 */
		s = ldexp(m, 24);
		if (s != floor(s))
			return false;
		*out = sign | (uint16_t)s;
		return true;
	}
	frexp(m, &e); /* m = f * 2^e, f in [0.5, 1): the leading bit is 2^(e-1) */
	s = ldexp(m, 10 - (e - 1));
	if (s != floor(s))
		return false;
	*out = sign | (uint16_t)((e - 1 + 15) << 10) | (uint16_t)((uint64_t)s - 1024);
	return true;
}

/* ---- reading and writing one item --------------------------------------------- */

static uint64_t load(const uint8_t *p, unsigned n, bool big)
{
	uint64_t x = 0;
	for (unsigned i = 0; i < n; i++)
		x |= (uint64_t)p[big ? n - 1 - i : i] << 8 * i;
	return x;
}

static void store(uint8_t *p, uint64_t x, unsigned n, bool big)
{
	for (unsigned i = 0; i < n; i++)
		p[big ? n - 1 - i : i] = (uint8_t)(x >> 8 * i);
}

static double float_of(uint64_t x, unsigned n)
{
	float f;
	double d;
	uint32_t x32 = (uint32_t)x;

	if (n == 2)
		return half_to_double((uint16_t)x);
	if (n == 4) {
		memcpy(&f, &x32, 4);
		return f;
	}
	memcpy(&d, &x, 8);
	return d;
}

void mpfs_numpy_scalar_render(const struct mpfs_doc *doc, const struct mpfs_array *a,
			      struct mpfs_strbuf *out)
{
	unsigned n = a->itemsize;
	uint64_t x;
	char num[MPFS_JSON_DOUBLE_MAX];

	if (a->descr[1] == 'c' || n > 8) {
		mpfs_strbuf_puts(out, "null");
		return;
	}
	x = load(doc->buf + a->data_off, n, a->descr[0] == '>');
	switch (a->descr[1]) {
	case 'b': mpfs_strbuf_puts(out, x ? "true" : "false"); break;
	case 'u': mpfs_strbuf_printf(out, "%" PRIu64, x); break;
	case 'i': /* sign-extend from n bytes */
		mpfs_strbuf_printf(out, "%" PRId64,
				   n == 8 ? (int64_t)x
					  : (int64_t)(x << (64 - 8 * n)) >> (64 - 8 * n));
		break;
	default: mpfs_json_double(float_of(x, n), num); mpfs_strbuf_puts(out, num);
	}
}

/* ---- the new value of a scalar ------------------------------------------------ */

/* A number or bool as written: which it is, and its value. */
struct number {
	char kind; /* 'b', 'i' (negative), 'u' (non-negative integer) or 'f' */
	bool b;
	int64_t i;
	uint64_t u;
	double f;
};

static bool fits_int(const struct number *v, char kind, unsigned n)
{
	if (v->kind == 'i')
		return kind == 'i' && (n == 8 || v->i >= -((int64_t)1 << (8 * n - 1)));
	if (kind == 'u')
		return n == 8 || v->u < (uint64_t)1 << 8 * n;
	return v->u <= (n == 8 ? (uint64_t)INT64_MAX : ((uint64_t)1 << (8 * n - 1)) - 1);
}

/* The bits of v as a float of n bytes, if it holds v exactly. */
static bool fits_float(double d, unsigned n, uint64_t *bits)
{
	uint16_t h;
	float f;
	uint32_t b32;

	if (n == 2) {
		if (!double_to_half(d, &h))
			return false;
		*bits = h;
		return true;
	}
	if (n == 4) {
		f = (float)d;
		if ((double)f != d && !isnan(d))
			return false;
		memcpy(&b32, &f, 4);
		*bits = b32;
		return true;
	}
	memcpy(bits, &d, 8);
	return true;
}

/* Chooses the dtype (into a) and the item's bits for value v replacing a
 * scalar of dtype old. */
static uint64_t choose(const struct number *v, const struct mpfs_array *old, struct mpfs_array *a)
{
	char order = old->descr[0] == '>' ? '>' : '<', kind = old->descr[1];
	unsigned n = old->itemsize;
	uint64_t bits = 0;
	double d;

	if (v->kind == 'b') {
		strcpy(a->descr, "|b1");
		a->itemsize = 1;
		return v->b;
	}
	if (v->kind == 'f' || kind == 'f') {
		d = v->kind == 'f' ? v->f : v->kind == 'i' ? (double)v->i : (double)v->u;
		if (kind != 'f')
			n = 8;
		while (!fits_float(d, n, &bits))
			n *= 2; /* float64 holds every double */
		kind = 'f';
	} else {
		if (kind != 'i' && kind != 'u') { /* an integer into a bool */
			kind = 'i';
			n = 8;
		}
		while (n <= 8 && !fits_int(v, kind, n))
			n *= 2;
		if (n > 8) { /* the other signedness: -1 into a uint, 2^63 into an int */
			kind = kind == 'i' ? 'u' : 'i';
			for (n = 1; !fits_int(v, kind, n); n *= 2)
				;
		}
		bits = v->kind == 'i' ? (uint64_t)v->i : v->u;
	}
	snprintf(a->descr, sizeof(a->descr), "%c%c%u", n == 1 ? '|' : order, kind, n);
	a->itemsize = n;
	return bits;
}

/* The map of old as written, with type and data replaced. */
static void pack_scalar(msgpack_packer *pk, const struct mpfs_doc *doc,
			const struct mpfs_array *old, const struct mpfs_array *a,
			const uint8_t *data, struct mpfs_strbuf *out)
{
	const struct mpfs_val *m = old->src;

	mpfs_strbuf_add(out, doc->buf + m->off, m->hdr);
	for (uint32_t i = 0; i < m->len; i++) {
		const struct mpfs_val *key = &m->items[2 * i], *val = &m->items[2 * i + 1];

		mpfs_strbuf_add(out, doc->buf + key->off, key->end - key->off);
		if (mpfs_val_is(doc, key, "type"))
			mpfs_pack_str_like(pk, doc, val, a->descr, strlen(a->descr));
		else if (mpfs_val_is(doc, key, "data"))
			mpfs_pack_str_like(pk, doc, val, data, a->itemsize); /* bin stays bin */
		else
			mpfs_strbuf_add(out, doc->buf + val->off, val->end - val->off);
	}
}

enum mpfs_codec_err mpfs_numpy_scalar_encode(const struct mpfs_doc *doc,
					     const struct mpfs_array *old, const char *text,
					     size_t len, struct mpfs_strbuf *out,
					     struct mpfs_error *err)
{
	const struct mpfs_val nil = {.type = MPFS_NIL}; /* not a string: no bare text */
	struct mpfs_strbuf tmp;
	struct mpfs_doc parsed;
	struct mpfs_array a = {0};
	struct number v = {0};
	msgpack_packer pk;
	uint8_t item[8];
	uint64_t bits;
	const struct mpfs_val *r;
	enum mpfs_codec_err rc;

	mpfs_strbuf_init(&tmp);
	if ((rc = mpfs_encode_json(doc, &nil, text, len, &tmp, err)))
		goto out;
	if (tmp.oom) {
		rc = mpfs_error_set(err, MPFS_E_NOMEM, 0, "out of memory");
		goto out;
	}
	if ((rc = mpfs_doc_init(&parsed, (const uint8_t *)tmp.p, tmp.len, err)))
		goto out;
	r = &parsed.root;
	switch (r->type) {
	case MPFS_BOOL: v = (struct number){.kind = 'b', .b = r->b}; break;
	case MPFS_INT: v = (struct number){.kind = 'i', .i = r->i}; break;
	case MPFS_UINT: v = (struct number){.kind = 'u', .u = r->u}; break;
	case MPFS_FLOAT: v = (struct number){.kind = 'f', .f = r->f}; break;
	default: /* a string, null, list or map: no longer a numpy scalar */
		mpfs_strbuf_add(out, tmp.p, tmp.len);
		mpfs_doc_destroy(&parsed);
		goto out;
	}
	mpfs_doc_destroy(&parsed);
	bits = choose(&v, old, &a); /* sets a's dtype first */
	store(item, bits, a.itemsize, a.descr[0] == '>');
	mpfs_pack_init(&pk, out);
	pack_scalar(&pk, doc, old, &a, item, out);
out:
	mpfs_strbuf_destroy(&tmp);
	return rc;
}

/* ---- new arrays ------------------------------------------------------------------ */

static void pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, p, n);
}

void mpfs_numpy_encode_array(const struct mpfs_array *a, const uint8_t *data,
			     struct mpfs_strbuf *out)
{
	msgpack_packer pk;

	mpfs_pack_init(&pk, out);
	msgpack_pack_map(&pk, 5);
	pack_bin(&pk, "nd", 2);
	msgpack_pack_true(&pk);
	pack_bin(&pk, "type", 4);
	msgpack_pack_str(&pk, strlen(a->descr));
	msgpack_pack_str_body(&pk, a->descr, strlen(a->descr));
	pack_bin(&pk, "kind", 4);
	pack_bin(&pk, "", 0);
	pack_bin(&pk, "shape", 5);
	msgpack_pack_array(&pk, a->ndim);
	for (unsigned d = 0; d < a->ndim; d++)
		msgpack_pack_uint64(&pk, a->shape[d]);
	pack_bin(&pk, "data", 4);
	pack_bin(&pk, data, a->nbytes);
}
