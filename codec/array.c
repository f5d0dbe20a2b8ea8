#include "codec/array.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- nested lists ---------------------------------------------------- */

struct walk {
	struct mpfs_array *a;
	bool known[MPFS_MAX_DIMS];
};

/* Checks that list v at depth d fits the shape met so far (and extends it). */
static bool rect(struct walk *w, const struct mpfs_val *v, unsigned d)
{
	struct mpfs_array *a = w->a;

	if (d >= MPFS_MAX_DIMS || (a->ndim && d >= a->ndim))
		return false;
	if (!w->known[d]) {
		w->known[d] = true;
		a->shape[d] = v->len;
	} else if (a->shape[d] != v->len) {
		return false;
	}
	if (!v->items) {
		if (!a->ndim)
			a->ndim = (uint8_t)(d + 1);
		return a->ndim == d + 1;
	}
	for (uint32_t i = 0; i < v->len; i++)
		if (v->items[i].type != MPFS_ARRAY || !rect(w, &v->items[i], d + 1))
			return false;
	return true;
}

bool mpfs_array_nested(const struct mpfs_val *v, struct mpfs_array *out)
{
	const uint16_t num =
		MPFS_EL_BOOL | MPFS_EL_INT | MPFS_EL_BIGU | MPFS_EL_NEG | MPFS_EL_F32 | MPFS_EL_F64;
	struct mpfs_array a = {.encoding = MPFS_ENC_NESTED, .src = v};
	struct walk w = {.a = &a};
	uint16_t f = v->flags & num;
	const char *descr;

	if (v->type != MPFS_ARRAY || (v->flags & (MPFS_EL_OTHER | MPFS_EL_RAW | MPFS_EL_MAP)))
		return false;
	if (f == 0 || (f & (MPFS_EL_F32 | MPFS_EL_F64)))
		descr = f == MPFS_EL_F32 ? "<f4" : "<f8";
	else if (f & MPFS_EL_BOOL)
		descr = f == MPFS_EL_BOOL ? "|b1" : NULL;
	else if (f & MPFS_EL_BIGU)
		descr = f & MPFS_EL_NEG ? NULL : "<u8";
	else
		descr = "<i8";
	if (!descr || (f & MPFS_EL_BOOL && f != MPFS_EL_BOOL))
		return false;
	if (!rect(&w, v, 0))
		return false;
	strcpy(a.descr, descr);
	a.itemsize = descr[2] - '0';
	a.count = 1;
	for (unsigned d = 0; d < a.ndim; d++)
		a.count *= a.shape[d]; /* bounded: every element took a byte */
	a.nbytes = a.count * a.itemsize;
	*out = a;
	return true;
}

static uint8_t *store_le(uint8_t *out, uint64_t bits, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		out[i] = (uint8_t)(bits >> 8 * i);
	return out + n;
}

static uint8_t *fill_leaf(const struct mpfs_doc *doc, const struct mpfs_val *v, char kind,
			  unsigned size, uint8_t *out)
{
	uint64_t off = v->off + v->hdr;
	struct mpfs_val e;

	for (uint32_t i = 0; i < v->len; i++) {
		double f;
		float f32;
		uint64_t bits;
		uint32_t bits32;

		off = mpfs_scalar_next(doc->buf, doc->size, off, &e);
		switch (kind) {
		case 'b': *out++ = e.b; break;
		case 'i':
		case 'u': out = store_le(out, e.type == MPFS_INT ? (uint64_t)e.i : e.u, 8); break;
		default:
			f = e.type == MPFS_FLOAT ? e.f
			    : e.type == MPFS_INT ? (double)e.i
						 : (double)e.u;
			if (size == 4) {
				f32 = (float)f;
				memcpy(&bits32, &f32, 4);
				out = store_le(out, bits32, 4);
			} else {
				memcpy(&bits, &f, 8);
				out = store_le(out, bits, 8);
			}
		}
	}
	return out;
}

static uint8_t *fill(const struct mpfs_doc *doc, const struct mpfs_val *v, char kind, unsigned size,
		     uint8_t *out)
{
	if (!v->items)
		return fill_leaf(doc, v, kind, size, out);
	for (uint32_t i = 0; i < v->len; i++)
		out = fill(doc, &v->items[i], kind, size, out);
	return out;
}

void mpfs_array_fill(const struct mpfs_doc *doc, const struct mpfs_array *a, uint8_t *out)
{
	fill(doc, a->src, a->descr[1], a->itemsize, out);
}

void mpfs_array_swap(const struct mpfs_array *a, const uint8_t *src, uint8_t *dst)
{
	unsigned unit = a->descr[1] == 'c' ? a->itemsize / 2u : a->itemsize;

	if (a->descr[1] == 'U' || a->descr[1] == 'S') /* characters, one by one */
		unit = a->descr[1] == 'U' ? 4 : 1;

	for (uint64_t i = 0; i < a->nbytes; i += unit)
		for (unsigned j = 0; j < unit; j++)
			dst[i + j] = src[i + unit - 1 - j];
}

bool mpfs_array_sized(struct mpfs_array *a)
{
	uint64_t count = 1, nonzero = a->itemsize;

	if (a->ndim > MPFS_MAX_DIMS)
		return false;
	for (unsigned d = 0; d < a->ndim; d++) {
		if (a->shape[d] > INT64_MAX)
			return false;
		count *= a->shape[d]; /* wraps only where nonzero overflows too */
		if (a->shape[d] &&
		    (__builtin_mul_overflow(nonzero, a->shape[d], &nonzero) || nonzero > INT64_MAX))
			return false;
	}
	a->count = count;
	a->nbytes = count * a->itemsize;
	return true;
}

/* ---- compact maps ---------------------------------------------------- */

bool mpfs_array_is_compact(const struct mpfs_doc *doc, const struct mpfs_val *v)
{
	const struct mpfs_val *nd = mpfs_map_get(doc, v, "nd");
	return nd && nd->type == MPFS_BOOL && nd->b;
}

/* String dtypes: U (UCS-4, byte order kept) and S (bytes, always '|'), as
 * msgpack-numpy writes them for arrays of str and bytes. s[0..n) follows
 * the byte order, if any. */
static bool parse_string_dtype(char order, const uint8_t *s, size_t n, struct mpfs_array *a)
{
	char kind = (char)s[0];
	uint64_t chars = 0;

	if (n < 2 || n > 10)
		return false;
	for (size_t i = 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		chars = chars * 10 + (s[i] - '0');
	}
	if (chars == 0 || chars > MPFS_MAX_STR_CHARS)
		return false;
	if (kind == 'S' || order == '|' || order == '=')
		order = kind == 'S' ? '|' : '<'; /* | on U: numpy reads native */
	snprintf(a->descr, sizeof(a->descr), "%c%c%u", order, kind, (unsigned)chars);
	a->itemsize = (uint32_t)(kind == 'U' ? 4 * chars : chars);
	return true;
}

/* datetime64 and timedelta64 (M8, m8): int64 counts of a unit, written
 * as numpy does ("<M8[ns]", "<m8[10s]", "<M8" generic). s[0..n) follows
 * the byte order, if any. */
static bool parse_time_dtype(char order, const uint8_t *s, size_t n, struct mpfs_array *a)
{
	static const char *const units[] = {"Y",  "M",	"W",  "D",  "h",  "m", "s",
					    "ms", "us", "ns", "ps", "fs", "as"};
	size_t i = 2, digits = 0, u;

	if (n < 2 || s[1] != '8' || order == '|')
		return false;
	if (n > 2) {
		if (s[i++] != '[' || s[n - 1] != ']')
			return false;
		while (i < n && s[i] >= '0' && s[i] <= '9' && digits < 6)
			i++, digits++;
		if (digits && s[i - digits] == '0')
			return false;
		for (u = 0; u < sizeof(units) / sizeof(units[0]); u++)
			if (n - 1 - i == strlen(units[u]) && !memcmp(s + i, units[u], n - 1 - i))
				break;
		if (u == sizeof(units) / sizeof(units[0]))
			return false;
	}
	snprintf(a->descr, sizeof(a->descr), "%c%.*s", order == '>' ? '>' : '<', (int)n, s);
	a->itemsize = 8;
	return true;
}

bool mpfs_array_parse_dtype(const uint8_t *s, size_t n, struct mpfs_array *a)
{
	char order = '<', kind;
	unsigned size = 0;
	size_t i = 0;

	if (n && s[0] && strchr("<>|=", s[0]))
		order = (char)s[i++];
	if (i < n && (s[i] == 'U' || s[i] == 'S'))
		return parse_string_dtype(order, s + i, n - i, a);
	if (i < n && (s[i] == 'M' || s[i] == 'm'))
		return parse_time_dtype(order, s + i, n - i, a);
	if (i >= n || s[i] == '\0' || !strchr("biufc", s[i]))
		return false;
	kind = (char)s[i++];
	if (i == n || n - i > 2)
		return false;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		size = size * 10 + (s[i] - '0');
	}
	switch (kind) {
	case 'b':
		if (size != 1)
			return false;
		break;
	case 'i':
	case 'u':
		if (size != 1 && size != 2 && size != 4 && size != 8)
			return false;
		break;
	case 'f': /* f16: long double (x86's 80 bits, padded), as numpy names it */
		if (size != 2 && size != 4 && size != 8 && size != 16)
			return false;
		break;
	default:
		if (size != 8 && size != 16 && size != 32)
			return false;
		break;
	}
	if (order == '=')
		order = '<'; /* native: every machine we build for is little-endian */
	if (size == 1)
		order = '|';
	else if (order == '|')
		return false;
	snprintf(a->descr, sizeof(a->descr), "%c%c%u", order, kind, size);
	a->itemsize = (uint8_t)size;
	return true;
}

static bool is_text(const struct mpfs_val *v)
{
	return v && (v->type == MPFS_STR || v->type == MPFS_BIN);
}

enum mpfs_codec_err mpfs_array_compact(const struct mpfs_doc *doc, const struct mpfs_val *v,
				       struct mpfs_array *out, struct mpfs_error *err)
{
	const struct mpfs_val *nd = mpfs_map_get(doc, v, "nd");
	const struct mpfs_val *type = mpfs_map_get(doc, v, "type");
	const struct mpfs_val *kind = mpfs_map_get(doc, v, "kind");
	const struct mpfs_val *shape = mpfs_map_get(doc, v, "shape");
	const struct mpfs_val *data = mpfs_map_get(doc, v, "data");
	struct mpfs_array a = {.encoding = MPFS_ENC_COMPACT, .src = v, .count = 1};
	struct mpfs_val e;
	uint64_t off;

	/* First: msgpack-numpy writes a structured dtype's type as a list. */
	if (kind && is_text(kind) && kind->len)
		return mpfs_error_set(
			err, MPFS_E_DTYPE, kind->off,
			"compact array: kind '%.*s' (object or structured data) is not supported",
			(int)(kind->len > 16 ? 16 : kind->len), mpfs_val_data(doc, kind));
	if (!nd || nd->type != MPFS_BOOL || !nd->b || !is_text(type) || !shape ||
	    shape->type != MPFS_ARRAY || !is_text(data) || (kind && !is_text(kind)))
		return mpfs_error_set(
			err, MPFS_E_ARRAY, v->off,
			"compact array: needs nd=true, type, shape (a list) and data");
	if (!mpfs_array_parse_dtype(mpfs_val_data(doc, type), type->len, &a))
		return mpfs_error_set(err, MPFS_E_DTYPE, type->off,
				      "compact array: dtype '%.*s' is not a plain bool, int, uint, "
				      "float, complex or string type",
				      (int)(type->len > 16 ? 16 : type->len),
				      mpfs_val_data(doc, type));
	if (shape->items || shape->len > MPFS_MAX_DIMS)
		return mpfs_error_set(err, MPFS_E_ARRAY, shape->off,
				      "compact array: shape must be a list of at most %d integers",
				      MPFS_MAX_DIMS);
	a.ndim = (uint8_t)shape->len;
	off = shape->off + shape->hdr;
	for (unsigned d = 0; d < a.ndim; d++) {
		off = mpfs_scalar_next(doc->buf, doc->size, off, &e);
		if (e.type == MPFS_INT)
			return mpfs_error_set(err, MPFS_E_ARRAY, e.off,
					      "compact array: negative dimension %" PRId64, e.i);
		if (e.type != MPFS_UINT)
			return mpfs_error_set(err, MPFS_E_ARRAY, e.off,
					      "compact array: dimension is not an integer");
		a.shape[d] = e.u;
		if (__builtin_mul_overflow(a.count, e.u, &a.count))
			return mpfs_error_set(err, MPFS_E_ARRAY, e.off,
					      "compact array: shape overflows 64 bits");
	}
	if (!mpfs_array_sized(&a))
		return mpfs_error_set(err, MPFS_E_ARRAY, shape->off,
				      "compact array: shape of more than 2^63 bytes (numpy "
				      "cannot make it, even empty)");
	if (a.nbytes != data->len)
		return mpfs_error_set(err, MPFS_E_ARRAY, data->off,
				      "compact array: data holds %u bytes, but %" PRIu64
				      " elements of %s need %" PRIu64,
				      data->len, a.count, a.descr, a.nbytes);
	a.data_off = data->off + data->hdr;
	*out = a;
	return MPFS_OK;
}

size_t mpfs_array_shape_str(const struct mpfs_array *a, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	for (unsigned d = 0; d < a->ndim && n < cap; d++)
		n += (size_t)snprintf(out + n, cap - n, "%s%" PRIu64, d ? "," : "", a->shape[d]);
	return n < cap ? n : cap - 1;
}
