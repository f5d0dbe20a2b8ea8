/* codec/encode.c and codec/jsonparse.c: JSON text to MsgPack (every form,
 * refusals with their byte offset, the old value's width and family kept),
 * and keys and raw bytes encoded. Produced bytes are checked exactly and
 * decoded again with mpfs_doc_init. */
#define TU_WRAP_ALLOCS /* linked with --wrap=malloc,... (tests/meson.build) */
#include "encode_env.h"

/* ---- JSON text to MsgPack ---------------------------------------------------------- */

/* Runs mpfs_encode_json on len bytes of text, copied to a heap buffer of
 * exactly that size (no NUL after it, so AddressSanitizer sees any read past
 * the end), with the root of old_hex as the old value (none if NULL). */
static enum mpfs_codec_err json_enc(const char *old_hex, const char *text, size_t len,
				    struct mpfs_strbuf *out, struct mpfs_error *err)
{
	struct tu_doc d;
	char *t = (char *)tu_dup(text, len);
	enum mpfs_codec_err rc;

	tu_doc_hex(&d, old_hex ? old_hex : "c0");
	memset(err, 0, sizeof(*err));
	rc = mpfs_encode_json(&d.doc, old_hex ? &d.doc.root : NULL, t, len, out, err);
	free(t);
	tu_doc_free(&d);
	return rc;
}

/* text (with old_hex as the old value) must encode to exactly want_hex, one
 * value that decodes. */
static void json_ok(const char *old_hex, const char *text, const char *want_hex)
{
	struct mpfs_strbuf out;
	struct mpfs_error err;
	struct tu_doc d;
	char what[300];

	snprintf(what, sizeof(what), "'%s' (old %s)", text, old_hex ? old_hex : "none");
	mpfs_strbuf_init(&out);
	cr_assert_eq(json_enc(old_hex, text, strlen(text), &out, &err), MPFS_OK, "%s: %s", what,
		     err.msg);
	expect_bytes(out.p, out.len, want_hex, what);
	decode_out(&d, &out, what);
	tu_doc_free(&d);
	mpfs_strbuf_destroy(&out);
}

/* text must be refused with MPFS_E_ARRAY at byte off, out left as it was. */
static void json_bad_n(const char *old_hex, const char *text, size_t len, uint64_t off)
{
	struct mpfs_strbuf out;
	struct mpfs_error err;
	enum mpfs_codec_err rc;
	char want[32];

	mpfs_strbuf_init(&out);
	mpfs_strbuf_add(&out, "AB", 2); /* output is appended: this must stay */
	rc = json_enc(old_hex, text, len, &out, &err);
	cr_assert_eq(rc, MPFS_E_ARRAY, "'%.*s' (old %s): %d, expected a refusal; produced [%s]",
		     (int)len, text, old_hex ? old_hex : "none", rc, hexs(out.p, out.len));
	cr_assert_eq(err.code, MPFS_E_ARRAY);
	cr_assert_eq(err.off, off, "'%.*s': refused at %" PRIu64 ", expected %" PRIu64 " (%s)",
		     (int)len, text, err.off, off, err.msg);
	snprintf(want, sizeof(want), "at byte %" PRIu64, off);
	cr_assert(strstr(err.msg, want), "'%.*s': message '%s' does not say '%s'", (int)len, text,
		  err.msg, want);
	cr_assert_eq(out.len, 2, "'%.*s': output changed on refusal", (int)len, text);
	cr_assert(memcmp(out.p, "AB", 2) == 0);
	mpfs_strbuf_destroy(&out);
}

static void json_bad(const char *old_hex, const char *text, uint64_t off)
{
	json_bad_n(old_hex, text, strlen(text), off);
}

/* The float text gives, with old_hex, a float of tag (0xca or 0xcb) equal
 * to want (or NaN). */
static void json_float(const char *old_hex, const char *text, uint8_t tag, double want)
{
	struct mpfs_strbuf out;
	struct mpfs_error err;
	struct tu_doc d;

	mpfs_strbuf_init(&out);
	cr_assert_eq(json_enc(old_hex, text, strlen(text), &out, &err), MPFS_OK, "%s: %s", text,
		     err.msg);
	decode_out(&d, &out, text);
	cr_assert_eq(d.doc.root.type, MPFS_FLOAT, "'%s' (old %s): [%s] is not a float", text,
		     old_hex ? old_hex : "none", hexs(out.p, out.len));
	cr_assert_eq(d.doc.root.tag, tag, "'%s' (old %s): tag %#x, expected %#x", text,
		     old_hex ? old_hex : "none", d.doc.root.tag, tag);
	if (isnan(want))
		cr_assert(isnan(d.doc.root.f), "'%s': %g, expected NaN", text, d.doc.root.f);
	else
		cr_assert(d.doc.root.f == want && signbit(d.doc.root.f) == signbit(want),
			  "'%s' (old %s): %.17g, expected %.17g", text, old_hex ? old_hex : "none",
			  d.doc.root.f, want);
	tu_doc_free(&d);
	mpfs_strbuf_destroy(&out);
}

Test(encode_json, literals)
{
	json_ok(NULL, "null", "c0");
	json_ok(NULL, "true", "c3");
	json_ok(NULL, "false", "c2");
}

Test(encode_json, integers_take_the_smallest_encoding)
{
	json_ok(NULL, "0", "00");
	json_ok(NULL, "-0", "00");
	json_ok(NULL, "127", "7f");
	json_ok(NULL, "128", "cc 80");
	json_ok(NULL, "255", "cc ff");
	json_ok(NULL, "256", "cd 01 00");
	json_ok(NULL, "65535", "cd ff ff");
	json_ok(NULL, "65536", "ce 00 01 00 00");
	json_ok(NULL, "4294967295", "ce ff ff ff ff");
	json_ok(NULL, "4294967296", "cf 00 00 00 01 00 00 00 00");
	json_ok(NULL, "9223372036854775807", "cf 7f ff ff ff ff ff ff ff");
	json_ok(NULL, "9223372036854775808", "cf 80 00 00 00 00 00 00 00");
	json_ok(NULL, "18446744073709551615", "cf ff ff ff ff ff ff ff ff");
	json_ok(NULL, "-1", "ff");
	json_ok(NULL, "-32", "e0");
	json_ok(NULL, "-33", "d0 df");
	json_ok(NULL, "-128", "d0 80");
	json_ok(NULL, "-129", "d1 ff 7f");
	json_ok(NULL, "-32768", "d1 80 00");
	json_ok(NULL, "-32769", "d2 ff ff 7f ff");
	json_ok(NULL, "-2147483648", "d2 80 00 00 00");
	json_ok(NULL, "-2147483649", "d3 ff ff ff ff 7f ff ff ff");
	json_ok(NULL, "-9223372036854775808", "d3 80 00 00 00 00 00 00 00");
}

Test(encode_json, integers_beyond_64_bits_become_floats)
{
	json_float(NULL, "18446744073709551616", 0xcb, 18446744073709551616.0);
	json_float(NULL, "-9223372036854775809", 0xcb, -9223372036854775809.0);
	json_float(NULL, "100000000000000000000000000000", 0xcb, 1e29);
}

Test(encode_json, floats)
{
	json_ok(NULL, "1.5", "cb 3f f8 00 00 00 00 00 00");
	json_ok(NULL, "-2.5", "cb c0 04 00 00 00 00 00 00");
	json_ok(NULL, "0.1", "cb 3f b9 99 99 99 99 99 9a");
	json_ok(NULL, "1e3", "cb 40 8f 40 00 00 00 00 00");
	json_float(NULL, "1E+2", 0xcb, 100.0);
	json_float(NULL, "2.5e-3", 0xcb, 2.5e-3);
	json_float(NULL, "-0.0", 0xcb, -0.0);
	json_float(NULL, "0.0", 0xcb, 0.0);
	json_float(NULL, "1.7976931348623157e308", 0xcb, DBL_MAX);
	json_float(NULL, "5e-324", 0xcb, 5e-324);
	json_float(NULL, "2.2250738585072014e-308", 0xcb, DBL_MIN);
	json_float(NULL, "0.10000000000000000555111512312578270211815834045410156", 0xcb, 0.1);
	/* 63 characters: the longest number held in the parser's own buffer */
	json_float(NULL, "1.0000000000000000000000000000000000000000000000000000000000000", 0xcb,
		   1.0);
}

Test(encode_json, nan_and_infinities)
{
	json_ok(NULL, "Infinity", "cb 7f f0 00 00 00 00 00 00");
	json_ok(NULL, "-Infinity", "cb ff f0 00 00 00 00 00 00");
	json_float(NULL, "NaN", 0xcb, NAN);
	json_float(NULL, " NaN\n", 0xcb, NAN);
	json_ok(NULL, "[NaN,Infinity,-Infinity]",
		"93 cb 7f f8 00 00 00 00 00 00 cb 7f f0 00 00 00 00 00 00 cb ff f0 00 00 00 00 00 "
		"00");
}

Test(encode_json, strings_and_escapes)
{
	json_ok(NULL, "\"\"", "a0");
	json_ok(NULL, "\"relu\"", "a4 72 65 6c 75");
	json_ok(NULL, "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
		"af 22 20 5c 20 2f 20 08 20 0c 20 0a 20 0d 20 09");
	json_ok(NULL, "\"\\u0041\\u00e9\\u00E9\\u20ac\"", "a8 41 c3 a9 c3 a9 e2 82 ac");
	json_ok(NULL, "\"\\u0000\"", "a1 00");
	json_ok(NULL, "\"\\u001f\\u007f\\u0080\\u07ff\\u0800\\uffff\"",
		"ac 1f 7f c2 80 df bf e0 a0 80 ef bf bf");
	/* surrogate pairs: U+1F600, U+10000, U+10FFFF */
	json_ok(NULL, "\"\\ud83d\\ude00\"", "a4 f0 9f 98 80");
	json_ok(NULL, "\"\\uD83D\\uDE00\"", "a4 f0 9f 98 80");
	json_ok(NULL, "\"\\ud800\\udc00\"", "a4 f0 90 80 80");
	json_ok(NULL, "\"\\udbff\\udfff\"", "a4 f4 8f bf bf");
	/* UTF-8 and DEL pass through as they are */
	json_ok(NULL, "\"h\xc3\xa9llo\x7f\"", "a7 68 c3 a9 6c 6c 6f 7f");
	/* 31 bytes: fixstr; 32: str8; 256: str16 */
	json_ok(NULL, "\"0123456789012345678901234567890\"",
		"bf 30 31 32 33 34 35 36 37 38 39 30 31 32 33 34 35 36 37 38 39 30 31 32 33 34 35 "
		"36 37 38 39 30");
	json_ok(NULL, "\"01234567890123456789012345678901\"", /* str16: see raw16_... */
		"da 00 20 30 31 32 33 34 35 36 37 38 39 30 31 32 33 34 35 36 37 38 39 30 31 32 33 "
		"34 "
		"35 36 37 38 39 30 31");

	char text[300];
	struct mpfs_strbuf out;
	struct mpfs_error err;
	text[0] = '"';
	memset(text + 1, 'x', 256);
	text[257] = '"';
	mpfs_strbuf_init(&out);
	cr_assert_eq(json_enc(NULL, text, 258, &out, &err), MPFS_OK);
	cr_assert_eq(out.len, 3 + 256);
	expect_bytes(out.p, 3, "da 01 00", "a string of 256 bytes");
	mpfs_strbuf_destroy(&out);
}

Test(encode_json, arrays_and_objects)
{
	json_ok(NULL, "[]", "90");
	json_ok(NULL, "{}", "80");
	json_ok(NULL, "[1,[2,[]],{}]", "93 01 92 02 90 80");
	json_ok(NULL, "{\"a\":1,\"b\":[true,null],\"c\":{\"d\":\"e\"}}",
		"83 a1 61 01 a1 62 92 c3 c0 a1 63 81 a1 64 a1 65");
	json_ok(NULL, "{\"\\u00e9\\n\":-1}", "81 a3 c3 a9 0a ff");
	json_ok(NULL, "[1.5,\"x\",[[[]]]]", "93 cb 3f f8 00 00 00 00 00 00 a1 78 91 91 90");
	/* 16 elements: array16, map16 */
	json_ok(NULL, "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]",
		"dc 00 10 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f");
	json_ok(NULL,
		"{\"a\":0,\"b\":1,\"c\":2,\"d\":3,\"e\":4,\"f\":5,\"g\":6,\"h\":7,\"i\":8,\"j\":9,"
		"\"k\":10,\"l\":11,\"m\":12,\"n\":13,\"o\":14,\"p\":15}",
		"de 00 10 a1 61 00 a1 62 01 a1 63 02 a1 64 03 a1 65 04 a1 66 05 a1 67 06 a1 68 07 "
		"a1 69 08 a1 6a 09 a1 6b 0a a1 6c 0b a1 6d 0c a1 6e 0d a1 6f 0e a1 70 0f");
	/* Values inside containers take no width from the old value. */
	json_ok("cc 05", "[5]", "91 05");
	json_ok("ca 3f 80 00 00", "[0.5]", "91 cb 3f e0 00 00 00 00 00 00");
}

Test(encode_json, whitespace_around_and_inside)
{
	json_ok(NULL, " \t\r\n 1 \n", "01");
	json_ok(NULL, "true\n", "c3");
	json_ok(NULL, "\n\"x\"\n\n", "a1 78");
	json_ok(NULL, "[ 1 ,\n2\t]", "92 01 02");
	json_ok(NULL, " { \"a\" : [ ] , \"b\" :{ } } ", "82 a1 61 90 a1 62 80");
}

Test(encode_json, output_is_appended)
{
	struct mpfs_strbuf out;
	struct mpfs_error err;

	mpfs_strbuf_init(&out);
	mpfs_strbuf_add(&out, "AB", 2);
	cr_assert_eq(json_enc(NULL, "[1]", 3, &out, &err), MPFS_OK);
	expect_bytes(out.p, out.len, "41 42 91 01", "appended");
	mpfs_strbuf_destroy(&out);
}

Test(encode_json, invalid_json_is_refused_with_its_offset)
{
	const char *nil = "c0"; /* an old value that is not a string: no fallback */

	json_bad(nil, "", 0);
	json_bad(nil, "   \n", 4);
	json_bad(nil, "1 2", 2);
	json_bad(nil, "[1] x", 4);
	json_bad(nil, "truex", 4);
	json_bad(nil, "0x10", 1);
	json_bad(nil, "01", 0);
	json_bad(nil, "-01", 1);
	json_bad(nil, "00", 0);
	json_bad(nil, "1.", 2);
	json_bad(nil, "1.e5", 2);
	json_bad(nil, ".5", 0);
	json_bad(nil, "1e", 2);
	json_bad(nil, "1e+", 3);
	json_bad(nil, "+1", 0);
	json_bad(nil, "-", 1);
	json_bad(nil, "- 1", 1);
	json_bad(nil, "tru", 0);
	json_bad(nil, "True", 0);
	json_bad(nil, "nul", 0);
	json_bad(nil, "nan", 0);
	json_bad(nil, "-NaN", 1);
	json_bad(nil, "inf", 0);
	json_bad(nil, "-Inf", 1);
	json_bad(nil, "Infinit", 0);
	json_bad(nil, "'a'", 0);
	/* strings */
	json_bad(nil, "\"abc", 4);
	json_bad(nil, "\"abc\\", 5);
	json_bad(nil, "\"a\\x\"", 2);
	json_bad(nil, "\"a\\U0041\"", 2);
	json_bad(nil, "\"\\u12\"", 3);
	json_bad(nil, "\"\\u12G4\"", 6);
	json_bad(nil, "\"\\ud800\"", 7);
	json_bad(nil, "\"\\ud800x\"", 7);
	json_bad(nil, "\"\\udc00\"", 7);
	json_bad(nil, "\"\\ude00\\ud83d\"", 7);
	json_bad(nil, "\"\\ud800\\u0041\"", 13);
	json_bad(nil, "\"\\ud800\\ud800\"", 13);
	json_bad(nil, "\"a\nb\"", 2);
	json_bad(nil, "\"a\tb\"", 2);
	json_bad_n(nil, "\"a\0b\"", 5, 2);
	json_bad_n(nil, "1\0", 2, 1);
	/* containers */
	json_bad(nil, "[", 1);
	json_bad(nil, "[1", 2);
	json_bad(nil, "[1,]", 3);
	json_bad(nil, "[1 2]", 3);
	json_bad(nil, "[,1]", 1);
	json_bad(nil, "]", 0);
	json_bad(nil, "{", 1);
	json_bad(nil, "{1:2}", 1);
	json_bad(nil, "{\"a\" 1}", 5);
	json_bad(nil, "{\"a\":}", 5);
	json_bad(nil, "{\"a\":1,}", 7);
	json_bad(nil, "{\"a\":1]", 6);
	json_bad(nil, "[1}", 2);
}

Test(encode_json, refused_whatever_the_old_value_unless_a_string)
{
	/* int, float, bool, nil, non-UTF-8 str and bin, list, map, ext */
	static const char *const olds[] = {"05",
					   "cc 05",
					   "d0 fb",
					   "cb 3f f0 00 00 00 00 00 00",
					   "ca 3f 80 00 00",
					   "c3",
					   "c0",
					   "a2 ff fe",
					   "c4 02 ff fe",
					   "91 01",
					   "80",
					   "d4 01 00"};
	for (size_t i = 0; i < sizeof(olds) / sizeof(olds[0]); i++)
		json_bad(olds[i], "tanh", 0);
}

Test(encode_json, nesting_limit)
{
	char text[2 * (MPFS_MAX_DEPTH + 1)];
	struct mpfs_strbuf out;
	struct mpfs_error err;
	struct tu_doc d;

	/* MPFS_MAX_DEPTH levels: accepted, and the decoder takes them back */
	memset(text, '[', MPFS_MAX_DEPTH);
	memset(text + MPFS_MAX_DEPTH, ']', MPFS_MAX_DEPTH);
	mpfs_strbuf_init(&out);
	cr_assert_eq(json_enc("c0", text, 2 * MPFS_MAX_DEPTH, &out, &err), MPFS_OK, "%s", err.msg);
	cr_assert_eq(out.len, MPFS_MAX_DEPTH);
	decode_out(&d, &out, "128 levels");
	tu_doc_free(&d);
	mpfs_strbuf_destroy(&out);

	/* one more: refused where the level too many opens */
	memset(text, '[', MPFS_MAX_DEPTH + 1);
	memset(text + MPFS_MAX_DEPTH + 1, ']', MPFS_MAX_DEPTH + 1);
	json_bad_n("c0", text, sizeof(text), MPFS_MAX_DEPTH);
	json_bad_n("05", text, MPFS_MAX_DEPTH + 1, MPFS_MAX_DEPTH);

	/* objects count too */
	struct tb b = {0};
	for (int i = 0; i <= MPFS_MAX_DEPTH; i++)
		tb_put(&b, "{\"a\":", 5);
	tb_byte(&b, '1');
	for (int i = 0; i <= MPFS_MAX_DEPTH; i++)
		tb_byte(&b, '}');
	json_bad_n("c0", (const char *)b.p, b.len, 5 * MPFS_MAX_DEPTH);
	tb_free(&b);

	/* deep enough to overflow a recursive parser's stack if it had no limit */
	size_t n = 200000;
	char *deep = malloc(n);
	memset(deep, '[', n);
	json_bad_n("c0", deep, n, MPFS_MAX_DEPTH);
	free(deep);
}

/* A nesting bomb as a text file's content (issue 7): 1M '[' or 1M '{"a":'
 * is refused at the level too many, at once, on a stack of MPFS_MAX_DEPTH
 * frames and with memory that does not grow with the text; where a string
 * was (or for a new file) it is taken as the string it is. */
Test(encode_json, nesting_bomb_refused_quickly_in_bounded_memory, .timeout = 10)
{
	const size_t n = 1000000;
	char *brackets = malloc(n), *objects = malloc(5 * n);
	struct mpfs_strbuf out;
	struct mpfs_error err;

	cr_assert(brackets && objects);
	memset(brackets, '[', n);
	for (size_t i = 0; i < n; i++)
		memcpy(objects + 5 * i, "{\"a\":", 5);
	static const char *const olds[] = {"c0", "05", "cb 3f f8 00 00 00 00 00 00", "91 01"};
	for (size_t k = 0; k < sizeof(olds) / sizeof(olds[0]); k++)
		for (int obj = 0; obj < 2; obj++) {
			size_t len = obj ? 5 * n : n;
			char *t = (char *)tu_dup(obj ? objects : brackets, len);
			struct tu_doc d;

			tu_doc_hex(&d, olds[k]);
			mpfs_strbuf_init(&out);
			tu_track_allocs();
			enum mpfs_codec_err rc =
				mpfs_encode_json(&d.doc, &d.doc.root, t, len, &out, &err);
			tu_allocs.on = false;
			cr_assert_eq(rc, MPFS_E_ARRAY, "old %s: %d", olds[k], rc);
			cr_assert_eq(err.off, obj ? 5 * MPFS_MAX_DEPTH : MPFS_MAX_DEPTH, "%s",
				     err.msg);
			cr_assert(strstr(err.msg, "nesting too deep"), "%s", err.msg);
			cr_assert_eq(out.len, 0);
			cr_assert_lt(tu_allocs.total, 64 * 1024,
				     "old %s: %zu bytes allocated to refuse", olds[k],
				     tu_allocs.total);
			mpfs_strbuf_destroy(&out);
			tu_doc_free(&d);
			free(t);
		}

	/* a string, or a new file: the text itself, trimmed, in one buffer */
	for (int k = 0; k < 2; k++) {
		char *t = (char *)tu_dup(brackets, n);
		struct tu_doc d;

		tu_doc_hex(&d, "a1 78");
		mpfs_strbuf_init(&out);
		tu_track_allocs();
		cr_assert_eq(mpfs_encode_json(&d.doc, k ? &d.doc.root : NULL, t, n, &out, &err),
			     MPFS_OK, "%s", err.msg);
		tu_allocs.on = false;
		cr_assert_eq(out.len, 5 + n);
		cr_assert_lt(tu_allocs.total, 4 * n, "%zu bytes allocated for a %zu-byte string",
			     tu_allocs.total, n);
		mpfs_strbuf_destroy(&out);
		tu_doc_free(&d);
		free(t);
	}
	free(brackets);
	free(objects);
}

/* Integers keep the old value's width where they fit, else the smallest. */
Test(encode_json, integer_width_kept)
{
	/* uint8 */
	json_ok("cc 05", "200", "cc c8");
	json_ok("cc 05", "5", "cc 05");
	json_ok("cc 05", "0", "cc 00");
	json_ok("cc 05", "255", "cc ff");
	json_ok("cc 05", "256", "cd 01 00");
	json_ok("cc 05", "300", "cd 01 2c");
	json_ok("cc 05", "-1", "ff");
	json_ok("cc 05", "-200", "d1 ff 38");
	/* uint16, uint32, uint64 */
	json_ok("cd 00 01", "7", "cd 00 07");
	json_ok("cd 00 01", "65536", "ce 00 01 00 00");
	json_ok("ce 00 00 00 01", "7", "ce 00 00 00 07");
	json_ok("ce 00 00 00 01", "4294967296", "cf 00 00 00 01 00 00 00 00");
	json_ok("cf 00 00 00 00 00 00 00 01", "7", "cf 00 00 00 00 00 00 00 07");
	json_ok("cf 00 00 00 00 00 00 00 01", "18446744073709551615", "cf ff ff ff ff ff ff ff ff");
	json_ok("cf 00 00 00 00 00 00 00 01", "-7", "f9");
	/* int8 */
	json_ok("d0 fb", "-5", "d0 fb");
	json_ok("d0 fb", "-100", "d0 9c");
	json_ok("d0 fb", "-128", "d0 80");
	json_ok("d0 fb", "100", "d0 64");
	json_ok("d0 fb", "127", "d0 7f");
	json_ok("d0 fb", "128", "cc 80");
	json_ok("d0 fb", "200", "cc c8");
	json_ok("d0 fb", "-129", "d1 ff 7f");
	json_ok("d0 fb", "-200", "d1 ff 38");
	/* int16, int32, int64 */
	json_ok("d1 ff 00", "-1", "d1 ff ff");
	json_ok("d1 ff 00", "32767", "d1 7f ff");
	json_ok("d1 ff 00", "-32769", "d2 ff ff 7f ff");
	json_ok("d2 ff ff ff 00", "-1", "d2 ff ff ff ff");
	json_ok("d2 ff ff ff 00", "5", "d2 00 00 00 05");
	json_ok("d3 ff ff ff ff ff ff ff 00", "-1", "d3 ff ff ff ff ff ff ff ff");
	json_ok("d3 ff ff ff ff ff ff ff 00", "9223372036854775807", "d3 7f ff ff ff ff ff ff ff");
	json_ok("d3 ff ff ff ff ff ff ff 00", "9223372036854775808", "cf 80 00 00 00 00 00 00 00");
	json_ok("d3 ff ff ff ff ff ff ff 00", "-9223372036854775808", "d3 80 00 00 00 00 00 00 00");
	/* fixints have no width to keep */
	json_ok("05", "200", "cc c8");
	json_ok("05", "6", "06");
	json_ok("ff", "-5", "fb");
	json_ok("ff", "-100", "d0 9c");
	/* other kinds replace an integer */
	json_ok("cc 05", "1.5", "cb 3f f8 00 00 00 00 00 00");
	json_ok("cc 05", "1e2", "cb 40 59 00 00 00 00 00 00");
	json_ok("cc 05", "true", "c3");
	json_ok("cc 05", "\"x\"", "a1 78");
	json_ok("cc 05", "null", "c0");
}

/* A float stays a float; float32 while the value is exact in float32. */
Test(encode_json, float_width_kept)
{
	const char *f32 = "ca 3d cc cc cd", *f64 = "cb 3f b9 99 99 99 99 99 9a";

	json_ok(f32, "0.5", "ca 3f 00 00 00");
	json_ok(f32, "0.1", "cb 3f b9 99 99 99 99 99 9a");
	json_ok(f32, "0.10000000149011612", "ca 3d cc cc cd");
	json_ok(f32, "3", "ca 40 40 00 00");
	json_ok(f32, "-3", "ca c0 40 00 00");
	json_ok(f32, "16777216", "ca 4b 80 00 00");
	json_float(f32, "16777217", 0xcb, 16777217.0);
	json_ok(f32, "Infinity", "ca 7f 80 00 00");
	json_ok(f32, "-Infinity", "ca ff 80 00 00");
	json_float(f32, "NaN", 0xca, NAN);
	json_float(f32, "-0.0", 0xca, -0.0);
	json_float(f32, "1e300", 0xcb, 1e300);
	json_float(f32, "1e-50", 0xcb, 1e-50);
	json_float(f32, "3.4028234663852886e38", 0xca, FLT_MAX);
	json_float(f32, "1.401298464324817e-45", 0xca, 0x1p-149);

	json_ok(f64, "0.5", "cb 3f e0 00 00 00 00 00 00");
	json_ok(f64, "3", "cb 40 08 00 00 00 00 00 00");
	json_ok(f64, "-9223372036854775808", "cb c3 e0 00 00 00 00 00 00");
	json_float(f64, "18446744073709551615", 0xcb, 18446744073709551615.0);
	json_float(f64, "NaN", 0xcb, NAN);
	json_ok(f64, "Infinity", "cb 7f f0 00 00 00 00 00 00");
	/* other kinds replace a float */
	json_ok(f32, "true", "c3");
	json_ok(f64, "\"0.5\"", "a3 30 2e 35");
	json_ok(f64, "[1]", "91 01");
}

/* Not JSON where a string was (or nothing yet): the trimmed text. */
Test(encode_json, string_fallback)
{
	const char *relu = "a4 72 65 6c 75";

	json_ok(relu, "tanh\n", "a4 74 61 6e 68");
	json_ok(relu, " \t tanh \r\n\n", "a4 74 61 6e 68");
	json_ok(relu, "two words\n", "a9 74 77 6f 20 77 6f 72 64 73");
	json_ok(relu, "true story", "aa 74 72 75 65 20 73 74 6f 72 79");
	json_ok(relu, "123abc", "a6 31 32 33 61 62 63");
	json_ok(relu, "[1, 2", "a5 5b 31 2c 20 32");
	json_ok(relu, "\"unterminated", "ad 22 75 6e 74 65 72 6d 69 6e 61 74 65 64");
	json_ok(relu, "Infinity war", "ac 49 6e 66 69 6e 69 74 79 20 77 61 72");
	json_ok(relu, "\n", "a0");
	json_ok(relu, "", "a0");
	json_ok(relu, "(?u)\\b\\w\\w+\\b", "ad 28 3f 75 29 5c 62 5c 77 5c 77 2b 5c 62");
	/* JSON is still JSON: a string, or another kind altogether */
	json_ok(relu, "\"tanh\"\n", "a4 74 61 6e 68");
	json_ok(relu, "\" padded \"", "a8 20 70 61 64 64 65 64 20");
	json_ok(relu, "42", "2a");
	json_ok(relu, "null", "c0");
	/* str8 and fixstr olds alike */
	json_ok("d9 01 61", "tanh", "a4 74 61 6e 68");
	/* nothing yet (a new file) */
	json_ok(NULL, "hello world\n", "ab 68 65 6c 6c 6f 20 77 6f 72 6c 64");
	json_ok(NULL, "  ", "a0");
	json_ok(NULL, "5", "05");
	json_ok(NULL, "-", "a1 2d");
	/* a bin holding UTF-8 text stays a bin */
	json_ok("c4 03 61 62 63", "xyz\n", "c4 03 78 79 7a");
	json_ok("c4 03 61 62 63", "\"xyz\"", "c4 03 78 79 7a");
	json_ok("c4 03 61 62 63", "5", "05");
}

Test(encode_json, raw16_string_keeps_the_old_raw_family)
{
	/* An old-spec raw16 string ("da"): no str8 ("d9") for a long string. */
	const char *raw16 = "da 00 03 61 62 63";
	char text[41], want[300];
	size_t w;

	memset(text, 'q', 40);
	text[40] = '\0';
	w = (size_t)sprintf(want, "da 00 28");
	for (int i = 0; i < 40; i++)
		w += (size_t)sprintf(want + w, " 71");
	json_ok(raw16, text, want);
	/* the same as a JSON string */
	char quoted[43];
	sprintf(quoted, "\"%s\"", text);
	json_ok(raw16, quoted, want);
	/* short ones are fixraw = fixstr */
	json_ok(raw16, "xyz", "a3 78 79 7a");
	/* raw32 too */
	json_ok("db 00 00 00 01 61", text, want);
	/* a str8 old value is new-spec: str8 */
	want[1] = '9';
	memmove(want + 3, want + 6, strlen(want + 6) + 1);
	json_ok("d9 01 61", text, want);
	/* an archive with no str8, bin or ext (here: nil) may be old-spec: a
	 * new long string is str16, which both specs read */
	w = (size_t)sprintf(want, "da 00 28");
	for (int i = 0; i < 40; i++)
		w += (size_t)sprintf(want + w, " 71");
	json_ok(NULL, text, want);
}

/* A number at the very end of the text, longer than the parser's 64-byte
 * buffer, is read with strtod on the text itself, which has no NUL: strtod
 * reads past the end (glibc's strtod is not instrumented, so ASan stays
 * silent) and takes in what lies beyond. Here the byte after the 70-byte
 * text "1000...0" (1e69) is a '5', and about 1e70 comes out. In fs/ the
 * bytes after a pending file's content are stale content of the buffer. */
Test(encode_json, long_number_at_end_of_text)
{
	struct mpfs_strbuf out;
	struct mpfs_error err;
	struct tu_doc d, old;
	char text[72];

	memset(text, '0', sizeof(text));
	text[0] = '1';
	text[70] = '5'; /* not part of the text */
	tu_doc_hex(&old, "c0");
	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_json(&old.doc, NULL, text, 70, &out, &err), MPFS_OK);
	decode_out(&d, &out, "1e69");
	cr_assert_eq(d.doc.root.f, 1e69, "%.17g, expected 1e69", d.doc.root.f);
	tu_doc_free(&d);
	tu_doc_free(&old);
	mpfs_strbuf_destroy(&out);
}

/* The same number followed by anything (here a newline) is read right. */
Test(encode_json, long_number_followed_by_text)
{
	char text[80];
	text[0] = '1';
	memset(text + 1, '0', 69);
	text[70] = '\n';
	text[71] = '\0';
	json_float(NULL, text, 0xcb, 1e69);
	text[70] = ']';
	memmove(text + 1, text, 71);
	text[0] = '[';
	text[72] = '\0';
	json_ok(NULL, text, "91 cb 4e 42 8b c8 ab e4 9f 64");
}

/* ---- keys and raw bytes -------------------------------------------------------------- */

Test(encode_misc, keys_bytes_and_empty_map)
{
	struct mpfs_strbuf out;
	struct tu_doc d;

	mpfs_strbuf_init(&out);
	mpfs_encode_key(NULL, (const uint8_t *)"abc", 3, false, &out);
	mpfs_encode_key(NULL, (const uint8_t *)"7", 1, true, &out);
	mpfs_encode_key(NULL, (const uint8_t *)"-5", 2, true, &out);
	mpfs_encode_key(NULL, (const uint8_t *)"300", 3, true, &out);
	mpfs_encode_key(NULL, (const uint8_t *)"300", 3, false, &out);
	mpfs_encode_empty_map(&out);
	expect_bytes(out.p, out.len, "a3 61 62 63 07 fb cd 01 2c a3 33 30 30 80", "keys");
	mpfs_strbuf_destroy(&out);

	/* raw bytes keep the old kind: bin, ext (type kept), str, raw16 */
	static const struct {
		const char *old, *want;
	} cases[] = {
		{"c4 01 00", "c4 03 00 ff 61"},
		{"c5 00 01 00", "c4 03 00 ff 61"},
		{"d5 07 00 00", "c7 03 07 00 ff 61"},
		{"d4 fe 00", "c7 03 fe 00 ff 61"},
		{"a1 ff", "a3 00 ff 61"},
		{"da 00 01 ff", "a3 00 ff 61"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tu_doc_hex(&d, cases[i].old);
		mpfs_strbuf_init(&out);
		mpfs_encode_bytes(&d.doc, &d.doc.root,
				  (const uint8_t *)"\x00\xff"
						   "a",
				  3, &out);
		expect_bytes(out.p, out.len, cases[i].want, cases[i].old);
		mpfs_strbuf_destroy(&out);
		tu_doc_free(&d);
	}
	/* an ext of another length keeps its type */
	tu_doc_hex(&d, "c7 04 05 01 02 03 04");
	mpfs_strbuf_init(&out);
	mpfs_encode_bytes(&d.doc, &d.doc.root, (const uint8_t *)"wxyz", 4, &out);
	struct tu_doc e;
	decode_out(&e, &out, "ext");
	cr_assert_eq(e.doc.root.type, MPFS_EXT);
	cr_assert_eq(e.doc.root.ext_type, 5);
	cr_assert_eq(e.doc.root.len, 4);
	cr_assert(memcmp(mpfs_val_data(&e.doc, &e.doc.root), "wxyz", 4) == 0);
	tu_doc_free(&e);
	mpfs_strbuf_destroy(&out);
	tu_doc_free(&d);
}
