/* codec/decode.c: every MsgPack type and width from hand-written bytes:
 * integers, floats, nil and bool, strings (new str and old raw), bin, ext,
 * arrays and maps. */
#define TU_WRAP_ALLOCS
#include "decode_env.h"

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
