#include "codec/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/utf8.h"

/* The decimal digits d[0..nd) and exponent e of the shortest text D.DDDeE
 * that reads back to f (f finite, positive). printf's nearest decimal of a
 * given length may miss where its neighbour one unit above or below reads
 * back (at powers of two the rounding interval is lopsided), so both
 * neighbours are tried too. */
static int shortest(double f, char d[20], int *e)
{
	char sci[40];
	int prec;

	for (prec = 1; prec <= 17; prec++) {
		uint64_t m = 0, lo = 1;
		const char *s;

		snprintf(sci, sizeof(sci), "%.*e", prec - 1, f);
		for (s = sci; *s != 'e'; s++)
			if (*s != '.')
				m = m * 10 + (uint64_t)(*s - '0');
		*e = atoi(s + 1);
		if (strtod(sci, NULL) == f)
			break;
		for (int i = 1; i < prec; i++)
			lo *= 10;
		for (int delta = -1; delta <= 1; delta += 2) {
			uint64_t c = m + (uint64_t)(int64_t)delta;
			int ce = *e;
			if (c < lo)
				continue; /* fewer digits: tried already */
			if (c >= lo * 10)
				c /= 10, ce++;
			snprintf(sci, sizeof(sci), "%" PRIu64 "e%d", c, ce - (prec - 1));
			if (strtod(sci, NULL) == f) {
				*e = ce;
				return snprintf(d, 20, "%" PRIu64, c);
			}
		}
	}
	snprintf(sci, sizeof(sci), "%.*e", prec - 1, f);
	int nd = 0;
	for (const char *s = sci; *s != 'e'; s++)
		if (*s != '.')
			d[nd++] = *s;
	*e = atoi(strchr(sci, 'e') + 1);
	return nd;
}

size_t mpfs_json_double(double f, char out[MPFS_JSON_DOUBLE_MAX])
{
	char digits[20];
	int exp, nd;
	char *p = out;

	if (isnan(f))
		return (size_t)snprintf(out, MPFS_JSON_DOUBLE_MAX, "NaN");
	if (isinf(f))
		return (size_t)snprintf(out, MPFS_JSON_DOUBLE_MAX,
					f < 0 ? "-Infinity" : "Infinity");
	if (signbit(f))
		*p++ = '-', f = -f;
	if (f == 0) {
		digits[0] = '0', nd = 1, exp = 0;
	} else {
		nd = shortest(f, digits, &exp);
	}
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;

	if (exp >= -4 && exp < 16) {
		if (exp < 0) {
			*p++ = '0', *p++ = '.';
			for (int i = -1; i > exp; i--)
				*p++ = '0';
			memcpy(p, digits, (size_t)nd), p += nd;
		} else {
			for (int i = 0; i <= exp; i++)
				*p++ = i < nd ? digits[i] : '0';
			*p++ = '.';
			if (nd > exp + 1)
				memcpy(p, digits + exp + 1, (size_t)(nd - exp - 1)),
					p += nd - exp - 1;
			else
				*p++ = '0';
		}
	} else {
		*p++ = digits[0];
		if (nd > 1) {
			*p++ = '.';
			memcpy(p, digits + 1, (size_t)(nd - 1)), p += nd - 1;
		}
		p += sprintf(p, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
	}
	*p = '\0';
	return (size_t)(p - out);
}

static void render_string(const uint8_t *s, size_t n, struct mpfs_strbuf *out)
{
	size_t run = 0;

	mpfs_strbuf_add(out, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		const char *esc = NULL;
		char u[8];

		switch (s[i]) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default:
			if (s[i] < 0x20 || s[i] == 0x7f) {
				snprintf(u, sizeof(u), "\\u%04x", s[i]);
				esc = u;
			}
		}
		if (!esc)
			continue;
		mpfs_strbuf_add(out, s + run, i - run);
		mpfs_strbuf_puts(out, esc);
		run = i + 1;
	}
	mpfs_strbuf_add(out, s + run, n - run);
	mpfs_strbuf_add(out, "\"", 1);
}

static void render_bytes(const uint8_t *s, size_t n, struct mpfs_strbuf *out)
{
	mpfs_strbuf_add(out, "\"", 1);
	for (size_t i = 0; i < n; i++)
		mpfs_strbuf_printf(out, "\\u%04x", s[i]);
	mpfs_strbuf_add(out, "\"", 1);
}

void mpfs_json_render(const struct mpfs_doc *doc, const struct mpfs_val *v, struct mpfs_strbuf *out)
{
	char num[MPFS_JSON_DOUBLE_MAX];

	switch (v->type) {
	case MPFS_NIL: mpfs_strbuf_puts(out, "null"); break;
	case MPFS_BOOL: mpfs_strbuf_puts(out, v->b ? "true" : "false"); break;
	case MPFS_INT: mpfs_strbuf_printf(out, "%" PRId64, v->i); break;
	case MPFS_UINT: mpfs_strbuf_printf(out, "%" PRIu64, v->u); break;
	case MPFS_FLOAT: mpfs_strbuf_add(out, num, mpfs_json_double(v->f, num)); break;
	case MPFS_STR:
	case MPFS_BIN:
		if (mpfs_val_text(doc, v))
			render_string(mpfs_val_data(doc, v), v->len, out);
		else
			render_bytes(mpfs_val_data(doc, v), v->len, out);
		break;
	case MPFS_EXT: render_bytes(mpfs_val_data(doc, v), v->len, out); break;
	case MPFS_ARRAY: {
		uint64_t off = v->off + v->hdr; /* the first element */
		struct mpfs_val e;

		mpfs_strbuf_add(out, "[", 1);
		for (uint32_t i = 0; i < v->len; i++) {
			if (i)
				mpfs_strbuf_add(out, ", ", 2);
			if (v->items) {
				mpfs_json_render(doc, &v->items[i], out);
			} else { /* a leaf: walk the scalars in the buffer */
				off = mpfs_scalar_next(doc->buf, v->end, off, &e);
				mpfs_json_render(doc, &e, out);
			}
		}
		mpfs_strbuf_add(out, "]", 1);
		break;
	}
	case MPFS_MAP:
		mpfs_strbuf_add(out, "{", 1);
		for (uint32_t i = 0; i < v->len; i++) {
			const struct mpfs_val *k = &v->items[2 * i];
			if (i)
				mpfs_strbuf_add(out, ", ", 2);
			if (k->type == MPFS_STR || k->type == MPFS_BIN) {
				mpfs_json_render(doc, k, out);
			} else {
				struct mpfs_strbuf ks;
				mpfs_strbuf_init(&ks);
				mpfs_json_render(doc, k, &ks);
				render_string((const uint8_t *)(ks.p ? ks.p : ""), ks.len, out);
				mpfs_strbuf_destroy(&ks);
			}
			mpfs_strbuf_add(out, ": ", 2);
			mpfs_json_render(doc, &v->items[2 * i + 1], out);
		}
		mpfs_strbuf_add(out, "}", 1);
		break;
	}
}
