/* JSON text (what a user saves into a text file) to MsgPack. */
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "codec/encode.h"
#include "codec/pack_i.h"

struct jp {
	const struct mpfs_doc *doc;
	const char *s;
	size_t n, i;
	struct mpfs_error *err;
};

static int fail(struct jp *p, const char *what)
{
	mpfs_error_set(p->err, MPFS_E_ARRAY, p->i, "not valid JSON at byte %zu: %s", p->i, what);
	return -1;
}

static void ws(struct jp *p)
{
	while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]) && p->s[p->i])
		p->i++;
}

static bool lit(struct jp *p, const char *w)
{
	size_t l = strlen(w);
	if (p->n - p->i < l || memcmp(p->s + p->i, w, l))
		return false;
	p->i += l;
	return true;
}

static int hex4(struct jp *p, unsigned *u)
{
	*u = 0;
	if (p->n - p->i < 4)
		return fail(p, "short \\u escape");
	for (int k = 0; k < 4; k++) {
		char c = p->s[p->i++];
		*u <<= 4;
		if (c >= '0' && c <= '9')
			*u |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*u |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*u |= (unsigned)(c - 'A' + 10);
		else
			return fail(p, "bad \\u escape");
	}
	return 0;
}

static void utf8(struct mpfs_strbuf *b, unsigned cp)
{
	char o[4];
	size_t n;

	if (cp < 0x80)
		o[0] = (char)cp, n = 1;
	else if (cp < 0x800)
		o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	else if (cp < 0x10000)
		o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
		o[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
	else
		o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
	mpfs_strbuf_add(b, o, n);
}

/* Decodes the string at p->s[p->i] (opening quote) into str. */
static int string(struct jp *p, struct mpfs_strbuf *str)
{
	p->i++;
	while (p->i < p->n) {
		unsigned char c = (unsigned char)p->s[p->i++];
		unsigned u, lo;

		if (c == '"') {
			mpfs_strbuf_add(str, "", 0);
			if (str->oom)
				return mpfs_error_set(p->err, MPFS_E_NOMEM, p->i, "out of memory"),
				       -1;
			return 0;
		}
		if (c < 0x20) {
			p->i--; /* name the character itself */
			return fail(p, "control character in string");
		}
		if (c != '\\') {
			mpfs_strbuf_add(str, &c, 1);
			continue;
		}
		if (p->i >= p->n)
			break;
		c = (unsigned char)p->s[p->i++];
		switch (c) {
		case '"':
		case '\\':
		case '/': mpfs_strbuf_add(str, &c, 1); break;
		case 'b': mpfs_strbuf_add(str, "\b", 1); break;
		case 'f': mpfs_strbuf_add(str, "\f", 1); break;
		case 'n': mpfs_strbuf_add(str, "\n", 1); break;
		case 'r': mpfs_strbuf_add(str, "\r", 1); break;
		case 't': mpfs_strbuf_add(str, "\t", 1); break;
		case 'u':
			if (hex4(p, &u))
				return -1;
			if (u >= 0xd800 && u <= 0xdbff) {
				if (!lit(p, "\\u") || hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return fail(p, "unpaired surrogate");
				u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return fail(p, "unpaired surrogate");
			}
			utf8(str, u);
			break;
		default:
			p->i -= 2; /* name the backslash */
			return fail(p, "bad escape");
		}
	}
	return fail(p, "unterminated string");
}

static bool fits(uint8_t tag, bool neg, int64_t i, uint64_t u)
{
	switch (tag) {
	case 0xcc: return !neg && u <= UINT8_MAX;
	case 0xcd: return !neg && u <= UINT16_MAX;
	case 0xce: return !neg && u <= UINT32_MAX;
	case 0xcf: return !neg;
	case 0xd0: return neg ? i >= INT8_MIN : u <= INT8_MAX;
	case 0xd1: return neg ? i >= INT16_MIN : u <= INT16_MAX;
	case 0xd2: return neg ? i >= INT32_MIN : u <= INT32_MAX;
	case 0xd3: return neg || u <= INT64_MAX;
	default: return false;
	}
}

static void pack_int(msgpack_packer *pk, uint8_t tag, bool neg, int64_t i, uint64_t u)
{
	if (!fits(tag, neg, i, u)) {
		if (neg)
			msgpack_pack_int64(pk, i);
		else
			msgpack_pack_uint64(pk, u);
		return;
	}
	switch (tag) {
	case 0xcc: msgpack_pack_fix_uint8(pk, (uint8_t)u); break;
	case 0xcd: msgpack_pack_fix_uint16(pk, (uint16_t)u); break;
	case 0xce: msgpack_pack_fix_uint32(pk, (uint32_t)u); break;
	case 0xcf: msgpack_pack_fix_uint64(pk, u); break;
	case 0xd0: msgpack_pack_fix_int8(pk, (int8_t)(neg ? i : (int64_t)u)); break;
	case 0xd1: msgpack_pack_fix_int16(pk, (int16_t)(neg ? i : (int64_t)u)); break;
	case 0xd2: msgpack_pack_fix_int32(pk, (int32_t)(neg ? i : (int64_t)u)); break;
	default: msgpack_pack_fix_int64(pk, neg ? i : (int64_t)u); break;
	}
}

static void pack_float(msgpack_packer *pk, const struct mpfs_val *old, double f)
{
	if (old && old->tag == 0xca && (isnan(f) || (double)(float)f == f))
		msgpack_pack_float(pk, (float)f);
	else
		msgpack_pack_double(pk, f);
}

static int number(struct jp *p, msgpack_packer *pk, const struct mpfs_val *old)
{
	size_t start = p->i;
	bool neg = false, integral = true;
	char buf[64];
	char *end;

	if (p->s[p->i] == '-')
		neg = true, p->i++;
	if (p->i < p->n && p->s[p->i] == 'I') {
		if (!lit(p, "Infinity"))
			return fail(p, "bad literal");
		pack_float(pk, old, neg ? -INFINITY : INFINITY);
		return 0;
	}
	if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
		return fail(p, "bad number");
	if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
		return fail(p, "leading zero");
	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
		p->i++;
	if (p->i < p->n && p->s[p->i] == '.') {
		integral = false, p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return fail(p, "bad fraction");
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		integral = false, p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return fail(p, "bad exponent");
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	/* The text is not NUL-terminated: parse a terminated copy. */
	size_t len = p->i - start;
	char *num = len < sizeof(buf) ? buf : malloc(len + 1);
	if (!num) {
		mpfs_error_set(p->err, MPFS_E_NOMEM, start, "out of memory");
		return -1;
	}
	memcpy(num, p->s + start, len);
	num[len] = '\0';
	if (integral && !(old && old->type == MPFS_FLOAT)) {
		errno = 0;
		if (neg) {
			long long i = strtoll(num, &end, 10);
			if (!errno) {
				pack_int(pk, old ? old->tag : 0, i < 0, i, (uint64_t)i);
				goto out;
			}
		} else {
			unsigned long long u = strtoull(num, &end, 10);
			if (!errno) {
				pack_int(pk, old ? old->tag : 0, false, (int64_t)u, u);
				goto out;
			}
		}
	}
	pack_float(pk, old, strtod(num, NULL)); /* beyond 64 bits: a double */
out:
	if (num != buf)
		free(num);
	return 0;
}

static int value(struct jp *p, msgpack_packer *pk, const struct mpfs_val *old, unsigned depth);

/* Arrays and objects: elements go to a side buffer until their count is known. */
static int container(struct jp *p, msgpack_packer *pk, unsigned depth)
{
	bool obj = p->s[p->i] == '{';
	char close = obj ? '}' : ']';
	struct mpfs_strbuf body, key;
	msgpack_packer bp;
	size_t count = 0;
	int rc = -1;

	if (depth >= MPFS_MAX_DEPTH)
		return fail(p, "nesting too deep");
	mpfs_strbuf_init(&body);
	mpfs_pack_init(&bp, &body);
	p->i++;
	ws(p);
	if (p->i < p->n && p->s[p->i] == close) {
		p->i++;
		goto done;
	}
	for (;;) {
		ws(p);
		if (obj) {
			if (p->i >= p->n || p->s[p->i] != '"') {
				fail(p, "object key must be a string");
				goto out;
			}
			mpfs_strbuf_init(&key);
			if (string(p, &key)) {
				mpfs_strbuf_destroy(&key);
				goto out;
			}
			mpfs_pack_str_like(&bp, p->doc, NULL, key.p ? key.p : "", key.len);
			mpfs_strbuf_destroy(&key);
			ws(p);
			if (p->i >= p->n || p->s[p->i] != ':') {
				fail(p, "':' expected");
				goto out;
			}
			p->i++;
		}
		if (value(p, &bp, NULL, depth + 1))
			goto out;
		count++;
		ws(p);
		if (p->i < p->n && p->s[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->i < p->n && p->s[p->i] == close) {
			p->i++;
			break;
		}
		fail(p, obj ? "',' or '}' expected" : "',' or ']' expected");
		goto out;
	}
done:
	if (obj)
		msgpack_pack_map(pk, count);
	else
		msgpack_pack_array(pk, count);
	((struct mpfs_strbuf *)pk->data)->oom |= body.oom;
	if (body.len)
		mpfs_strbuf_add(pk->data, body.p, body.len);
	rc = 0;
out:
	mpfs_strbuf_destroy(&body);
	return rc;
}

static int value(struct jp *p, msgpack_packer *pk, const struct mpfs_val *old, unsigned depth)
{
	struct mpfs_strbuf str;
	int rc;

	ws(p);
	if (p->i >= p->n)
		return fail(p, "value expected");
	switch (p->s[p->i]) {
	case '{':
	case '[': return container(p, pk, depth);
	case '"':
		mpfs_strbuf_init(&str);
		rc = string(p, &str);
		if (!rc) {
			bool like = old && (old->type == MPFS_STR || old->type == MPFS_BIN);
			mpfs_pack_str_like(pk, p->doc, like ? old : NULL, str.p ? str.p : "",
					   str.len);
		}
		mpfs_strbuf_destroy(&str);
		return rc;
	case 't':
		if (lit(p, "true"))
			return msgpack_pack_true(pk), 0;
		break;
	case 'f':
		if (lit(p, "false"))
			return msgpack_pack_false(pk), 0;
		break;
	case 'n':
		if (lit(p, "null"))
			return msgpack_pack_nil(pk), 0;
		break;
	case 'N':
		if (lit(p, "NaN"))
			return pack_float(pk, old, NAN), 0;
		break;
	default: return number(p, pk, old);
	}
	return fail(p, "unknown literal");
}

enum mpfs_codec_err mpfs_encode_json(const struct mpfs_doc *doc, const struct mpfs_val *old,
				     const char *text, size_t len, struct mpfs_strbuf *out,
				     struct mpfs_error *err)
{
	struct jp p = {.doc = doc, .s = text, .n = len, .err = err};
	size_t mark = out->len;
	msgpack_packer pk;

	mpfs_pack_init(&pk, out);
	if (value(&p, &pk, old, 0) == 0) {
		ws(&p);
		if (p.i == p.n)
			return out->oom ? mpfs_error_set(err, MPFS_E_NOMEM, 0, "out of memory")
					: MPFS_OK;
		fail(&p, "trailing text after the value");
	}
	if (err->code == MPFS_E_NOMEM) {
		out->len = mark;
		return err->code;
	}
	/* Not JSON: where a string was (or nothing yet), take the text itself. */
	if (!old || mpfs_val_text(doc, old)) {
		size_t a = 0, b = len;
		while (a < b && strchr(" \t\r\n", text[a]) && text[a])
			a++;
		while (b > a && strchr(" \t\r\n", text[b - 1]) && text[b - 1])
			b--;
		out->len = mark;
		mpfs_encode_bytes(doc, old ? old : &(struct mpfs_val){.type = MPFS_STR},
				  (const uint8_t *)text + a, b - a, out);
		return out->oom ? mpfs_error_set(err, MPFS_E_NOMEM, 0, "out of memory") : MPFS_OK;
	}
	out->len = mark;
	return err->code;
}
