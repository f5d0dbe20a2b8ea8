/* codec/decode.c: every MsgPack type and width from hand-written bytes, the
 * rejections (truncation, 0xc1, trailing bytes, depth, huge lengths) with
 * their offsets, every prefix of the real fixtures, and agreement with
 * msgpack-c's own unpacker on values its packer wrote.
 *
 * Linked with -Wl,--wrap=malloc,calloc,realloc (see tests/meson.build) so
 * that a test can see what the decoder allocates, and make it fail. */
#define TU_WRAP_ALLOCS
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <msgpack.h>

#include "codec/json.h"
#include "codec/value.h"
#include "testutil.h"

/* ---- decoding helpers ----------------------------------------------------- */

struct dc {
	uint8_t *buf; /* exactly n bytes on the heap */
	size_t n;
	struct mpfs_doc doc;
	struct mpfs_error err;
	enum mpfs_codec_err rc;
};

static void dc_bytes(struct dc *d, const void *p, size_t n)
{
	d->buf = tu_dup(p, n);
	d->n = n;
	d->rc = mpfs_doc_init(&d->doc, d->buf, n, &d->err);
}

static void dc_tb(struct dc *d, struct tb *b)
{
	dc_bytes(d, b->p, b->len);
	tb_free(b);
}

static void dc_hex(struct dc *d, const char *hex)
{
	struct tb b = {0};
	tb_hex(&b, hex);
	dc_tb(d, &b);
}

static void dc_free(struct dc *d)
{
	if (d->rc == MPFS_OK)
		mpfs_doc_destroy(&d->doc);
	free(d->buf);
	memset(d, 0, sizeof(*d));
}

static void expect_ok(struct dc *d, const char *what)
{
	cr_assert_eq(d->rc, MPFS_OK, "%s: expected success, got %s at %llu: %s", what,
		     mpfs_codec_strerror(d->rc), (unsigned long long)d->err.off, d->err.msg);
	cr_assert_eq(d->doc.buf, d->buf, "%s: doc.buf", what);
	cr_assert_eq(d->doc.size, d->n, "%s: doc.size", what);
	cr_assert_eq(d->doc.root.off, 0, "%s: root.off", what);
	cr_assert_eq(d->doc.root.end, d->n, "%s: root.end %llu != %zu", what,
		     (unsigned long long)d->doc.root.end, d->n);
	cr_assert_eq(d->doc.root.tag, d->buf[0], "%s: tag", what);
}

/* Decodes hex, which must be one value of type with hdr header bytes, and
 * returns the root (valid until dc_free). */
static const struct mpfs_val *ok_hex(struct dc *d, const char *hex, enum mpfs_type type,
				     unsigned hdr)
{
	dc_hex(d, hex);
	expect_ok(d, hex);
	cr_assert_eq(d->doc.root.type, type, "%s: type %d, expected %d", hex, d->doc.root.type,
		     type);
	cr_assert_eq(d->doc.root.hdr, hdr, "%s: hdr %u, expected %u", hex, d->doc.root.hdr, hdr);
	return &d->doc.root;
}

static void expect_err(struct dc *d, const char *what, enum mpfs_codec_err code, uint64_t off)
{
	cr_assert_eq(d->rc, code, "%s: expected %s, got %s (%s)", what, mpfs_codec_strerror(code),
		     mpfs_codec_strerror(d->rc), d->err.msg);
	cr_assert_eq(d->err.code, code, "%s: err.code", what);
	cr_assert_eq(d->err.off, off, "%s: error offset %llu, expected %llu (%s)", what,
		     (unsigned long long)d->err.off, (unsigned long long)off, d->err.msg);
	cr_assert(d->err.msg[0] != '\0', "%s: empty error message", what);
	cr_assert(strchr(d->err.msg, '\n') == NULL, "%s: message is not one line", what);
	/* Nothing to release on failure. */
	cr_assert_null(d->doc.arena, "%s: arena left behind", what);
	cr_assert_null(d->doc.buf, "%s: doc.buf set", what);
}

static void err_hex(const char *hex, enum mpfs_codec_err code, uint64_t off)
{
	struct dc d;
	dc_hex(&d, hex);
	expect_err(&d, hex, code, off);
	dc_free(&d);
}

static void check_payload(const struct dc *d, const struct mpfs_val *v, const void *data, size_t n)
{
	cr_assert_eq(v->len, n, "len %u, expected %zu", v->len, n);
	cr_assert_eq(v->end, v->off + v->hdr + n);
	cr_assert_eq(mpfs_val_data(&d->doc, v), d->buf + v->off + v->hdr);
	if (n)
		cr_assert(memcmp(mpfs_val_data(&d->doc, v), data, n) == 0, "payload differs");
}

/* ---- integers ------------------------------------------------------------- */

static void check_uint(const char *hex, uint64_t u, unsigned hdr)
{
	struct dc d;
	const struct mpfs_val *v = ok_hex(&d, hex, MPFS_UINT, hdr);
	cr_assert_eq(v->u, u, "%s: %llu, expected %llu", hex, (unsigned long long)v->u,
		     (unsigned long long)u);
	cr_assert_eq(v->end, hdr);
	dc_free(&d);
}

static void check_int(const char *hex, int64_t i, unsigned hdr)
{
	struct dc d;
	const struct mpfs_val *v = ok_hex(&d, hex, MPFS_INT, hdr);
	cr_assert_eq(v->i, i, "%s: %lld, expected %lld", hex, (long long)v->i, (long long)i);
	cr_assert_eq(v->end, hdr);
	dc_free(&d);
}

Test(codec_decode, positive_fixint)
{
	check_uint("00", 0, 1);
	check_uint("01", 1, 1);
	check_uint("7f", 127, 1);
}

Test(codec_decode, negative_fixint)
{
	check_int("ff", -1, 1);
	check_int("f0", -16, 1);
	check_int("e0", -32, 1);
}

Test(codec_decode, uint8_to_uint64)
{
	check_uint("cc 00", 0, 2);
	check_uint("cc 80", 128, 2);
	check_uint("cc ff", 255, 2);
	check_uint("cd 00 00", 0, 3);
	check_uint("cd 01 00", 256, 3);
	check_uint("cd ff ff", 65535, 3);
	check_uint("ce 00 01 00 00", 65536, 5);
	check_uint("ce ff ff ff ff", UINT32_MAX, 5);
	check_uint("cf 00 00 00 01 00 00 00 00", 4294967296ULL, 9);
	check_uint("cf 7f ff ff ff ff ff ff ff", INT64_MAX, 9);
	check_uint("cf 80 00 00 00 00 00 00 00", 9223372036854775808ULL, 9);
	check_uint("cf ff ff ff ff ff ff ff ff", UINT64_MAX, 9);
}

Test(codec_decode, int8_to_int64)
{
	check_int("d0 ff", -1, 2);
	check_int("d0 df", -33, 2);
	check_int("d0 80", INT8_MIN, 2);
	check_int("d1 ff 7f", -129, 3);
	check_int("d1 80 00", INT16_MIN, 3);
	check_int("d2 ff ff 7f ff", -32769, 5);
	check_int("d2 80 00 00 00", INT32_MIN, 5);
	check_int("d3 ff ff ff ff 00 00 00 00", -4294967296LL, 9);
	check_int("d3 80 00 00 00 00 00 00 01", -INT64_MAX, 9);
	check_int("d3 80 00 00 00 00 00 00 00", INT64_MIN, 9);
}

/* A signed encoding of a non-negative number is a UINT; the tag keeps the
 * width it was written with. */
Test(codec_decode, signed_encoding_of_non_negative_is_uint)
{
	struct dc d;
	check_uint("d0 00", 0, 2);
	check_uint("d0 7f", 127, 2);
	check_uint("d1 7f ff", 32767, 3);
	check_uint("d2 7f ff ff ff", INT32_MAX, 5);
	check_uint("d3 7f ff ff ff ff ff ff ff", INT64_MAX, 9);
	ok_hex(&d, "d1 00 05", MPFS_UINT, 3);
	cr_assert_eq(d.doc.root.tag, 0xd1);
	dc_free(&d);
}

/* ---- floats ----------------------------------------------------------------- */

static double check_float(const char *hex, unsigned hdr)
{
	struct dc d;
	const struct mpfs_val *v = ok_hex(&d, hex, MPFS_FLOAT, hdr);
	double f = v->f;
	cr_assert_eq(v->end, hdr);
	dc_free(&d);
	return f;
}

static uint64_t bits(double f)
{
	uint64_t x;
	memcpy(&x, &f, 8);
	return x;
}

Test(codec_decode, float32)
{
	cr_assert_eq(check_float("ca 3f 80 00 00", 5), 1.0);
	cr_assert_eq(check_float("ca bf 00 00 00", 5), -0.5);
	cr_assert_eq(check_float("ca 3d cc cc cd", 5), (double)0.1f);
	cr_assert_eq(check_float("ca 00 00 00 01", 5), 0x1p-149); /* smallest subnormal */
	cr_assert_eq(check_float("ca 7f 7f ff ff", 5), (double)FLT_MAX);
	cr_assert_eq(check_float("ca 4f 80 00 00", 5), 4294967296.0);
	cr_assert(isinf(check_float("ca 7f 80 00 00", 5)));
	cr_assert(check_float("ca ff 80 00 00", 5) < 0);
	cr_assert(isnan(check_float("ca 7f c0 00 00", 5)));
	double z = check_float("ca 80 00 00 00", 5);
	cr_assert(z == 0 && signbit(z), "-0.0f keeps its sign");
}

Test(codec_decode, float64)
{
	cr_assert_eq(check_float("cb 3f f0 00 00 00 00 00 00", 9), 1.0);
	cr_assert_eq(check_float("cb 3f b9 99 99 99 99 99 9a", 9), 0.1);
	cr_assert_eq(check_float("cb 00 00 00 00 00 00 00 01", 9), 5e-324);
	cr_assert_eq(check_float("cb 7f ef ff ff ff ff ff ff", 9), DBL_MAX);
	cr_assert_eq(check_float("cb c1 f0 00 00 00 00 00 00", 9), -4294967296.0);
	double z = check_float("cb 80 00 00 00 00 00 00 00", 9);
	cr_assert(z == 0 && signbit(z), "-0.0 keeps its sign");
	/* Every bit is kept, NaN payloads included. */
	cr_assert_eq(bits(check_float("cb 7f f8 00 00 00 00 00 01", 9)), 0x7ff8000000000001ULL);
	cr_assert_eq(bits(check_float("cb ff f0 00 00 00 00 00 00", 9)), 0xfff0000000000000ULL);
}

/* ---- nil, bool ----------------------------------------------------------- */

Test(codec_decode, nil_and_bool)
{
	struct dc d;
	ok_hex(&d, "c0", MPFS_NIL, 1);
	cr_assert_eq(d.doc.root.end, 1);
	dc_free(&d);
	cr_assert_eq(ok_hex(&d, "c2", MPFS_BOOL, 1)->b, false);
	dc_free(&d);
	cr_assert_eq(ok_hex(&d, "c3", MPFS_BOOL, 1)->b, true);
	dc_free(&d);
}

/* ---- strings (new str and old raw share tags), bin, ext ------------------- */

/* Decodes tag + header (hex) followed by n payload bytes of pattern. */
static void check_blob(const char *head, size_t n, enum mpfs_type type, unsigned hdr, int ext_type)
{
	struct tb b = {0};
	struct dc d;
	uint8_t *payload = malloc(n ? n : 1);

	for (size_t i = 0; i < n; i++)
		payload[i] = (uint8_t)('a' + i % 26);
	tb_hex(&b, head);
	tb_put(&b, payload, n);
	dc_tb(&d, &b);
	expect_ok(&d, head);
	cr_assert_eq(d.doc.root.type, type, "%s: type", head);
	cr_assert_eq(d.doc.root.hdr, hdr, "%s: hdr %u, expected %u", head, d.doc.root.hdr, hdr);
	check_payload(&d, &d.doc.root, payload, n);
	if (type == MPFS_STR)
		cr_assert_eq(d.doc.root.flags, 1, "%s: ASCII is UTF-8", head);
	if (type == MPFS_EXT)
		cr_assert_eq(d.doc.root.ext_type, ext_type, "%s: ext type", head);
	dc_free(&d);
	free(payload);
}

Test(codec_decode, fixstr)
{
	check_blob("a0", 0, MPFS_STR, 1, 0);
	check_blob("a1", 1, MPFS_STR, 1, 0);
	check_blob("a3", 3, MPFS_STR, 1, 0);
	check_blob("bf", 31, MPFS_STR, 1, 0);
}

Test(codec_decode, str8_str16_str32)
{
	check_blob("d9 00", 0, MPFS_STR, 2, 0);
	check_blob("d9 03", 3, MPFS_STR, 2, 0);
	check_blob("d9 ff", 255, MPFS_STR, 2, 0);
	check_blob("da 00 00", 0, MPFS_STR, 3, 0);
	check_blob("da 00 03", 3, MPFS_STR, 3, 0);
	check_blob("da 01 00", 256, MPFS_STR, 3, 0);
	check_blob("da ff ff", 65535, MPFS_STR, 3, 0);
	check_blob("db 00 00 00 00", 0, MPFS_STR, 5, 0);
	check_blob("db 00 00 00 03", 3, MPFS_STR, 5, 0);
	check_blob("db 00 01 00 00", 65536, MPFS_STR, 5, 0);
}

/* The old spec's raw: fixraw (a0-bf), raw16 (da), raw32 (db), with bytes
 * that need not be text. A raw that is not UTF-8 has flags 0. */
Test(codec_decode, old_raw_fixraw_raw16_raw32)
{
	static const char *const raws[] = {"a3 ff 00 fe", "da 00 03 ff 00 fe",
					   "db 00 00 00 03 ff 00 fe"};
	static const unsigned hdrs[] = {1, 3, 5};
	for (int i = 0; i < 3; i++) {
		struct dc d;
		const struct mpfs_val *v = ok_hex(&d, raws[i], MPFS_STR, hdrs[i]);
		check_payload(&d, v, "\xff\x00\xfe", 3);
		cr_assert_eq(v->flags, 0, "%s: not UTF-8", raws[i]);
		cr_assert_not(mpfs_val_text(&d.doc, v));
		dc_free(&d);
	}
}

Test(codec_decode, str_utf8_flag)
{
	static const struct {
		const char *hex;
		bool utf8;
	} cases[] = {
		{"a0", true},
		{"a1 00", true},	   /* NUL is a character */
		{"a2 c3 a9", true},	   /* é */
		{"a3 e2 9d a4", true},	   /* U+2764 */
		{"a4 f0 9f 8d ba", true},  /* U+1F37A */
		{"a4 f4 8f bf bf", true},  /* U+10FFFF */
		{"a1 80", false},	   /* lone continuation byte */
		{"a2 c0 80", false},	   /* overlong NUL */
		{"a3 e0 80 80", false},	   /* overlong */
		{"a3 ed a0 80", false},	   /* surrogate U+D800 */
		{"a4 f4 90 80 80", false}, /* above U+10FFFF */
		{"a2 e2 82", false},	   /* cut sequence */
		{"a1 ff", false},
		{"d9 03 61 62 ff", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dc d;
		dc_hex(&d, cases[i].hex);
		expect_ok(&d, cases[i].hex);
		cr_assert_eq(d.doc.root.type, MPFS_STR);
		cr_assert_eq(!!d.doc.root.flags, cases[i].utf8, "%s: UTF-8 flag", cases[i].hex);
		cr_assert_eq(mpfs_val_text(&d.doc, &d.doc.root), cases[i].utf8);
		dc_free(&d);
	}
}

Test(codec_decode, bin8_bin16_bin32)
{
	check_blob("c4 00", 0, MPFS_BIN, 2, 0);
	check_blob("c4 02", 2, MPFS_BIN, 2, 0);
	check_blob("c4 ff", 255, MPFS_BIN, 2, 0);
	check_blob("c5 00 00", 0, MPFS_BIN, 3, 0);
	check_blob("c5 00 02", 2, MPFS_BIN, 3, 0);
	check_blob("c5 01 2c", 300, MPFS_BIN, 3, 0);
	check_blob("c6 00 00 00 00", 0, MPFS_BIN, 5, 0);
	check_blob("c6 00 00 00 02", 2, MPFS_BIN, 5, 0);
	check_blob("c6 00 01 00 00", 65536, MPFS_BIN, 5, 0);

	/* A bin is text when its bytes are UTF-8. */
	struct dc d;
	const struct mpfs_val *v = ok_hex(&d, "c4 02 00 ff", MPFS_BIN, 2);
	check_payload(&d, v, "\x00\xff", 2);
	cr_assert_not(mpfs_val_text(&d.doc, v));
	dc_free(&d);
	v = ok_hex(&d, "c4 03 61 62 63", MPFS_BIN, 2);
	cr_assert(mpfs_val_text(&d.doc, v));
	cr_assert(mpfs_val_is(&d.doc, v, "abc"));
	dc_free(&d);
}

Test(codec_decode, fixext1_to_fixext16)
{
	check_blob("d4 01", 1, MPFS_EXT, 2, 1);
	check_blob("d5 02", 2, MPFS_EXT, 2, 2);
	check_blob("d6 03", 4, MPFS_EXT, 2, 3);
	check_blob("d7 04", 8, MPFS_EXT, 2, 4);
	check_blob("d8 05", 16, MPFS_EXT, 2, 5);
	check_blob("d6 ff", 4, MPFS_EXT, 2, -1); /* timestamp 32 */
	check_blob("d7 ff", 8, MPFS_EXT, 2, -1); /* timestamp 64 */
	check_blob("d4 80", 1, MPFS_EXT, 2, -128);
	check_blob("d4 7f", 1, MPFS_EXT, 2, 127);
}

Test(codec_decode, ext8_ext16_ext32)
{
	check_blob("c7 00 06", 0, MPFS_EXT, 3, 6);
	check_blob("c7 03 07", 3, MPFS_EXT, 3, 7);
	check_blob("c7 0c ff", 12, MPFS_EXT, 3, -1); /* timestamp 96 */
	check_blob("c7 ff 01", 255, MPFS_EXT, 3, 1);
	check_blob("c8 00 00 06", 0, MPFS_EXT, 4, 6);
	check_blob("c8 00 03 07", 3, MPFS_EXT, 4, 7);
	check_blob("c8 01 00 fe", 256, MPFS_EXT, 4, -2);
	check_blob("c9 00 00 00 00 06", 0, MPFS_EXT, 6, 6);
	check_blob("c9 00 00 00 03 07", 3, MPFS_EXT, 6, 7);
	check_blob("c9 00 01 00 00 09", 65536, MPFS_EXT, 6, 9);
}

/* ---- arrays and maps ------------------------------------------------------- */

/* Checks leaf array v's elements against the tags and end offsets given. */
static void check_leaf(const struct dc *d, const struct mpfs_val *v, const uint8_t *tags,
		       const uint64_t *ends)
{
	uint64_t off = v->off + v->hdr;
	cr_assert_null(v->items, "a leaf array is not materialised");
	for (uint32_t i = 0; i < v->len; i++) {
		struct mpfs_val e;
		uint64_t next = mpfs_scalar_at(d->buf, off, &e);
		cr_assert_eq(e.off, off, "element %u off", i);
		cr_assert_eq(e.tag, tags[i], "element %u tag", i);
		cr_assert_eq(e.end, ends[i], "element %u end", i);
		cr_assert_eq(next, e.end);
		off = next;
	}
	cr_assert_eq(off, v->end);
}

Test(codec_decode, fixarray)
{
	struct dc d;
	const struct mpfs_val *v = ok_hex(&d, "90", MPFS_ARRAY, 1);
	cr_assert_eq(v->len, 0);
	cr_assert_eq(v->end, 1);
	cr_assert_eq(v->flags, 0);
	dc_free(&d);

	v = ok_hex(&d, "93 01 cd 01 00 a1 61", MPFS_ARRAY, 1);
	cr_assert_eq(v->len, 3);
	check_leaf(&d, v, (const uint8_t[]){0x01, 0xcd, 0xa1}, (const uint64_t[]){2, 5, 7});
	cr_assert_eq(v->flags, MPFS_EL_INT | MPFS_EL_OTHER);
	struct mpfs_val e;
	mpfs_scalar_at(d.buf, 2, &e);
	cr_assert_eq(e.type, MPFS_UINT);
	cr_assert_eq(e.u, 256);
	mpfs_scalar_at(d.buf, 5, &e);
	cr_assert_eq(e.type, MPFS_STR);
	cr_assert_eq(e.len, 1);
	cr_assert_eq(e.hdr, 1);
	dc_free(&d);

	/* 15 elements: the largest fixarray. */
	v = ok_hex(&d, "9f 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f", MPFS_ARRAY, 1);
	cr_assert_eq(v->len, 15);
	cr_assert_eq(v->end, 16);
	dc_free(&d);
}

Test(codec_decode, array16_array32)
{
	struct dc d;
	const struct mpfs_val *v = ok_hex(&d, "dc 00 00", MPFS_ARRAY, 3);
	cr_assert_eq(v->len, 0);
	dc_free(&d);
	v = ok_hex(&d, "dc 00 02 c0 c3", MPFS_ARRAY, 3);
	cr_assert_eq(v->len, 2);
	check_leaf(&d, v, (const uint8_t[]){0xc0, 0xc3}, (const uint64_t[]){4, 5});
	cr_assert_eq(v->flags, MPFS_EL_OTHER | MPFS_EL_BOOL);
	dc_free(&d);
	v = ok_hex(&d, "dd 00 00 00 00", MPFS_ARRAY, 5);
	cr_assert_eq(v->len, 0);
	dc_free(&d);
	v = ok_hex(&d, "dd 00 00 00 02 ca 3f 80 00 00 cb 3f f0 00 00 00 00 00 00", MPFS_ARRAY, 5);
	cr_assert_eq(v->len, 2);
	check_leaf(&d, v, (const uint8_t[]){0xca, 0xcb}, (const uint64_t[]){10, 19});
	cr_assert_eq(v->flags, MPFS_EL_F32 | MPFS_EL_F64);
	dc_free(&d);

	/* 65536 elements in an array32. */
	struct tb b = {0};
	tb_hex(&b, "dd 00 01 00 00");
	for (int i = 0; i < 65536; i++)
		tb_byte(&b, 0x07);
	dc_tb(&d, &b);
	expect_ok(&d, "array32 of 65536");
	cr_assert_eq(d.doc.root.len, 65536);
	cr_assert_eq(d.doc.root.hdr, 5);
	dc_free(&d);
}

Test(codec_decode, arrays_holding_containers_are_materialised)
{
	struct dc d;
	/* [[1], {}, [2, [3]]] */
	const struct mpfs_val *v = ok_hex(&d, "93 91 01 80 92 02 91 03", MPFS_ARRAY, 1);
	cr_assert_not_null(v->items);
	cr_assert_eq(v->len, 3);
	const struct mpfs_val *a = &v->items[0], *m = &v->items[1], *c = &v->items[2];
	cr_assert_eq(a->type, MPFS_ARRAY);
	cr_assert_eq(a->off, 1);
	cr_assert_eq(a->end, 3);
	cr_assert_null(a->items);
	cr_assert_eq(m->type, MPFS_MAP);
	cr_assert_eq(m->off, 3);
	cr_assert_eq(m->end, 4);
	cr_assert_eq(m->len, 0);
	cr_assert_eq(c->type, MPFS_ARRAY);
	cr_assert_eq(c->off, 4);
	cr_assert_eq(c->end, 8);
	cr_assert_not_null(c->items);
	cr_assert_eq(c->items[0].type, MPFS_UINT);
	cr_assert_eq(c->items[0].u, 2);
	cr_assert_eq(c->items[0].off, 5);
	cr_assert_eq(c->items[1].type, MPFS_ARRAY);
	cr_assert_eq(c->items[1].off, 6);
	cr_assert_eq(c->items[1].end, 8);
	cr_assert_eq(v->flags & (MPFS_EL_LIST | MPFS_EL_MAP | MPFS_EL_INT),
		     MPFS_EL_LIST | MPFS_EL_MAP | MPFS_EL_INT);
	dc_free(&d);
}

Test(codec_decode, element_flags)
{
	static const struct {
		const char *hex;
		uint16_t flags;
	} cases[] = {
		{"91 c3", MPFS_EL_BOOL},
		{"91 00", MPFS_EL_INT},
		{"91 d0 05", MPFS_EL_INT},
		{"91 ff", MPFS_EL_INT | MPFS_EL_NEG},
		{"91 d3 80 00 00 00 00 00 00 00", MPFS_EL_INT | MPFS_EL_NEG},
		{"91 cf 7f ff ff ff ff ff ff ff", MPFS_EL_INT},
		{"91 cf 80 00 00 00 00 00 00 00", MPFS_EL_BIGU},
		{"91 ca 3f 80 00 00", MPFS_EL_F32},
		{"91 cb 3f f0 00 00 00 00 00 00", MPFS_EL_F64},
		{"91 c0", MPFS_EL_OTHER},
		{"91 a1 61", MPFS_EL_OTHER},
		{"91 a1 ff", MPFS_EL_RAW},
		{"91 c4 01 61", MPFS_EL_RAW},
		{"91 d4 01 00", MPFS_EL_RAW},
		{"91 80", MPFS_EL_MAP},
		{"91 91 01", MPFS_EL_LIST | MPFS_EL_INT},
		{"92 91 c3 91 ff", MPFS_EL_LIST | MPFS_EL_BOOL | MPFS_EL_INT | MPFS_EL_NEG},
		{"91 91 81 a1 61 01", MPFS_EL_LIST | MPFS_EL_MAP | MPFS_EL_OTHER | MPFS_EL_INT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dc d;
		ok_hex(&d, cases[i].hex, MPFS_ARRAY, 1);
		cr_assert_eq(d.doc.root.flags, cases[i].flags, "%s: flags %#x, expected %#x",
			     cases[i].hex, d.doc.root.flags, cases[i].flags);
		dc_free(&d);
	}
}

Test(codec_decode, fixmap_map16_map32)
{
	static const struct {
		const char *hex;
		unsigned hdr;
	} cases[] = {{"81 a1 61 01", 1}, {"de 00 01 a1 61 01", 3}, {"df 00 00 00 01 a1 61 01", 5}};
	for (int i = 0; i < 3; i++) {
		struct dc d;
		const struct mpfs_val *v = ok_hex(&d, cases[i].hex, MPFS_MAP, cases[i].hdr);
		unsigned h = cases[i].hdr;
		cr_assert_eq(v->len, 1);
		cr_assert_not_null(v->items);
		cr_assert_eq(v->items[0].type, MPFS_STR);
		cr_assert_eq(v->items[0].off, h);
		cr_assert_eq(v->items[0].end, h + 2);
		cr_assert_eq(v->items[1].type, MPFS_UINT);
		cr_assert_eq(v->items[1].u, 1);
		cr_assert_eq(v->items[1].off, h + 2);
		cr_assert_eq(v->items[1].end, h + 3);
		cr_assert(mpfs_val_is(&d.doc, &v->items[0], "a"));
		cr_assert_eq(mpfs_map_get(&d.doc, v, "a"), &v->items[1]);
		cr_assert_null(mpfs_map_get(&d.doc, v, "b"));
		cr_assert_null(mpfs_map_get(&d.doc, v, ""));
		dc_free(&d);
	}
	struct dc d;
	const struct mpfs_val *v = ok_hex(&d, "80", MPFS_MAP, 1);
	cr_assert_eq(v->len, 0);
	cr_assert_null(mpfs_map_get(&d.doc, v, "a"));
	dc_free(&d);
	v = ok_hex(&d, "de 00 00", MPFS_MAP, 3);
	cr_assert_eq(v->len, 0);
	dc_free(&d);
	v = ok_hex(&d, "df 00 00 00 00", MPFS_MAP, 5);
	cr_assert_eq(v->len, 0);
	dc_free(&d);
}

Test(codec_decode, map_keys_of_any_type)
{
	struct dc d;
	/* {1: "x", bin "ab": 2, -1: nil, "ab": 3} */
	const struct mpfs_val *v =
		ok_hex(&d, "84 01 a1 78 c4 02 61 62 02 ff c0 a2 61 62 03", MPFS_MAP, 1);
	cr_assert_eq(v->items[0].type, MPFS_UINT);
	cr_assert_eq(v->items[2].type, MPFS_BIN);
	cr_assert_eq(v->items[4].type, MPFS_INT);
	/* mpfs_map_get matches str and bin keys alike; the first one wins. */
	const struct mpfs_val *ab = mpfs_map_get(&d.doc, v, "ab");
	cr_assert_eq(ab, &v->items[3]);
	cr_assert_eq(ab->u, 2);
	cr_assert_null(mpfs_map_get(&d.doc, v, "1"), "an integer key is not a string");
	cr_assert_null(mpfs_map_get(&d.doc, &v->items[1], "x"), "not a map");
	dc_free(&d);
}

Test(codec_decode, scalar_at_walks_a_leaf_array)
{
	struct dc d;
	struct tb b = {0};
	/* Every scalar kind that stays in a leaf array. */
	const char *elems = "00 ff cc 80 cd 01 00 ce 00 01 00 00 cf 00 00 00 01 00 00 00 00 "
			    "d0 80 d1 80 00 d2 80 00 00 00 d3 80 00 00 00 00 00 00 00 "
			    "ca 3f 80 00 00 cb 3f f0 00 00 00 00 00 00 c0 c2 c3 "
			    "a1 61 d9 01 61 da 00 01 61 db 00 00 00 01 61";
	const uint8_t types[] = {MPFS_UINT,  MPFS_INT,	 MPFS_UINT, MPFS_UINT, MPFS_UINT,
				 MPFS_UINT,  MPFS_INT,	 MPFS_INT,  MPFS_INT,  MPFS_INT,
				 MPFS_FLOAT, MPFS_FLOAT, MPFS_NIL,  MPFS_BOOL, MPFS_BOOL,
				 MPFS_STR,   MPFS_STR,	 MPFS_STR,  MPFS_STR};
	const uint32_t n = sizeof(types);

	tb_arr(&b, n);
	tb_hex(&b, elems);
	dc_tb(&d, &b);
	expect_ok(&d, "all scalars");
	cr_assert_eq(d.doc.root.len, n);
	cr_assert_null(d.doc.root.items, "a list of scalars is a leaf");
	uint64_t off = d.doc.root.off + d.doc.root.hdr;
	for (uint32_t i = 0; i < n; i++) {
		struct mpfs_val e;
		off = mpfs_scalar_at(d.buf, off, &e);
		cr_assert_eq(e.type, types[i], "element %u: type %d, expected %d", i, e.type,
			     types[i]);
		if (e.type == MPFS_STR)
			cr_assert_eq(e.len, 1, "element %u len", i);
	}
	cr_assert_eq(off, d.n);
	dc_free(&d);
}

/* A list holding what is shown as a file of its own (bin, ext, a str that
 * is not UTF-8) is materialised, like one holding containers. */
Test(codec_decode, lists_holding_raw_values_are_materialised)
{
	static const char *const cases[] = {
		"92 c4 01 00 01",
		"92 01 d4 01 00",
		"92 a1 ff 01",
		"91 c7 00 05",
		"93 01 02 c6 00 00 00 02 61 62",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dc d;
		const struct mpfs_val *v = ok_hex(&d, cases[i], MPFS_ARRAY, 1);
		cr_assert_not_null(v->items, "%s", cases[i]);
		cr_assert(v->flags & MPFS_EL_RAW, "%s", cases[i]);
		cr_assert_eq(v->items[v->len - 1].end, d.n);
		dc_free(&d);
	}
}

/* ---- rejections ------------------------------------------------------------- */

Test(codec_decode, rejects_empty_input)
{
	struct dc d;
	dc_bytes(&d, "", 0);
	expect_err(&d, "empty", MPFS_E_EMPTY, 0);
	dc_free(&d);
}

Test(codec_decode, rejects_truncated_scalars)
{
	static const char *const cases[] = {
		"cc",
		"cd 00",
		"ce 00 00 00",
		"cf 00 00 00 00 00 00 00",
		"d0",
		"d1 ff",
		"d2 ff ff",
		"d3 ff ff ff ff ff ff ff",
		"ca",
		"ca 3f 80 00",
		"cb 3f f0 00 00 00 00 00",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		err_hex(cases[i], MPFS_E_TRUNCATED, 0);
}

Test(codec_decode, rejects_truncated_str)
{
	static const char *const cases[] = {
		"a1",
		"a3 61 62",
		"bf",
		"d9",
		"d9 01",
		"d9 20 61",
		"da",
		"da 00",
		"da 00 01",
		"db",
		"db 00 00 00",
		"db 00 00 00 01",
		"db 00 00 01 00 61",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		err_hex(cases[i], MPFS_E_TRUNCATED, 0);
}

Test(codec_decode, rejects_truncated_bin_and_ext)
{
	static const char *const cases[] = {
		"c4",	    "c4 01",	   "c4 02 00",	     "c5 00",
		"c5 00 01", "c6 00 00 00", "c6 00 00 00 01", "d4",
		"d4 01",    "d5 01 00",	   "d6 01 00 00 00", "d7 01 00",
		"d8 01",    "c7",	   "c7 01",	     "c7 01 01",
		"c8 00 01", "c8 00 01 01", "c9 00 00 00 01", "c9 00 00 00 01 01",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		err_hex(cases[i], MPFS_E_TRUNCATED, 0);
}

Test(codec_decode, rejects_truncated_containers)
{
	static const char *const at0[] = {
		"91",	       "92 01",
		"9f",	       "dc",
		"dc 00",       "dc 00 01",
		"dd 00 00 00", "dd 00 00 00 01",
		"81",	       "81 01",
		"82 01 02 03", "de 00",
		"de 00 01 01", "df 00 00 00 01 a1",
	};
	for (size_t i = 0; i < sizeof(at0) / sizeof(at0[0]); i++)
		err_hex(at0[i], MPFS_E_TRUNCATED, 0);

	/* The offset is that of the value that does not fit. */
	err_hex("92 01 cd 00", MPFS_E_TRUNCATED, 2);
	err_hex("92 91 01 cd 00", MPFS_E_TRUNCATED, 3);
	err_hex("81 a1 61 92 01", MPFS_E_TRUNCATED, 3);
	err_hex("82 a1 61 01 a3 62 63", MPFS_E_TRUNCATED, 4);
	err_hex("93 01 02 d9 05 61 62", MPFS_E_TRUNCATED, 3);
	/* A map whose last value is missing: the error points at its place. */
	err_hex("81 a1 61", MPFS_E_TRUNCATED, 3);
}

Test(codec_decode, rejects_reserved_c1)
{
	err_hex("c1", MPFS_E_RESERVED, 0);
	err_hex("91 c1", MPFS_E_RESERVED, 1);
	err_hex("92 01 c1", MPFS_E_RESERVED, 2);
	err_hex("92 91 01 c1", MPFS_E_RESERVED, 3);
	err_hex("81 c1 01", MPFS_E_RESERVED, 1);
	err_hex("81 a1 61 c1", MPFS_E_RESERVED, 3);
	err_hex("82 a1 61 80 a1 62 91 c1", MPFS_E_RESERVED, 7);
}

Test(codec_decode, rejects_trailing_bytes)
{
	err_hex("00 00", MPFS_E_TRAILING, 1);
	err_hex("c0 c1", MPFS_E_TRAILING, 1); /* what follows is not even read */
	err_hex("90 00", MPFS_E_TRAILING, 1);
	err_hex("a1 61 00 00 00", MPFS_E_TRAILING, 2);
	err_hex("81 a1 61 01 ff", MPFS_E_TRAILING, 4);
	err_hex("cb 3f f0 00 00 00 00 00 00 00", MPFS_E_TRAILING, 9);
	struct dc d;
	dc_hex(&d, "80 80 80");
	expect_err(&d, "80 80 80", MPFS_E_TRAILING, 1);
	cr_assert(strstr(d.err.msg, "2") != NULL, "message names the count: %s", d.err.msg);
	dc_free(&d);
}

/* n nested containers (each one element: the next), innermost holding leaf. */
static void nested(struct tb *b, unsigned n, bool maps, const char *leaf)
{
	for (unsigned i = 0; i < n; i++) {
		if (maps)
			tb_hex(b, "81 00");
		else
			tb_hex(b, "91");
	}
	tb_hex(b, leaf);
}

Test(codec_decode, depth_limit)
{
	struct dc d;
	struct tb b = {0};

	/* MPFS_MAX_DEPTH containers are fine, whatever the innermost holds. */
	nested(&b, MPFS_MAX_DEPTH - 1, false, "90");
	dc_tb(&d, &b);
	expect_ok(&d, "128 arrays");
	dc_free(&d);
	nested(&b, MPFS_MAX_DEPTH, false, "01");
	dc_tb(&d, &b);
	expect_ok(&d, "128 arrays around a scalar");
	dc_free(&d);
	nested(&b, MPFS_MAX_DEPTH - 1, true, "80");
	dc_tb(&d, &b);
	expect_ok(&d, "128 maps");
	dc_free(&d);

	/* One more is refused at the offset of the container too deep. */
	nested(&b, MPFS_MAX_DEPTH, false, "90");
	dc_tb(&d, &b);
	expect_err(&d, "129 arrays", MPFS_E_DEPTH, MPFS_MAX_DEPTH);
	dc_free(&d);
	nested(&b, MPFS_MAX_DEPTH, true, "80");
	dc_tb(&d, &b);
	expect_err(&d, "129 maps", MPFS_E_DEPTH, 2 * MPFS_MAX_DEPTH);
	dc_free(&d);
	nested(&b, MPFS_MAX_DEPTH + 1, false, "01");
	dc_tb(&d, &b);
	expect_err(&d, "129 arrays around a scalar", MPFS_E_DEPTH, MPFS_MAX_DEPTH);
	dc_free(&d);

	/* Far deeper input costs nothing but the refusal. */
	nested(&b, 100000, false, "90");
	dc_tb(&d, &b);
	expect_err(&d, "100000 arrays", MPFS_E_DEPTH, MPFS_MAX_DEPTH);
	dc_free(&d);
}

/* A declared length far beyond the input fails at once, without
 * allocating anything in proportion to it. */
Test(codec_decode, rejects_huge_declared_lengths_without_allocating, .timeout = 20)
{
	static const struct {
		const char *hex;
		uint64_t off;
	} cases[] = {
		{"dd ff ff ff ff 01", 0},
		{"dd ff ff ff ff", 0},
		{"dc ff ff 01", 0},
		{"df ff ff ff ff", 0},
		{"df 7f ff ff ff 01 02", 0},
		{"de ff ff 01 02", 0},
		{"db ff ff ff ff 61", 0},
		{"c6 ff ff ff ff 00", 0},
		{"c9 ff ff ff ff 01 00", 0},
		{"c8 ff ff 01 00", 0},
		{"91 dd ff ff ff ff 01", 1},
		{"92 91 01 dd ff ff ff ff 01", 3},
		{"81 a1 61 dd ff ff ff ff 01", 3},
		{"81 a1 61 df ff ff ff ff 01 02", 3},
		{"81 a7 77 65 69 67 68 74 73 81 a1 77 dd ff ff ff ff 01", 12},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dc d;
		struct tb b = {0};
		tb_hex(&b, cases[i].hex);
		size_t n = b.len;
		uint8_t *buf = tu_dup(b.p, n);
		tb_free(&b);
		for (int rep = 0; rep < 1000; rep++) {
			tu_track_allocs();
			d.rc = mpfs_doc_init(&d.doc, buf, n, &d.err);
			tu_allocs.on = false;
			expect_err(&d, cases[i].hex, MPFS_E_TRUNCATED, cases[i].off);
			cr_assert_lt(tu_allocs.total, 1 << 20, "%s: %zu bytes allocated",
				     cases[i].hex, tu_allocs.total);
		}
		free(buf);
	}
}

/* Decodes b (freed) while counting what mpfs_doc_init allocates. */
static void dc_tracked(struct dc *d, struct tb *b)
{
	d->buf = tu_dup(b->p, b->len);
	d->n = b->len;
	tb_free(b);
	tu_track_allocs();
	d->rc = mpfs_doc_init(&d->doc, d->buf, d->n, &d->err);
	tu_allocs.on = false;
}

/* What the decoder allocates is bounded by the bytes it was given. */
Test(codec_decode, memory_is_bounded_by_input)
{
	struct dc d;
	struct tb b = {0};

	/* 100000 empty maps in one array: every element is materialised. */
	tb_hex(&b, "dd 00 01 86 a0");
	for (int i = 0; i < 100000; i++)
		tb_byte(&b, 0x80);
	dc_tracked(&d, &b);
	expect_ok(&d, "100000 maps");
	cr_assert_lt(tu_allocs.total, 64 * d.n + (1 << 20), "%zu bytes allocated for %zu of input",
		     tu_allocs.total, d.n);
	dc_free(&d);

	/* Nested lists of scalars (seed-style weights) are not materialised:
	 * one value per row at most. */
	tb_hex(&b, "dc 01 00");
	for (int i = 0; i < 256; i++) {
		tb_hex(&b, "dc 01 00");
		for (int j = 0; j < 256; j++)
			tb_f64(&b, i * 256 + j);
	}
	dc_tracked(&d, &b);
	expect_ok(&d, "256x256 floats");
	cr_assert_lt(tu_allocs.total, 256 * sizeof(struct mpfs_val) + (1 << 18),
		     "%zu bytes allocated for %zu of input", tu_allocs.total, d.n);
	dc_free(&d);
}

Test(codec_decode, error_names_and_strerror)
{
	for (int c = MPFS_OK; c <= MPFS_E_DTYPE; c++) {
		const char *s = mpfs_codec_strerror((enum mpfs_codec_err)c);
		cr_assert(s && *s && strcmp(s, "unknown error"), "strerror(%d)", c);
	}
	struct mpfs_error err;
	cr_assert_eq(mpfs_error_set(&err, MPFS_E_ARRAY, 42, "x=%d", 7), MPFS_E_ARRAY);
	cr_assert_eq(err.code, MPFS_E_ARRAY);
	cr_assert_eq(err.off, 42);
	cr_assert_str_eq(err.msg, "x=7");
	/* Long messages are cut, never overflow. */
	char big[400];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mpfs_error_set(&err, MPFS_E_ARRAY, 0, "%s", big);
	cr_assert_eq(strlen(err.msg), sizeof(err.msg) - 1);
}

/* ---- real archives --------------------------------------------------------- */

Test(codec_decode, fixtures_decode)
{
	for (size_t i = 0; i < TU_NGOOD; i++) {
		struct dc d;
		size_t n;
		uint8_t *p = tu_fixture(tu_good_fixtures[i], &n);
		dc_bytes(&d, p, n);
		free(p);
		expect_ok(&d, tu_good_fixtures[i]);
		cr_assert_eq(d.doc.root.type, MPFS_MAP, "%s", tu_good_fixtures[i]);
		dc_free(&d);
	}
}

/* Every proper prefix of every real archive is refused as truncated (the
 * empty one as empty), with an offset inside it, and never crashes: each
 * prefix is its own heap block, so reading past it is caught by ASan. */
Test(codec_decode, every_prefix_of_fixtures_is_truncated, .timeout = 60)
{
	for (size_t i = 0; i < TU_NGOOD; i++) {
		size_t n;
		uint8_t *p = tu_fixture(tu_good_fixtures[i], &n);
		for (size_t k = 0; k < n; k++) {
			struct dc d;
			char what[64];
			dc_bytes(&d, p, k);
			snprintf(what, sizeof(what), "%s[0..%zu)", tu_good_fixtures[i], k);
			cr_assert_eq(d.rc, k ? MPFS_E_TRUNCATED : MPFS_E_EMPTY, "%s: %s", what,
				     mpfs_codec_strerror(d.rc));
			cr_assert_leq(d.err.off, k, "%s: offset %llu", what,
				      (unsigned long long)d.err.off);
			cr_assert(d.err.msg[0], "%s: no message", what);
			cr_assert_null(d.doc.arena);
			dc_free(&d);
		}
		free(p);
	}
}

Test(codec_decode, bad_fixtures_that_are_bad_msgpack)
{
	static const struct {
		const char *name;
		enum mpfs_codec_err code;
		uint64_t off;
	} cases[] = {
		{"bad_empty.mpk", MPFS_E_EMPTY, 0},
		{"bad_huge_array_len.mpk", MPFS_E_TRUNCATED, 12},
		{"bad_huge_map_len.mpk", MPFS_E_TRUNCATED, 0},
		{"bad_huge_str_len.mpk", MPFS_E_TRUNCATED, 3},
		{"bad_reserved_c1.mpk", MPFS_E_RESERVED, 3},
		{"bad_deep_nesting.mpk", MPFS_E_DEPTH, MPFS_MAX_DEPTH},
		{"bad_trailing_bytes.mpk", MPFS_E_TRAILING, 5581},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dc d;
		struct tb b = {0};
		size_t n;
		uint8_t *p = tu_fixture(cases[i].name, &n);
		tb_put(&b, p, n);
		free(p);
		dc_tracked(&d, &b);
		expect_err(&d, cases[i].name, cases[i].code, cases[i].off);
		cr_assert_lt(tu_allocs.total, 64 * n + (1 << 20), "%s: %zu bytes allocated",
			     cases[i].name, tu_allocs.total);
		dc_free(&d);
	}
	/* The truncated archive fails somewhere inside. */
	struct dc d;
	size_t n;
	uint8_t *p = tu_fixture("bad_truncated.mpk", &n);
	dc_bytes(&d, p, n);
	free(p);
	cr_assert_eq(d.rc, MPFS_E_TRUNCATED);
	cr_assert_lt(d.err.off, n);
	dc_free(&d);
}

/* Each allocation of mpfs_doc_init fails in turn: the call then fails with
 * MPFS_E_NOMEM and frees what it had (LeakSanitizer checks), until every
 * allocation succeeds. Rendering into a strbuf runs out of memory as a
 * sticky flag. (mpfs_model_init: see test_model.c.) */
Test(codec_decode, out_of_memory_at_every_allocation, .timeout = 60)
{
	static const char *const names[] = {"edge_values.mpk", "mlp_seed.mpk", "tfidf_compact.mpk"};
	for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
		size_t n;
		uint8_t *p = tu_fixture(names[f], &n);
		for (size_t k = 1;; k++) {
			struct mpfs_doc doc;
			struct mpfs_error err;
			enum mpfs_codec_err rc;

			cr_assert_lt(k, 100000, "%s: never succeeds", names[f]);
			tu_track_allocs();
			tu_allocs.fail_at = k;
			rc = mpfs_doc_init(&doc, p, n, &err);
			tu_allocs.on = false;
			if (rc == MPFS_OK) {
				cr_assert_lt(tu_allocs.calls, k, "%s: allocation %zu failed unseen",
					     names[f], k);
				mpfs_doc_destroy(&doc);
				break;
			}
			cr_assert_eq(rc, MPFS_E_NOMEM, "%s, allocation %zu failing: %s", names[f],
				     k, err.msg);
			cr_assert(err.msg[0]);
			cr_assert_lt(err.off, n);
			cr_assert_null(doc.arena);
		}
		free(p);
	}

	struct mpfs_doc doc;
	struct mpfs_error err;
	struct mpfs_strbuf out;
	static const uint8_t list[] = {0x93, 0xa1, 0x61, 0x01, 0xc0};
	cr_assert_eq(mpfs_doc_init(&doc, list, sizeof(list), &err), MPFS_OK);
	for (size_t k = 1; k < 4; k++) {
		mpfs_strbuf_init(&out);
		tu_track_allocs();
		tu_allocs.fail_at = k;
		mpfs_json_render(&doc, &doc.root, &out);
		tu_allocs.on = false;
		if (tu_allocs.calls >= k)
			cr_assert(out.oom, "allocation %zu failed, but oom is not set", k);
		mpfs_strbuf_destroy(&out);
	}
	mpfs_doc_destroy(&doc);
}

/* ---- agreement with msgpack-c --------------------------------------------- */

/* Compares our value with msgpack-c's object for the same bytes. */
static void same_as_msgpack_c(const struct mpfs_doc *doc, const struct mpfs_val *v,
			      const msgpack_object *o, const char *where)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: cr_assert_eq(v->type, MPFS_NIL, "%s: nil", where); break;
	case MSGPACK_OBJECT_BOOLEAN:
		cr_assert_eq(v->type, MPFS_BOOL, "%s: bool", where);
		cr_assert_eq(v->b, o->via.boolean, "%s: bool value", where);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		cr_assert_eq(v->type, MPFS_UINT, "%s: uint (tag %#x)", where, v->tag);
		cr_assert_eq(v->u, o->via.u64, "%s: uint value", where);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		cr_assert_eq(v->type, MPFS_INT, "%s: int (tag %#x)", where, v->tag);
		cr_assert_eq(v->i, o->via.i64, "%s: int value", where);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		cr_assert_eq(v->type, MPFS_FLOAT, "%s: float", where);
		cr_assert_eq(v->tag, o->type == MSGPACK_OBJECT_FLOAT32 ? 0xca : 0xcb, "%s: width",
			     where);
		cr_assert_eq(bits(v->f), bits(o->via.f64), "%s: float bits", where);
		break;
	case MSGPACK_OBJECT_STR:
	case MSGPACK_OBJECT_BIN:
	case MSGPACK_OBJECT_EXT: {
		const char *ptr = o->type == MSGPACK_OBJECT_STR	  ? o->via.str.ptr
				  : o->type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr
								  : o->via.ext.ptr;
		uint32_t size = o->type == MSGPACK_OBJECT_STR	? o->via.str.size
				: o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size
								: o->via.ext.size;
		enum mpfs_type t = o->type == MSGPACK_OBJECT_STR   ? MPFS_STR
				   : o->type == MSGPACK_OBJECT_BIN ? MPFS_BIN
								   : MPFS_EXT;
		cr_assert_eq(v->type, t, "%s: type %d, expected %d", where, v->type, t);
		cr_assert_eq(v->len, size, "%s: len", where);
		if (size)
			cr_assert(memcmp(mpfs_val_data(doc, v), ptr, size) == 0, "%s: payload",
				  where);
		if (t == MPFS_EXT)
			cr_assert_eq(v->ext_type, o->via.ext.type, "%s: ext type", where);
		break;
	}
	case MSGPACK_OBJECT_ARRAY: {
		cr_assert_eq(v->type, MPFS_ARRAY, "%s: array", where);
		cr_assert_eq(v->len, o->via.array.size, "%s: array len", where);
		uint64_t off = v->off + v->hdr;
		for (uint32_t i = 0; i < v->len; i++) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%.200s[%u]", where, i);
			if (v->items) {
				same_as_msgpack_c(doc, &v->items[i], &o->via.array.ptr[i], sub);
			} else {
				struct mpfs_val e;
				off = mpfs_scalar_at(doc->buf, off, &e);
				same_as_msgpack_c(doc, &e, &o->via.array.ptr[i], sub);
			}
		}
		break;
	}
	case MSGPACK_OBJECT_MAP:
		cr_assert_eq(v->type, MPFS_MAP, "%s: map", where);
		cr_assert_eq(v->len, o->via.map.size, "%s: map len", where);
		for (uint32_t i = 0; i < v->len; i++) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%.200s{%u}", where, i);
			same_as_msgpack_c(doc, &v->items[2 * i], &o->via.map.ptr[i].key, sub);
			same_as_msgpack_c(doc, &v->items[2 * i + 1], &o->via.map.ptr[i].val, sub);
		}
		break;
	}
}

static void agree(const msgpack_sbuffer *sb, const char *what)
{
	struct dc d;
	msgpack_unpacked up;
	size_t off = 0;

	dc_bytes(&d, sb->data, sb->size);
	expect_ok(&d, what);
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, (const char *)d.buf, d.n, &off),
		     MSGPACK_UNPACK_SUCCESS, "%s: msgpack-c refuses it", what);
	cr_assert_eq(off, d.n);
	same_as_msgpack_c(&d.doc, &d.doc.root, &up.data, what);
	msgpack_unpacked_destroy(&up);
	dc_free(&d);
}

static char blob[70000];

/* Every width msgpack-c's packer can write, with the tag each must have. */
Test(codec_decode, agrees_with_msgpack_c_on_every_width)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct dc d;
	static const uint8_t tags[] = {
		0x05, 0xcc, 0xcc, 0xcd, 0xce, 0xcf, 0xe0, 0xd0, 0xd0, 0xd1, 0xd2, 0xd3,
		0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xca, 0xcb, 0xc0, 0xc3,
		0xc2, 0xa5, 0xd9, 0xda, 0xdb, 0xbf, 0xda, 0xdb, 0xc4, 0xc5, 0xc6, 0xd4,
		0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc7, 0xc8, 0xc9, 0x90, 0xdc, 0x80, 0xde,
	};

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (char)('A' + i % 50);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, sizeof(tags));
	msgpack_pack_uint8(&pk, 5);
	msgpack_pack_uint8(&pk, 200);
	msgpack_pack_fix_uint8(&pk, 7);
	msgpack_pack_fix_uint16(&pk, 65535);
	msgpack_pack_fix_uint32(&pk, UINT32_MAX);
	msgpack_pack_fix_uint64(&pk, UINT64_MAX);
	msgpack_pack_int8(&pk, -32);
	msgpack_pack_int8(&pk, -33);
	msgpack_pack_fix_int8(&pk, INT8_MIN);
	msgpack_pack_fix_int16(&pk, INT16_MIN);
	msgpack_pack_fix_int32(&pk, INT32_MIN);
	msgpack_pack_fix_int64(&pk, INT64_MIN);
	msgpack_pack_uint64(&pk, 255);
	msgpack_pack_uint64(&pk, 65535);
	msgpack_pack_uint64(&pk, UINT32_MAX);
	msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX + 1);
	msgpack_pack_fix_int8(&pk, 1); /* non-negative, signed encoding */
	msgpack_pack_fix_int16(&pk, 300);
	msgpack_pack_fix_int32(&pk, -70000);
	msgpack_pack_fix_int64(&pk, INT64_MAX);
	msgpack_pack_float(&pk, 0.1f);
	msgpack_pack_double(&pk, 0.1);
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	msgpack_pack_false(&pk);
	msgpack_pack_str_with_body(&pk, blob, 5);
	msgpack_pack_str_with_body(&pk, blob, 32);
	msgpack_pack_str_with_body(&pk, blob, 256);
	msgpack_pack_str_with_body(&pk, blob, 65536);
	msgpack_pack_v4raw(&pk, 31); /* old raw: no raw8 */
	msgpack_pack_v4raw_body(&pk, blob, 31);
	msgpack_pack_v4raw(&pk, 32);
	msgpack_pack_v4raw_body(&pk, blob, 32);
	msgpack_pack_v4raw(&pk, 65536);
	msgpack_pack_v4raw_body(&pk, blob, 65536);
	msgpack_pack_bin_with_body(&pk, blob, 3);
	msgpack_pack_bin_with_body(&pk, blob, 256);
	msgpack_pack_bin_with_body(&pk, blob, 65536);
	msgpack_pack_ext_with_body(&pk, blob, 1, 1);
	msgpack_pack_ext_with_body(&pk, blob, 2, 2);
	msgpack_pack_ext_with_body(&pk, blob, 4, -1);
	msgpack_pack_ext_with_body(&pk, blob, 8, -1);
	msgpack_pack_ext_with_body(&pk, blob, 16, 127);
	msgpack_pack_ext_with_body(&pk, blob, 0, 3);
	msgpack_pack_ext_with_body(&pk, blob, 12, -1);
	msgpack_pack_ext_with_body(&pk, blob, 256, -128);
	msgpack_pack_ext_with_body(&pk, blob, 65536, 42);
	msgpack_pack_array(&pk, 0);
	msgpack_pack_array(&pk, 16);
	for (int i = 0; i < 16; i++)
		msgpack_pack_int(&pk, i - 8);
	msgpack_pack_map(&pk, 0);
	msgpack_pack_map(&pk, 16);
	for (int i = 0; i < 16; i++) {
		msgpack_pack_int(&pk, i);
		msgpack_pack_str_with_body(&pk, blob, (size_t)i);
	}
	agree(&sb, "every width");

	/* And the tags are the ones written. */
	dc_bytes(&d, sb.data, sb.size);
	expect_ok(&d, "every width");
	cr_assert_not_null(d.doc.root.items);
	cr_assert_eq(d.doc.root.len, sizeof(tags));
	for (size_t i = 0; i < sizeof(tags); i++)
		cr_assert_eq(d.doc.root.items[i].tag, tags[i], "element %zu: tag %#x, expected %#x",
			     i, d.doc.root.items[i].tag, tags[i]);
	dc_free(&d);

	/* array32 and map32 need 65536 entries. */
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_array(&pk, 65536);
	for (int i = 0; i < 65536; i++)
		msgpack_pack_uint32(&pk, (uint32_t)i * 65537u);
	agree(&sb, "array32");
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 65536);
	for (int i = 0; i < 65536; i++) {
		msgpack_pack_uint32(&pk, (uint32_t)i);
		msgpack_pack_nil(&pk);
	}
	agree(&sb, "map32");
	msgpack_sbuffer_destroy(&sb);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, so a failure replays. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static void pack_random(msgpack_packer *pk, int depth)
{
	uint64_t r = rng();
	unsigned kind = (unsigned)(r % (depth < 4 ? 26 : 22));
	size_t n;

	r = rng();
	switch (kind) {
	case 0: msgpack_pack_nil(pk); break;
	case 1: r & 1 ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
	case 2: msgpack_pack_uint64(pk, r >> (r % 64)); break;
	case 3: msgpack_pack_int64(pk, (int64_t)r >> (r % 64)); break;
	case 4: msgpack_pack_fix_uint8(pk, (uint8_t)r); break;
	case 5: msgpack_pack_fix_uint16(pk, (uint16_t)r); break;
	case 6: msgpack_pack_fix_uint32(pk, (uint32_t)r); break;
	case 7: msgpack_pack_fix_uint64(pk, r); break;
	case 8: msgpack_pack_fix_int8(pk, (int8_t)r); break;
	case 9: msgpack_pack_fix_int16(pk, (int16_t)r); break;
	case 10: msgpack_pack_fix_int32(pk, (int32_t)r); break;
	case 11: msgpack_pack_fix_int64(pk, (int64_t)r); break;
	case 12: {
		uint32_t x = (uint32_t)r;
		float f;
		memcpy(&f, &x, 4);
		msgpack_pack_float(pk, f);
		break;
	}
	case 13: {
		double f;
		memcpy(&f, &r, 8);
		msgpack_pack_double(pk, f);
		break;
	}
	case 14:
	case 15:
		n = r % 4 ? r % 40 : r % 300;
		msgpack_pack_str_with_body(pk, blob + r % 1000, n);
		break;
	case 16:
		n = r % 300;
		msgpack_pack_v4raw(pk, n);
		msgpack_pack_v4raw_body(pk, blob, n);
		break;
	case 17:
	case 18:
		n = r % 4 ? r % 20 : r % 300;
		for (size_t i = 0; i < n && i < 16; i++)
			blob[1000 + i] = (char)rng();
		msgpack_pack_bin_with_body(pk, blob + 1000, n);
		break;
	case 19:
	case 20:
	case 21: {
		static const size_t lens[] = {0, 1, 2, 3, 4, 5, 8, 12, 16, 17, 255, 256};
		n = lens[r % 12];
		msgpack_pack_ext_with_body(pk, blob, n, (int8_t)(r >> 8));
		break;
	}
	case 22:
	case 23:
		n = r % 8 ? r % 6 : r % 40;
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			pack_random(pk, depth + 1);
		break;
	default:
		n = r % 8 ? r % 5 : r % 20;
		msgpack_pack_map(pk, n);
		for (size_t i = 0; i < 2 * n; i++)
			pack_random(pk, depth + 1);
		break;
	}
}

Test(codec_decode, agrees_with_msgpack_c_on_random_documents)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (char)('a' + i % 26);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (int doc = 0; doc < 500; doc++) {
		char what[32];
		msgpack_sbuffer_clear(&sb);
		/* A container at the top so that documents hold many values. */
		msgpack_pack_array(&pk, 8);
		for (int i = 0; i < 8; i++)
			pack_random(&pk, 1);
		snprintf(what, sizeof(what), "random document %d", doc);
		agree(&sb, what);
	}
	msgpack_sbuffer_destroy(&sb);
}

/* Issue 7, item 11: leaf arrays are walked again from the buffer (a mapping
 * of the archive) after decoding, and someone may rewrite the archive in
 * place. An element that now claims 2 GiB made the walk read far past the
 * buffer (AddressSanitizer: heap-buffer-overflow here). A walk is bounded by
 * the end it is given, or by the mpfs_scalar_bound scope. */
Test(codec_decode, scalar_walk_stays_inside_a_rewritten_buffer)
{
	struct dc d;
	struct mpfs_val e;

	dc_hex(&d, "93 a1 61 a3 62 63 64 cb 3f f0 00 00 00 00 00 00");
	uint64_t first = d.doc.root.off + d.doc.root.hdr;
	/* The second element becomes a str32 of 2 GiB (same size, in place). */
	memcpy(d.buf + 3, "\xdb\x7f\xff\xff", 4);
	uint64_t off = mpfs_scalar_next(d.buf, d.n, first, &e);
	cr_assert_eq(e.type, MPFS_STR);
	cr_assert_eq(off, 3);
	off = mpfs_scalar_next(d.buf, d.n, off, &e);
	cr_assert_eq(e.type, MPFS_NIL, "what does not fit is a nil");
	cr_assert_eq(e.off, d.n);
	cr_assert_eq(off, d.n, "and the walk ends");
	off = mpfs_scalar_next(d.buf, d.n, off, &e);
	cr_assert_eq(off, d.n);
	cr_assert_eq(e.type, MPFS_NIL);

	/* Callers that give no end: bounded inside a scope. */
	struct mpfs_scalar_bound outer;
	mpfs_scalar_bound(d.buf, d.n, &outer);
	off = first;
	for (int i = 0; i < 3; i++)
		off = mpfs_scalar_at(d.buf, off, &e);
	mpfs_scalar_unbound(&outer);
	cr_assert_eq(off, d.n);
	cr_assert_eq(e.type, MPFS_NIL);

	/* A header cut by the end, and a container where a scalar was. */
	memcpy(d.buf + 3, "\xa3\x62\x63\x64", 4);
	off = mpfs_scalar_next(d.buf, d.n - 1, 7, &e);
	cr_assert_eq(e.type, MPFS_NIL, "float64 header cut by the end");
	cr_assert_eq(off, d.n - 1);
	d.buf[7] = 0x91;
	off = mpfs_scalar_next(d.buf, d.n, 7, &e);
	cr_assert_eq(e.type, MPFS_NIL, "a list is not a scalar");
	dc_free(&d);
}
