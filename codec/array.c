#include "codec/array.h"

#include <endian.h>
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

/* Writes element e as the array's dtype: the reference for every value,
 * used for any element the fast loops below do not recognise. Only a
 * rewritten archive puts other elements in a bool array: they read as
 * false (reading .b of an int was undefined behaviour). */
static uint8_t *store(const struct mpfs_val *e, char kind, unsigned size, uint8_t *out)
{
	double f;
	float f32;
	uint64_t bits;
	uint32_t bits32;

	switch (kind) {
	case 'b': *out++ = e->type == MPFS_BOOL && e->b; return out;
	case 'i':
	case 'u': return store_le(out, e->type == MPFS_INT ? (uint64_t)e->i : e->u, 8);
	default:
		f = e->type == MPFS_FLOAT ? e->f
		    : e->type == MPFS_INT ? (double)e->i
					  : (double)e->u;
		if (size == 4) {
			f32 = (float)f;
			memcpy(&bits32, &f32, 4);
			return store_le(out, bits32, 4);
		}
		memcpy(&bits, &f, 8);
		return store_le(out, bits, 8);
	}
}

/* Where the rows of a nested array come from and go. end bounds every
 * read: the mapping may have been rewritten since it was validated, so an
 * element is only trusted to lie inside the buffer, not inside its row. */
struct rows {
	const uint8_t *buf;
	uint64_t end;
	char kind;
	unsigned size;
	bool slow; /* every element through mpfs_scalar_next (for tests) */
};

/* The general path for one element at *off. */
static uint8_t *one(const struct rows *r, uint64_t *off, uint8_t *out)
{
	struct mpfs_val e;

	*off = mpfs_scalar_next(r->buf, r->end, *off, &e);
	return store(&e, r->kind, r->size, out);
}

/* The integer of an int tag whose bytes lie before r->end (checked by
 * the caller with int_width), sign-extended for 0xd0-0xd3 and negative
 * fixints: what head() makes of it, as two's complement bits. */
static uint64_t int_bits(const uint8_t *p)
{
	uint8_t t = p[0];
	uint16_t x16;
	uint32_t x32;
	uint64_t x64;

	if (t <= 0x7f || t >= 0xe0)
		return (uint64_t)(int64_t)(int8_t)t;
	switch (t) {
	case 0xcc: return p[1];
	case 0xd0: return (uint64_t)(int64_t)(int8_t)p[1];
	case 0xcd:
	case 0xd1:
		memcpy(&x16, p + 1, 2);
		x16 = be16toh(x16);
		return t == 0xcd ? x16 : (uint64_t)(int64_t)(int16_t)x16;
	case 0xce:
	case 0xd2:
		memcpy(&x32, p + 1, 4);
		x32 = be32toh(x32);
		return t == 0xce ? x32 : (uint64_t)(int64_t)(int32_t)x32;
	default: break;
	}
	/* 0xcf, 0xd3: eight bytes, the bits as they are */
	memcpy(&x64, p + 1, 8);
	return be64toh(x64);
}

/* Bytes taken by the int at tag t, or 0 if t is no int tag. */
static unsigned int_width(uint8_t t)
{
	if (t <= 0x7f || t >= 0xe0)
		return 1;
	if (t >= 0xcc && t <= 0xcf)
		return 1 + (1u << (t - 0xcc));
	if (t >= 0xd0 && t <= 0xd3)
		return 1 + (1u << (t - 0xd0));
	return 0;
}

/* float64 rows: runs of 0xcb are byte-swapped straight into out, with
 * the bounds checked once per run; float32 and ints are converted as
 * store() converts them. */
static uint8_t *row_f64(const struct rows *r, uint64_t off, uint32_t n, uint8_t *out)
{
	const uint8_t *buf = r->buf;
	uint32_t i = 0;

	while (i < n) {
		uint64_t run = (r->end - off) / 9, bits;
		const uint8_t *p = buf + off;
		unsigned w;

		if (run > n - i)
			run = n - i;
		for (uint64_t k = 0; k < run && p[0] == 0xcb; k++, p += 9, out += 8) {
			memcpy(&bits, p + 1, 8);
			bits = htole64(be64toh(bits));
			memcpy(out, &bits, 8);
		}
		i += (uint32_t)((uint64_t)(p - (buf + off)) / 9);
		off = (uint64_t)(p - buf);
		if (i == n)
			break;
		w = off == r->end ? 0 : p[0] == 0xca ? 5 : int_width(p[0]);
		if (w == 0 || r->end - off < w) {
			out = one(r, &off, out);
		} else {
			double f;
			float f32;
			uint32_t x32;

			if (p[0] == 0xca) {
				memcpy(&x32, p + 1, 4);
				x32 = be32toh(x32);
				memcpy(&f32, &x32, 4);
				f = f32;
			} else if (p[0] >= 0xe0 || (p[0] >= 0xd0 && p[0] <= 0xd3)) {
				f = (double)(int64_t)int_bits(p);
			} else {
				f = (double)int_bits(p);
			}
			memcpy(&bits, &f, 8);
			bits = htole64(bits);
			memcpy(out, &bits, 8);
			out += 8;
			off += w;
		}
		i++;
	}
	return out;
}

/* float32 rows (every element a float32: the dtype says so). store()
 * takes a float32 through double and back, which changes one thing: a
 * signaling NaN comes back quiet (its top mantissa bit set). The compiler
 * may fold a round trip written here away, so that is done on the bits. */
static uint8_t *row_f32(const struct rows *r, uint64_t off, uint32_t n, uint8_t *out)
{
	const uint8_t *buf = r->buf; /* locals: stores to out may alias *r */
	uint64_t end = r->end;

	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p = buf + off;
		uint32_t x;

		if (end - off < 5 || p[0] != 0xca) {
			out = one(r, &off, out);
			continue;
		}
		memcpy(&x, p + 1, 4);
		x = be32toh(x);
		if ((x & 0x7f800000) == 0x7f800000 && (x & 0x007fffff))
			x |= 0x00400000; /* a NaN, now quiet */
		x = htole32(x);
		memcpy(out, &x, 4);
		out += 4;
		off += 5;
	}
	return out;
}

/* The int at p, which has at least 9 bytes after it, without a branch on
 * its tag (random signs would mispredict every other one): eight bytes
 * holding the payload are loaded and shifted down, arithmetically for
 * signed tags. A fixint is its own one-byte payload. *w gets the width,
 * or 0 if the tag is no int. */
static uint64_t int_bits9(const uint8_t *p, unsigned *w)
{
	uint8_t t = p[0];
	bool fix = t <= 0x7f || t >= 0xe0;
	unsigned nb = fix ? 1 : 1u << ((t - 0xcc) & 3), sh = 64 - 8 * nb;
	uint64_t x, sign;

	*w = fix ? 1 : t >= 0xcc && t <= 0xd3 ? 1 + nb : 0;
	memcpy(&x, p + !fix, 8);
	x = be64toh(x);
	sign = -(uint64_t)(fix || t >= 0xd0); /* a mask, not a branch */
	return ((uint64_t)((int64_t)x >> sh) & sign) | ((x >> sh) & ~sign);
}

/* int64 and uint64 rows: the same two's complement bits either way. Runs
 * of one width (all int64s, all fixints) are walked at a fixed stride, so
 * that finding the next element does not wait for the tag of this one. */
static uint8_t *row_int(const struct rows *r, uint64_t off, uint32_t n, uint8_t *out)
{
	const uint8_t *buf = r->buf; /* locals: stores to out may alias *r */
	uint64_t end = r->end;
	uint32_t i = 0;

	while (i < n) {
		unsigned w = off < end ? int_width(buf[off]) : 0, got;
		const uint8_t *p = buf + off;
		uint64_t bits, run, k;

		if (w == 0 || end - off < w) { /* no int, or cut short */
			out = one(r, &off, out);
			i++;
			continue;
		}
		if (end - off < 9) { /* too near the end for int_bits9 */
			bits = htole64(int_bits(p));
			memcpy(out, &bits, 8);
			out += 8;
			off += w;
			i++;
			continue;
		}
		run = (end - off - 9) / w + 1;
		if (run > n - i)
			run = n - i;
		if (w == 9) { /* uint64 0xcf or int64 0xd3 (either sign): the bits as they are */
			for (k = 0; k < run && ((uint8_t)(p[0] - 0xcf) & 0xfb) == 0;
			     k++, p += 9, out += 8) {
				memcpy(&bits, p + 1, 8);
				bits = htole64(be64toh(bits));
				memcpy(out, &bits, 8);
			}
		} else {
			for (k = 0; k < run; k++, p += w, out += 8) {
				bits = int_bits9(p, &got);
				if (got != w)
					break;
				bits = htole64(bits);
				memcpy(out, &bits, 8);
			}
		}
		i += (uint32_t)k;
		off += k * w;
	}
	return out;
}

static uint8_t *row_bool(const struct rows *r, uint64_t off, uint32_t n, uint8_t *out)
{
	for (uint32_t i = 0; i < n; i++) {
		uint8_t t = off < r->end ? r->buf[off] : 0xc0;

		if (t != 0xc2 && t != 0xc3) {
			out = one(r, &off, out);
			continue;
		}
		*out++ = t == 0xc3;
		off++;
	}
	return out;
}

/* Writes leaf row v. Each row starts at its own offset, as validated. */
static uint8_t *row(const struct rows *r, const struct mpfs_val *v, uint8_t *out)
{
	uint64_t off = v->off + v->hdr;

	if (off >= r->end) /* cut short: every element reads as nil */
		off = r->end;
	if (r->slow || off == r->end) {
		for (uint32_t i = 0; i < v->len; i++)
			out = one(r, &off, out);
		return out;
	}
	switch (r->kind) {
	case 'b': return row_bool(r, off, v->len, out);
	case 'i':
	case 'u': return row_int(r, off, v->len, out);
	default: return r->size == 4 ? row_f32(r, off, v->len, out) : row_f64(r, off, v->len, out);
	}
}

/* Writes rows [lo, hi) of list v, which holds per rows (leaf lists). */
static uint8_t *fill(const struct rows *r, const struct mpfs_val *v, uint64_t per, uint64_t lo,
		     uint64_t hi, uint8_t *out)
{
	if (!v->items)
		return row(r, v, out);
	per /= v->len; /* rows under each item; v->len > 0, or there were no rows */
	for (uint64_t i = lo / per; i < v->len && i * per < hi; i++) {
		uint64_t first = i * per;

		out = fill(r, &v->items[i], per, lo > first ? lo - first : 0,
			   hi - first < per ? hi - first : per, out);
	}
	return out;
}

uint64_t mpfs_array_rows(const struct mpfs_array *a)
{
	return a->count ? a->count / a->shape[a->ndim - 1] : 0;
}

static void fill_rows(const struct mpfs_doc *doc, const struct mpfs_array *a, uint64_t first,
		      uint64_t n, uint8_t *out, bool slow)
{
	struct rows r = {doc->buf, doc->size, a->descr[1], a->itemsize, slow};
	uint64_t rows = mpfs_array_rows(a);

	if (first < rows && n)
		fill(&r, a->src, rows, first, n > rows - first ? rows : first + n, out);
}

void mpfs_array_fill_rows(const struct mpfs_doc *doc, const struct mpfs_array *a, uint64_t first,
			  uint64_t n, uint8_t *out)
{
	fill_rows(doc, a, first, n, out, false);
}

void mpfs_array_fill(const struct mpfs_doc *doc, const struct mpfs_array *a, uint8_t *out)
{
	fill_rows(doc, a, 0, UINT64_MAX, out, false);
}

void mpfs_array_fill_slow(const struct mpfs_doc *doc, const struct mpfs_array *a, uint8_t *out)
{
	fill_rows(doc, a, 0, UINT64_MAX, out, true);
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
