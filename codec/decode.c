/* MsgPack decoder for untrusted archives: see value.h for why it is ours.
 *
 * Every length is checked against the bytes that remain before anything is
 * allocated, and every element takes at least one byte, so memory is bounded
 * by the input size. Arrays holding only scalars ("leaf" arrays: the rows of
 * nested-list weights) are validated and summarised but not materialised. */
#include "codec/value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/utf8.h"

struct mpfs_arena {
	struct mpfs_arena *next;
	size_t used, cap;
	struct mpfs_val vals[];
};

#define ARENA_CHUNK 4096

static struct mpfs_val *arena_alloc(struct mpfs_arena **head, size_t n)
{
	struct mpfs_arena *a = *head;
	if (!a || a->cap - a->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		a = malloc(sizeof(*a) + cap * sizeof(struct mpfs_val));
		if (!a)
			return NULL;
		a->used = 0;
		a->cap = cap;
		a->next = *head;
		*head = a;
	}
	a->used += n;
	return a->vals + a->used - n;
}

static void arena_free(struct mpfs_arena *a)
{
	while (a) {
		struct mpfs_arena *next = a->next;
		free(a);
		a = next;
	}
}

enum mpfs_codec_err mpfs_error_set(struct mpfs_error *err, enum mpfs_codec_err code, uint64_t off,
				   const char *fmt, ...)
{
	va_list ap;
	err->code = code;
	err->off = off;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

const char *mpfs_codec_strerror(enum mpfs_codec_err code)
{
	switch (code) {
	case MPFS_OK: return "success";
	case MPFS_E_EMPTY: return "empty file";
	case MPFS_E_TRUNCATED: return "truncated";
	case MPFS_E_RESERVED: return "reserved byte 0xc1";
	case MPFS_E_DEPTH: return "nesting too deep";
	case MPFS_E_TRAILING: return "trailing bytes";
	case MPFS_E_NOT_MAP: return "not a map";
	case MPFS_E_NOMEM: return "out of memory";
	case MPFS_E_ARRAY: return "malformed array";
	case MPFS_E_DTYPE: return "unsupported dtype";
	}
	return "unknown error";
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t x = 0;
	for (int i = 0; i < n; i++)
		x = x << 8 | p[i];
	return x;
}

struct dec {
	const uint8_t *p;
	uint64_t size;
	struct mpfs_arena **arena; /* the document's: see mpfs_doc.arena */
	uint64_t nvalues;
	struct mpfs_error *err;
	bool new_spec; /* met a str8, bin or ext */
};

static const char *const type_names[] = {"nil", "bool", "int", "int",	"float",
					 "str", "bin",	"ext", "array", "map"};

/* Reads the tag and fixed-size fields of the value at off into *v. For STR,
 * BIN and EXT the payload must be present; for ARRAY and MAP, v->end is the end
 * of the header only and the count must be possible in the bytes left. */
static enum mpfs_codec_err head(struct dec *d, uint64_t off, struct mpfs_val *v)
{
	static const uint8_t fixext_len[] = {1, 2, 4, 8, 16};
	const uint8_t *p = d->p + off;
	uint64_t left = d->size - off;
	uint64_t n = 0;
	int w = 0; /* width of a length or number field */

	if (left == 0)
		return mpfs_error_set(d->err, MPFS_E_TRUNCATED, off, "truncated: value expected");
	memset(v, 0, sizeof(*v));
	v->off = off;
	v->tag = p[0];
	if (p[0] <= 0x7f) {
		v->type = MPFS_UINT, v->u = p[0];
	} else if (p[0] >= 0xe0) {
		v->type = MPFS_INT, v->i = (int8_t)p[0];
	} else if (p[0] <= 0x8f) {
		v->type = MPFS_MAP, n = p[0] & 0x0f;
	} else if (p[0] <= 0x9f) {
		v->type = MPFS_ARRAY, n = p[0] & 0x0f;
	} else if (p[0] <= 0xbf) {
		v->type = MPFS_STR, n = p[0] & 0x1f;
	} else {
		switch (p[0]) {
		case 0xc0: v->type = MPFS_NIL; break;
		case 0xc1:
			return mpfs_error_set(d->err, MPFS_E_RESERVED, off,
					      "reserved byte 0xc1 is not MsgPack");
		case 0xc2:
		case 0xc3: v->type = MPFS_BOOL, v->b = p[0] == 0xc3; break;
		case 0xc4:
		case 0xc5:
		case 0xc6: v->type = MPFS_BIN, w = 1 << (p[0] - 0xc4); break;
		case 0xc7:
		case 0xc8:
		case 0xc9: v->type = MPFS_EXT, w = 1 << (p[0] - 0xc7); break;
		case 0xca: v->type = MPFS_FLOAT, w = 4; break;
		case 0xcb: v->type = MPFS_FLOAT, w = 8; break;
		case 0xcc:
		case 0xcd:
		case 0xce:
		case 0xcf: v->type = MPFS_UINT, w = 1 << (p[0] - 0xcc); break;
		case 0xd0:
		case 0xd1:
		case 0xd2:
		case 0xd3: v->type = MPFS_INT, w = 1 << (p[0] - 0xd0); break;
		case 0xd4:
		case 0xd5:
		case 0xd6:
		case 0xd7:
		case 0xd8: v->type = MPFS_EXT, n = fixext_len[p[0] - 0xd4]; break;
		case 0xd9:
		case 0xda:
		case 0xdb: v->type = MPFS_STR, w = 1 << (p[0] - 0xd9); break;
		case 0xdc:
		case 0xdd: v->type = MPFS_ARRAY, w = 2 << (p[0] - 0xdc); break;
		default: /* 0xde, 0xdf */ v->type = MPFS_MAP, w = 2 << (p[0] - 0xde); break;
		}
	}
	if (p[0] == 0xd9 || (p[0] >= 0xc4 && p[0] <= 0xc9) || (p[0] >= 0xd4 && p[0] <= 0xd8))
		d->new_spec = true;
	v->hdr = 1 + w;
	if (v->type == MPFS_EXT)
		v->hdr++; /* the type byte */
	if (left < v->hdr)
		return mpfs_error_set(d->err, MPFS_E_TRUNCATED, off,
				      "truncated: %s header needs %u bytes, %llu left",
				      type_names[v->type], v->hdr, (unsigned long long)left);
	if (w) {
		uint64_t x = be(p + 1, w);
		switch (v->type) {
		case MPFS_FLOAT:
			if (w == 4) {
				float f;
				uint32_t x32 = (uint32_t)x;
				memcpy(&f, &x32, 4);
				v->f = f;
			} else {
				memcpy(&v->f, &x, 8);
			}
			break;
		case MPFS_UINT: v->u = x; break;
		case MPFS_INT:
			v->i = w == 1	? (int8_t)x
			       : w == 2 ? (int16_t)x
			       : w == 4 ? (int32_t)x
					: (int64_t)x;
			if (v->i >= 0) /* a signed encoding of a non-negative number */
				v->type = MPFS_UINT;
			break;
		default: n = x; break;
		}
	}
	if (v->type == MPFS_EXT)
		v->ext_type = (int8_t)p[v->hdr - 1];
	left -= v->hdr;
	switch (v->type) {
	case MPFS_STR:
	case MPFS_BIN:
	case MPFS_EXT:
		if (n > left)
			return mpfs_error_set(d->err, MPFS_E_TRUNCATED, off,
					      "truncated: %s of %llu bytes, only %llu left",
					      type_names[v->type], (unsigned long long)n,
					      (unsigned long long)left);
		v->len = (uint32_t)n;
		v->end = off + v->hdr + n;
		if (v->type == MPFS_STR)
			v->flags = mpfs_utf8_valid(p + v->hdr, n);
		return MPFS_OK;
	case MPFS_ARRAY:
	case MPFS_MAP:
		/* Each element takes at least one byte. */
		if (n > left || (v->type == MPFS_MAP && 2 * n > left))
			return mpfs_error_set(
				d->err, MPFS_E_TRUNCATED, off,
				"truncated: %s of %llu elements, only %llu bytes left",
				type_names[v->type], (unsigned long long)n,
				(unsigned long long)left);
		v->len = (uint32_t)n;
		v->end = off + v->hdr;
		return MPFS_OK;
	default: v->end = off + v->hdr; return MPFS_OK;
	}
}

static uint16_t scalar_flag(const struct mpfs_val *v)
{
	switch (v->type) {
	case MPFS_BOOL: return MPFS_EL_BOOL;
	case MPFS_INT: return MPFS_EL_INT | MPFS_EL_NEG;
	case MPFS_UINT: return v->u > INT64_MAX ? MPFS_EL_BIGU : MPFS_EL_INT;
	case MPFS_FLOAT: return v->tag == 0xca ? MPFS_EL_F32 : MPFS_EL_F64;
	case MPFS_STR: return v->flags ? MPFS_EL_OTHER : MPFS_EL_RAW;
	case MPFS_NIL: return MPFS_EL_OTHER;
	default: return MPFS_EL_RAW;
	}
}

/* Walks the elements of array a if they are all scalars, summing up their
 * kinds into a->flags and setting a->end. Returns 1 for a leaf array, 0 when
 * a container was met (a is then to be materialised), or -1 on error. */
static int scan_leaf(struct dec *d, struct mpfs_val *a)
{
	uint64_t off = a->end;
	uint16_t flags = 0;
	struct mpfs_val v;

	for (uint32_t i = 0; i < a->len; i++) {
		if (head(d, off, &v))
			return -1;
		/* Containers, and what will be shown as files of their own. */
		if (v.type == MPFS_ARRAY || v.type == MPFS_MAP || (scalar_flag(&v) & MPFS_EL_RAW))
			return 0;
		flags |= scalar_flag(&v);
		off = v.end;
	}
	a->flags = flags;
	a->end = off;
	return 1;
}

static enum mpfs_codec_err parse(struct dec *d, uint64_t off, unsigned depth, struct mpfs_val *v)
{
	uint64_t n;

	if (head(d, off, v))
		return d->err->code;
	if (v->type != MPFS_ARRAY && v->type != MPFS_MAP)
		return MPFS_OK;
	if (depth >= MPFS_MAX_DEPTH)
		return mpfs_error_set(d->err, MPFS_E_DEPTH, off, "nesting deeper than %d levels",
				      MPFS_MAX_DEPTH);
	if (v->type == MPFS_ARRAY) {
		int leaf = scan_leaf(d, v);
		if (leaf)
			return leaf < 0 ? d->err->code : MPFS_OK;
		n = v->len;
	} else {
		n = 2 * (uint64_t)v->len;
	}
	d->nvalues += v->type == MPFS_ARRAY ? n : v->len;
	v->items = arena_alloc(d->arena, n);
	if (!v->items && n)
		return mpfs_error_set(d->err, MPFS_E_NOMEM, off, "out of memory");
	off = v->end;
	for (uint64_t i = 0; i < n; i++) {
		struct mpfs_val *c = &v->items[i];
		if (parse(d, off, depth + 1, c))
			return d->err->code;
		off = c->end;
		if (c->type == MPFS_ARRAY || c->type == MPFS_MAP)
			v->flags |= c->flags | (c->type == MPFS_MAP ? MPFS_EL_MAP : MPFS_EL_LIST);
		else
			v->flags |= scalar_flag(c);
	}
	v->end = off;
	return MPFS_OK;
}

enum mpfs_codec_err mpfs_doc_init(struct mpfs_doc *doc, const uint8_t *buf, size_t size,
				  struct mpfs_error *err)
{
	struct dec d = {.p = buf, .size = size, .arena = &doc->arena, .err = err, .nvalues = 1};

	memset(doc, 0, sizeof(*doc));
	memset(err, 0, sizeof(*err));
	if (size == 0)
		return mpfs_error_set(err, MPFS_E_EMPTY, 0, "empty file: no MsgPack value");
	if (parse(&d, 0, 0, &doc->root))
		goto out_free_arena;
	if (doc->root.end != size) {
		mpfs_error_set(err, MPFS_E_TRAILING, doc->root.end,
			       "%llu trailing bytes after the archive's value",
			       (unsigned long long)(size - doc->root.end));
		goto out_free_arena;
	}
	doc->buf = buf;
	doc->size = size;
	doc->nvalues = d.nvalues;
	doc->new_spec = d.new_spec;
	return MPFS_OK;

out_free_arena:
	arena_free(doc->arena);
	memset(doc, 0, sizeof(*doc));
	return err->code;
}

void mpfs_doc_destroy(struct mpfs_doc *doc)
{
	arena_free(doc->arena);
	memset(doc, 0, sizeof(*doc));
}

uint64_t mpfs_scalar_next(const uint8_t *buf, uint64_t end, uint64_t off, struct mpfs_val *v)
{
	struct mpfs_error err;
	struct dec d = {.p = buf, .size = end, .err = &err};

	/* The document was validated, but its bytes may have changed since:
	 * head() checks every length against end before it reads. */
	if (off < end && head(&d, off, v) == MPFS_OK && v->type != MPFS_ARRAY &&
	    v->type != MPFS_MAP)
		return v->end;
	memset(v, 0, sizeof(*v));
	v->type = MPFS_NIL;
	v->tag = 0xc0;
	v->off = v->end = end;
	return end;
}

static __thread struct mpfs_scalar_bound bound;

void mpfs_scalar_bound(const uint8_t *buf, uint64_t size, struct mpfs_scalar_bound *saved)
{
	*saved = bound;
	bound.buf = buf;
	bound.size = size;
}

void mpfs_scalar_unbound(const struct mpfs_scalar_bound *saved)
{
	bound = *saved;
}

uint64_t mpfs_scalar_at(const uint8_t *buf, uint64_t off, struct mpfs_val *v)
{
	return mpfs_scalar_next(buf, buf == bound.buf ? bound.size : UINT64_MAX, off, v);
}

bool mpfs_val_is(const struct mpfs_doc *doc, const struct mpfs_val *v, const char *s)
{
	size_t n = strlen(s);
	return (v->type == MPFS_STR || v->type == MPFS_BIN) && v->len == n &&
	       memcmp(mpfs_val_data(doc, v), s, n) == 0;
}

const struct mpfs_val *mpfs_map_get(const struct mpfs_doc *doc, const struct mpfs_val *m,
				    const char *k)
{
	if (m->type != MPFS_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->len; i++)
		if (mpfs_val_is(doc, &m->items[2 * i], k))
			return &m->items[2 * i + 1];
	return NULL;
}
