/* codec/encode.c, codec/jsonparse.c and mpfs_npy_parse: what the write side
 * turns user content into. JSON text to MsgPack (every form, refusals with
 * their byte offset, the old value's width and family kept), NPY files
 * parsed (versions, Fortran order, broken headers), arrays encoded as nested
 * lists or compact maps, and whole archives re-encoded with edits, copying
 * what no edit touches. Produced bytes are checked exactly and decoded again
 * with mpfs_doc_init. */
#define TU_WRAP_ALLOCS /* linked with --wrap=malloc,... (tests/meson.build) */
#include <criterion/criterion.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>

#include "codec/array.h"
#include "codec/encode.h"
#include "codec/npy.h"
#include "testutil.h"

/* ---- helpers --------------------------------------------------------------------- */

/* Bytes as hex for messages (one of four rotating static buffers). */
static const char *hexs(const void *p, size_t n)
{
	static char bufs[4][1024];
	static int k;
	char *o = bufs[k++ % 4];
	size_t i, w = 0;
	for (i = 0; i < n && w + 4 < sizeof(bufs[0]); i++)
		w += (size_t)sprintf(o + w, "%s%02x", i ? " " : "", ((const uint8_t *)p)[i]);
	if (i < n)
		strcpy(o + w, "...");
	else
		o[w] = '\0';
	return o;
}

static void expect_bytes(const void *got, size_t n, const char *want_hex, const char *what)
{
	struct tb w = {0};
	tb_hex(&w, want_hex);
	cr_assert(n == w.len && memcmp(got, w.p, n) == 0, "%s: got [%s], expected [%s]", what,
		  hexs(got, n), hexs(w.p, w.len));
	tb_free(&w);
}

/* out must hold exactly one MsgPack value; decoded into d. */
static void decode_out(struct tu_doc *d, const struct mpfs_strbuf *out, const char *what)
{
	struct mpfs_error err;
	cr_assert_not(out->oom, "%s: out of memory", what);
	d->n = out->len;
	d->buf = tu_dup(out->p, out->len);
	cr_assert_eq(mpfs_doc_init(&d->doc, d->buf, d->n, &err), MPFS_OK,
		     "%s: produced [%s] does not decode: %s", what, hexs(out->p, out->len),
		     err.msg);
}

/* A path of string keys below the root of d, "a/b/c". */
static const struct mpfs_val *get(const struct tu_doc *d, const char *path)
{
	const struct mpfs_val *v = &d->doc.root;
	char *copy = strdup(path), *save = NULL;
	for (char *k = strtok_r(copy, "/", &save); k; k = strtok_r(NULL, "/", &save)) {
		v = mpfs_map_get(&d->doc, v, k);
		cr_assert_not_null(v, "no %s (of %s)", k, path);
	}
	free(copy);
	return v;
}

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

/* ---- NPY files ------------------------------------------------------------------------- */

/* An NPY file of version major.0: header dict padded with spaces and a
 * newline to a multiple of 64 bytes, then n data bytes. */
static void npy_build(struct tb *b, int major, const char *dict, const void *data, size_t n)
{
	size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
	size_t total = (pre + dl + 1 + 63) / 64 * 64, hl = total - pre;

	tb_put(b, "\x93NUMPY", 6);
	tb_byte(b, (uint8_t)major);
	tb_byte(b, 0);
	for (size_t i = 0; i < pre - 8; i++)
		tb_byte(b, (uint8_t)(hl >> 8 * i));
	tb_put(b, dict, dl);
	while (b->len < total - 1)
		tb_byte(b, ' ');
	tb_byte(b, '\n');
	tb_put(b, data, n);
}

struct npy {
	uint8_t *buf;
	size_t len;
	struct mpfs_array a;
	const uint8_t *data;
	uint8_t *copy;
	struct mpfs_error err;
	enum mpfs_codec_err rc;
};

/* Parses b (freed) from an exact-size heap copy. */
static void npy_parse(struct npy *p, struct tb *b)
{
	memset(p, 0, sizeof(*p));
	p->buf = tu_dup(b->p, b->len);
	p->len = b->len;
	tb_free(b);
	p->copy = (uint8_t *)&p->len; /* must be set */
	p->rc = mpfs_npy_parse(p->buf, p->len, &p->a, &p->data, &p->copy, &p->err);
	if (p->rc)
		p->copy = NULL;
}

static void npy_free(struct npy *p)
{
	free(p->copy);
	free(p->buf);
}

static void expect_shape(const struct mpfs_array *a, const char *descr, const char *shape)
{
	char s[256];
	mpfs_array_shape_str(a, s, sizeof(s));
	cr_assert_str_eq(a->descr, descr);
	cr_assert_str_eq(s, shape);
	uint64_t count = 1;
	for (unsigned d = 0; d < a->ndim; d++)
		count *= a->shape[d];
	cr_assert_eq(a->count, count);
	cr_assert_eq(a->nbytes, count * a->itemsize);
}

/* The dict for descr, fortran order and shape text. */
static const char *dict_of(const char *descr, bool fortran, const char *shape)
{
	static char d[256];
	snprintf(d, sizeof(d), "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
		 fortran ? "True" : "False", shape);
	return d;
}

Test(npy_parse, versions_1_2_3_c_order)
{
	double v[6] = {0, 1, 2.5, -3, 4, 5};
	for (int major = 1; major <= 3; major++) {
		struct tb b = {0};
		struct npy p;
		npy_build(&b, major, dict_of("<f8", false, "(2, 3)"), v, sizeof(v));
		npy_parse(&p, &b);
		cr_assert_eq(p.rc, MPFS_OK, "v%d: %s", major, p.err.msg);
		expect_shape(&p.a, "<f8", "2,3");
		cr_assert_eq(p.a.itemsize, 8);
		cr_assert_null(p.copy, "v%d: C order needs no copy", major);
		cr_assert_eq(p.data, p.buf + p.len - sizeof(v), "v%d: data points into the file",
			     major);
		cr_assert_eq((p.data - p.buf) % 64, 0);
		cr_assert(memcmp(p.data, v, sizeof(v)) == 0);
		npy_free(&p);
	}
}

Test(npy_parse, header_forms)
{
	static const struct {
		const char *dict, *descr, *shape;
		size_t nbytes;
	} cases[] = {
		{"{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", "<i4", "3", 12},
		{"{'descr': '<i4', 'fortran_order': False, 'shape': (), }", "<i4", "", 4},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (0,), }", "<f8", "0", 0},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 0, 3), }", "<f8", "2,0,3",
		 0},
		{"{'shape': (2,), 'fortran_order': False, 'descr': '>f8'}", ">f8", "2", 16},
		{"{\"descr\": \"|b1\", \"fortran_order\": False, \"shape\": (4,)}", "|b1", "4", 4},
		{"{'descr':'=u2','fortran_order':False,'shape':(1,2,)}", "<u2", "1,2", 4},
		{"{'descr': '<b1', 'fortran_order': False, 'shape': (1,), }", "|b1", "1", 1},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", "|u1", "5", 5},
		{"{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", "<c16", "1", 16},
		{"{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", "<f2", "3", 6},
		{"{'descr': '<i8', 'fortran_order': True, 'shape': (3,), }", "<i8", "3", 24},
		{"{'descr': '<i8', 'fortran_order': True, 'shape': (), }", "<i8", "", 8},
	};
	uint8_t data[64];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tb b = {0};
		struct npy p;
		npy_build(&b, 1, cases[i].dict, data, cases[i].nbytes);
		npy_parse(&p, &b);
		cr_assert_eq(p.rc, MPFS_OK, "%s: %s", cases[i].dict, p.err.msg);
		expect_shape(&p.a, cases[i].descr, cases[i].shape);
		/* one dimension or none: Fortran order is C order, no copy */
		cr_assert_null(p.copy, "%s", cases[i].dict);
		cr_assert(memcmp(p.data, data, cases[i].nbytes) == 0);
		npy_free(&p);
	}
}

/* A header from mpfs_npy_header reads back as itself. */
Test(npy_parse, own_headers_read_back)
{
	static const char *const descrs[] = {"<f8", "<f4", "|b1", "|i1", "<i8", ">u4", "<c8"};
	for (size_t i = 0; i < sizeof(descrs) / sizeof(descrs[0]); i++)
		for (unsigned nd = 0; nd <= 4; nd++) {
			struct mpfs_array a = {0};
			char h[MPFS_NPY_HEADER_MAX];
			struct tb b = {0};
			struct npy p;

			cr_assert(mpfs_array_parse_dtype((const uint8_t *)descrs[i],
							 strlen(descrs[i]), &a));
			a.ndim = (uint8_t)nd;
			a.count = 1;
			for (unsigned d = 0; d < nd; d++)
				a.count *= a.shape[d] = d + 1;
			a.nbytes = a.count * a.itemsize;
			size_t hn = mpfs_npy_header(&a, h);
			tb_put(&b, h, hn);
			for (uint64_t k = 0; k < a.nbytes; k++)
				tb_byte(&b, (uint8_t)k);
			npy_parse(&p, &b);
			cr_assert_eq(p.rc, MPFS_OK, "%s %u-d: %s", descrs[i], nd, p.err.msg);
			cr_assert_str_eq(p.a.descr, a.descr);
			cr_assert_eq(p.a.ndim, nd);
			cr_assert(memcmp(p.a.shape, a.shape, sizeof(a.shape)) == 0);
			cr_assert_eq(p.a.nbytes, a.nbytes);
			cr_assert_eq(p.data, p.buf + hn);
			npy_free(&p);
		}
}

/* Fortran order (first index fastest) comes out in C order, in a copy. */
Test(npy_parse, fortran_order_2d)
{
	/* a[i][j] = 10 * i + j, shape (2, 3); Fortran order lists a[0][0],
	 * a[1][0], a[0][1], a[1][1], a[0][2], a[1][2]. */
	int32_t f[6] = {0, 10, 1, 11, 2, 12}, c[6] = {0, 1, 2, 10, 11, 12};
	struct tb b = {0};
	struct npy p;

	npy_build(&b, 1, dict_of("<i4", true, "(2, 3)"), f, sizeof(f));
	npy_parse(&p, &b);
	cr_assert_eq(p.rc, MPFS_OK, "%s", p.err.msg);
	expect_shape(&p.a, "<i4", "2,3");
	cr_assert_not_null(p.copy);
	cr_assert_eq(p.data, p.copy);
	for (int k = 0; k < 6; k++) {
		int32_t x;
		memcpy(&x, p.data + 4 * k, 4);
		cr_assert_eq(x, c[k], "element %d: %d, expected %d", k, x, c[k]);
	}
	/* the file itself is untouched */
	cr_assert(memcmp(p.buf + p.len - sizeof(f), f, sizeof(f)) == 0);
	npy_free(&p);
}

Test(npy_parse, fortran_order_3d)
{
	/* a[i][j][k] = 100 i + 10 j + k, shape (2, 3, 4): at Fortran position
	 * i + 2 j + 6 k; in C order at 12 i + 4 j + k. */
	int16_t f[24];
	struct tb b = {0};
	struct npy p;

	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 3; j++)
			for (int k = 0; k < 4; k++)
				f[i + 2 * j + 6 * k] = (int16_t)(100 * i + 10 * j + k);
	npy_build(&b, 2, dict_of("<i2", true, "(2, 3, 4)"), f, sizeof(f));
	npy_parse(&p, &b);
	cr_assert_eq(p.rc, MPFS_OK, "%s", p.err.msg);
	expect_shape(&p.a, "<i2", "2,3,4");
	cr_assert_not_null(p.copy);
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 3; j++)
			for (int k = 0; k < 4; k++) {
				int16_t x;
				memcpy(&x, p.data + 2 * (12 * i + 4 * j + k), 2);
				cr_assert_eq(x, 100 * i + 10 * j + k, "[%d][%d][%d] is %d", i, j, k,
					     x);
			}
	npy_free(&p);

	/* (3, 1, 2) with 8-byte elements, and an empty (0, 3) */
	double g[6], want[6];
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 2; k++) {
			g[i + 3 * k] = 10 * i + k + 0.5;
			want[2 * i + k] = 10 * i + k + 0.5;
		}
	npy_build(&b, 3, dict_of("<f8", true, "(3, 1, 2)"), g, sizeof(g));
	npy_parse(&p, &b);
	cr_assert_eq(p.rc, MPFS_OK, "%s", p.err.msg);
	cr_assert(memcmp(p.data, want, sizeof(want)) == 0);
	npy_free(&p);

	npy_build(&b, 1, dict_of("<f8", true, "(0, 3)"), NULL, 0);
	npy_parse(&p, &b);
	cr_assert_eq(p.rc, MPFS_OK, "%s", p.err.msg);
	cr_assert_eq(p.a.nbytes, 0);
	npy_free(&p);
}

/* Files numpy itself writes: every version, Fortran order, byte orders. */
Test(npy_parse, files_numpy_writes, .timeout = 60)
{
	char *dir = tu_temp_dir(), *cmd;
	cr_assert(
		asprintf(
			&cmd,
			"/usr/bin/python3 -c \"\n"
			"import numpy as np, sys\n"
			"from numpy.lib import format as f\n"
			"d = sys.argv[1]\n"
			"a = (np.arange(24, dtype='<i4') * 3 - 20).reshape(2, 3, 4)\n"
			"for v in (1, 2, 3):\n"
			"    with open(d + '/v%%d.npy' %% v, 'wb') as o: f.write_array(o, a, "
			"version=(v, 0))\n"
			"np.save(d + '/fortran.npy', np.asfortranarray(a))\n"
			"np.save(d + '/t.npy', np.arange(6.0).reshape(2, 3).T)\n"
			"np.save(d + '/be.npy', np.array([1.5, -2.0], dtype='>f8'))\n"
			"np.save(d + '/b.npy', np.array([[True, False]]))\n"
			"np.save(d + '/u8.npy', np.array([2**64 - 1], dtype=np.uint64))\n"
			"np.save(d + '/s.npy', np.float32(2.5))\n"
			"np.save(d + '/obj.npy', np.array(['a', None], dtype=object), "
			"allow_pickle=True)\n"
			"np.save(d + '/u3.npy', np.array(['abc']))\n"
			"np.save(d + '/rec.npy', np.zeros(2, dtype=[('x', '<f8'), ('y', '<i4')]))\n"
			"np.save(d + '/dt.npy', np.array(['2020-01-01'], dtype='datetime64[D]'))\n"
			"\" '%s'",
			dir) > 0);
	cr_assert_eq(tu_run(cmd), 0, "numpy could not write the files");
	free(cmd);

	static const struct {
		const char *name, *descr, *shape;
		enum mpfs_codec_err rc;
		bool copy;
	} cases[] = {
		{"v1", "<i4", "2,3,4", MPFS_OK, false}, {"v2", "<i4", "2,3,4", MPFS_OK, false},
		{"v3", "<i4", "2,3,4", MPFS_OK, false}, {"fortran", "<i4", "2,3,4", MPFS_OK, true},
		{"t", "<f8", "3,2", MPFS_OK, true},	{"be", ">f8", "2", MPFS_OK, false},
		{"b", "|b1", "1,2", MPFS_OK, false},	{"u8", "<u8", "1", MPFS_OK, false},
		{"s", "<f4", "", MPFS_OK, false},	{"obj", NULL, NULL, MPFS_E_DTYPE, false},
		{"u3", "<U3", "1", MPFS_OK, false},	{"rec", NULL, NULL, MPFS_E_ARRAY, false},
		{"dt", "<M8[D]", "1", MPFS_OK, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path;
		struct npy p;
		cr_assert(asprintf(&path, "%s/%s.npy", dir, cases[i].name) > 0);
		memset(&p, 0, sizeof(p));
		p.buf = tu_read_file(path, &p.len);
		free(path);
		p.rc = mpfs_npy_parse(p.buf, p.len, &p.a, &p.data, &p.copy, &p.err);
		if (cases[i].rc) {
			cr_assert(p.rc == MPFS_E_DTYPE || p.rc == MPFS_E_ARRAY, "%s: %d (%s)",
				  cases[i].name, p.rc, p.err.msg);
			free(p.buf);
			continue;
		}
		cr_assert_eq(p.rc, MPFS_OK, "%s: %s", cases[i].name, p.err.msg);
		expect_shape(&p.a, cases[i].descr, cases[i].shape);
		cr_assert_eq(p.copy != NULL, cases[i].copy, "%s: copy", cases[i].name);
		if (cases[i].descr[1] == 'i') /* 3 k - 20 in C order */
			for (int k = 0; k < 24; k++) {
				int32_t x;
				memcpy(&x, p.data + 4 * k, 4);
				cr_assert_eq(x, 3 * k - 20, "%s: element %d is %d", cases[i].name,
					     k, x);
			}
		if (!strcmp(cases[i].name, "t")) { /* arange(6).reshape(2,3).T */
			static const double want[6] = {0, 3, 1, 4, 2, 5};
			cr_assert(memcmp(p.data, want, sizeof(want)) == 0);
		}
		if (!strcmp(cases[i].name, "be"))
			expect_bytes(p.data, 16, "3f f8 00 00 00 00 00 00 c0 00 00 00 00 00 00 00",
				     "be");
		npy_free(&p);
	}
	tu_rm_rf(dir);
	free(dir);
}

static void npy_bad(struct tb *b, enum mpfs_codec_err code, const char *what)
{
	struct npy p;
	npy_parse(&p, b);
	cr_assert_eq(p.rc, code, "%s: %d, expected %d (%s)", what, p.rc, code, p.err.msg);
	cr_assert_eq(p.err.code, code);
	cr_assert(p.err.msg[0], "%s: no message", what);
	cr_assert_leq(p.err.off, p.len, "%s: offset %" PRIu64 " past the file", what, p.err.off);
	npy_free(&p);
}

Test(npy_parse, bad_magic_and_version)
{
	struct tb b = {0};
	double x = 1;

	npy_build(&b, 1, dict_of("<f8", false, "(1,)"), &x, 8);
	b.p[5] = 'Z';
	npy_bad(&b, MPFS_E_ARRAY, "NUMPZ");
	npy_build(&b, 1, dict_of("<f8", false, "(1,)"), &x, 8);
	b.p[0] = 0x92;
	npy_bad(&b, MPFS_E_ARRAY, "first byte");
	tb_put(&b, "\x93NUMPY\x01", 7);
	npy_bad(&b, MPFS_E_ARRAY, "7 bytes");
	tb_put(&b, "\x93NUMPY\x01\x00\x00", 9);
	npy_bad(&b, MPFS_E_ARRAY, "9 bytes");
	npy_bad(&b, MPFS_E_ARRAY, "empty");

	static const uint8_t versions[] = {0, 4, 0xff};
	for (size_t i = 0; i < sizeof(versions); i++) {
		npy_build(&b, 1, dict_of("<f8", false, "(1,)"), &x, 8);
		b.p[6] = versions[i];
		struct npy p;
		npy_parse(&p, &b);
		cr_assert_eq(p.rc, MPFS_E_ARRAY, "version %u", versions[i]);
		cr_assert_eq(p.err.off, 6);
		npy_free(&p);
	}
	/* v2 needs 12 bytes of preamble */
	tb_put(&b, "\x93NUMPY\x02\x00\x00\x00\x00", 11);
	npy_bad(&b, MPFS_E_ARRAY, "short v2");
}

Test(npy_parse, header_longer_than_the_file)
{
	struct tb b = {0};
	double x = 1;
	struct npy p;

	npy_build(&b, 1, dict_of("<f8", false, "(1,)"), &x, 8);
	b.p[8] = 0x00, b.p[9] = 0x10; /* 4096 */
	npy_parse(&p, &b);
	cr_assert_eq(p.rc, MPFS_E_ARRAY);
	cr_assert_eq(p.err.off, 8);
	npy_free(&p);

	npy_build(&b, 2, dict_of("<f8", false, "(1,)"), &x, 8);
	b.p[11] = 0x80; /* 2 GiB */
	npy_bad(&b, MPFS_E_ARRAY, "v2 header of 2 GiB");

	/* the header exactly fills the file: no data, one element expected */
	npy_build(&b, 1, dict_of("<f8", false, "(1,)"), NULL, 0);
	npy_bad(&b, MPFS_E_ARRAY, "no data");
}

Test(npy_parse, missing_or_broken_fields)
{
	static const struct {
		const char *dict;
		enum mpfs_codec_err code;
	} cases[] = {
		{"{'fortran_order': False, 'shape': (1,), }", MPFS_E_ARRAY},
		{"{'descr': 5, 'fortran_order': False, 'shape': (1,), }", MPFS_E_ARRAY},
		{"{'descr': '<f8, 'fortran_order': False, 'shape': (1,), }", MPFS_E_DTYPE},
		{"{'descr': '<f8', 'shape': (1,), }", MPFS_E_ARRAY},
		{"{'descr': '<f8', 'fortran_order': 0, 'shape': (1,), }", MPFS_E_ARRAY},
		{"{'descr': '<f8', 'fortran_order': False, }", MPFS_E_ARRAY},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': [1], }", MPFS_E_ARRAY},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", MPFS_E_ARRAY},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (1.5,), }", MPFS_E_ARRAY},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (1,", MPFS_E_ARRAY},
		{"{'descr': '<f8', 'fortran_order': False, 'shape': (", MPFS_E_ARRAY},
		{"{'descr': '<f8', 'fortran_order': False, 'shape'", MPFS_E_ARRAY},
		{"{'descr': '", MPFS_E_DTYPE},
		{"", MPFS_E_ARRAY},
		/* dtypes that are not plain numbers */
		{"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", MPFS_E_DTYPE},
		{"{'descr': '<U0', 'fortran_order': False, 'shape': (1,), }", MPFS_E_DTYPE},
		{"{'descr': '|S0', 'fortran_order': False, 'shape': (1,), }", MPFS_E_DTYPE},
		{"{'descr': '<U268435457', 'fortran_order': False, 'shape': (1,), }", MPFS_E_DTYPE},
		{"{'descr': '<M8[Q]', 'fortran_order': False, 'shape': (1,), }", MPFS_E_DTYPE},
		{"{'descr': '<f32', 'fortran_order': False, 'shape': (1,), }", MPFS_E_DTYPE},
		{"{'descr': '<i3', 'fortran_order': False, 'shape': (1,), }", MPFS_E_DTYPE},
		{"{'descr': '|f8', 'fortran_order': False, 'shape': (1,), }", MPFS_E_DTYPE},
		{"{'descr': '', 'fortran_order': False, 'shape': (1,), }", MPFS_E_DTYPE},
	};
	uint8_t data[8] = {0};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tb b = {0};
		npy_build(&b, 1, cases[i].dict, data, 8);
		npy_bad(&b, cases[i].code, cases[i].dict);
	}
	/* more dimensions than MPFS_MAX_DIMS */
	char dict[512];
	size_t w = (size_t)sprintf(dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (");
	for (int d = 0; d <= MPFS_MAX_DIMS; d++)
		w += (size_t)sprintf(dict + w, "1, ");
	sprintf(dict + w, "), }");
	struct tb b = {0};
	npy_build(&b, 1, dict, data, 8);
	npy_bad(&b, MPFS_E_ARRAY, "33 dimensions");
	/* exactly MPFS_MAX_DIMS is fine */
	w = (size_t)sprintf(dict, "{'descr': '<f8', 'fortran_order': True, 'shape': (");
	for (int d = 0; d < MPFS_MAX_DIMS; d++)
		w += (size_t)sprintf(dict + w, "1, ");
	sprintf(dict + w, "), }");
	npy_build(&b, 1, dict, data, 8);
	struct npy p;
	npy_parse(&p, &b);
	cr_assert_eq(p.rc, MPFS_OK, "%s", p.err.msg);
	cr_assert_eq(p.a.ndim, MPFS_MAX_DIMS);
	npy_free(&p);
}

Test(npy_parse, data_size_must_match)
{
	double v[4] = {1, 2, 3, 4};
	struct tb b = {0};
	struct npy p;

	npy_build(&b, 1, dict_of("<f8", false, "(2, 2)"), v, 31);
	npy_parse(&p, &b);
	cr_assert_eq(p.rc, MPFS_E_ARRAY, "short data");
	cr_assert_eq(p.err.off, p.len - 31, "offset %" PRIu64, p.err.off);
	npy_free(&p);
	npy_build(&b, 1, dict_of("<f8", false, "(2, 2)"), v, 32);
	tb_byte(&b, 0);
	npy_parse(&p, &b);
	cr_assert_eq(p.rc, MPFS_E_ARRAY, "long data");
	npy_free(&p);
	npy_build(&b, 1, dict_of("<f8", true, "(2, 2)"), v, 24);
	npy_bad(&b, MPFS_E_ARRAY, "short Fortran data");
	npy_build(&b, 1, dict_of("<f8", false, "()"), v, 0);
	npy_bad(&b, MPFS_E_ARRAY, "0-d without data");
	npy_build(&b, 1, dict_of("<f8", false, "(0,)"), v, 8);
	npy_bad(&b, MPFS_E_ARRAY, "empty with data");
}

Test(npy_parse, shape_overflow)
{
	static const char *const shapes[] = {
		"(4294967296, 4294967296)",   /* count overflows */
		"(4611686018427387904, 4)",   /* count * itemsize overflows */
		"(2305843009213693952,)",     /* 2^61 * 8 = 2^64 */
		"(99999999999999999999999,)", /* not 64 bits */
		"(18446744073709551615, 2)",  "(0, 18446744073709551616)",
	};
	uint8_t data[8] = {0};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct tb b = {0};
		npy_build(&b, 1, dict_of("<f8", false, shapes[i]), data, 8);
		npy_bad(&b, MPFS_E_ARRAY, shapes[i]);
		npy_build(&b, 1, dict_of("<f8", true, shapes[i]), data, 8);
		npy_bad(&b, MPFS_E_ARRAY, shapes[i]);
	}
	/* numpy's limit counts only the nonzero dimensions: a zero does not
	 * make the others harmless (before, these were read, without data) */
	static const char *const huge[] = {
		"(0, 18446744073709551615)",   "(0, 9223372036854775808)",
		"(1152921504606846976, 0)", /* 2^60 * 8 = 2^63 */
		"(0, 4611686018427387904, 4)", "(3037000500, 0, 3037000500)",
	};
	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		struct tb b = {0};
		npy_build(&b, 1, dict_of("<f8", false, huge[i]), NULL, 0);
		npy_bad(&b, MPFS_E_ARRAY, huge[i]);
		npy_build(&b, 1, dict_of("<f8", true, huge[i]), NULL, 0);
		npy_bad(&b, MPFS_E_ARRAY, huge[i]);
	}
	/* what numpy makes is read: np.empty((10**12, 0)), the largest
	 * nonzero product, and both at once (nbytes 0: no data) */
	static const char *const empty[] = {"(1000000000000, 0)", "(0, 1152921504606846975)",
					    "(1152921504606846975, 0, 1)"};
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		struct tb b = {0};
		struct npy p;
		npy_build(&b, 1, dict_of("<f8", true, empty[i]), NULL, 0);
		npy_parse(&p, &b);
		cr_assert_eq(p.rc, MPFS_OK, "%s: %s", empty[i], p.err.msg);
		cr_assert_eq(p.a.count, 0);
		cr_assert_eq(p.a.nbytes, 0);
		npy_free(&p);
	}
}

/* ---- arrays ------------------------------------------------------------------------------ */

static struct mpfs_array arr(const char *descr, unsigned ndim, const uint64_t *shape)
{
	struct mpfs_array a = {0};
	cr_assert(mpfs_array_parse_dtype((const uint8_t *)descr, strlen(descr), &a), "%s", descr);
	a.ndim = (uint8_t)ndim;
	a.count = 1;
	for (unsigned d = 0; d < ndim; d++)
		a.count *= a.shape[d] = shape[d];
	a.nbytes = a.count * a.itemsize;
	return a;
}

#define SHAPE(...) ((const uint64_t[]){__VA_ARGS__})

/* An old nested array, taken from a real document. */
static struct tu_doc nested_doc;
static struct mpfs_array nested_old;

static void nested_setup(void)
{
	tu_doc_hex(&nested_doc, "92 cb 3f f8 00 00 00 00 00 00 01");
	cr_assert(mpfs_array_nested(&nested_doc.doc.root, &nested_old));
	cr_assert_eq(nested_old.encoding, MPFS_ENC_NESTED);
}

static void nested_teardown(void)
{
	tu_doc_free(&nested_doc);
}

/* a with data must encode as nested lists to exactly want_hex. */
static void nested_is(const struct mpfs_array *a, const void *data, const char *want_hex)
{
	struct mpfs_strbuf out;
	struct mpfs_error err = {0};
	struct tu_doc d;
	char what[64];

	snprintf(what, sizeof(what), "%s, %u-d", a->descr, a->ndim);
	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(&nested_doc.doc, &nested_old, a, data, &out, &err), MPFS_OK,
		     "%s: %s", what, err.msg);
	expect_bytes(out.p, out.len, want_hex, what);
	decode_out(&d, &out, what);
	tu_doc_free(&d);
	mpfs_strbuf_destroy(&out);
}

TestSuite(encode_array, .init = nested_setup, .fini = nested_teardown);

Test(encode_array, nested_bool_and_int64)
{
	static const uint8_t b[3] = {1, 0, 2};
	struct mpfs_array a = arr("|b1", 1, SHAPE(3));
	nested_is(&a, b, "93 c3 c2 c3");

	/* each number in its smallest form, as msgpack-python writes them */
	static const int64_t i8[7] = {INT64_MIN, INT64_MAX, -129, 127, -128, 255, -33};
	a = arr("<i8", 1, SHAPE(7));
	nested_is(
		&a, i8,
		"97 d3 80 00 00 00 00 00 00 00 cf 7f ff ff ff ff ff ff ff d1 ff 7f 7f d0 80 cc ff "
		"d0 df");
}

Test(encode_array, nested_unsigned)
{
	/* above INT64_MAX: uint64, not a negative number; a value that needs
	 * it makes the lists read back as <u8 */
	static const uint64_t u8[3] = {UINT64_MAX, 1ULL << 63, 3};
	struct mpfs_array a = arr("<u8", 1, SHAPE(3));
	nested_is(&a, u8, "93 cf ff ff ff ff ff ff ff ff cf 80 00 00 00 00 00 00 00 03");
}

Test(encode_array, nested_floats)
{
	static const float f4[3] = {1.5f, 0.1f, -0.0f};
	struct mpfs_array a = arr("<f4", 1, SHAPE(3));
	nested_is(&a, f4, "93 ca 3f c0 00 00 ca 3d cc cc cd ca 80 00 00 00");

	static const double f8[3] = {0.1, -2.0, INFINITY};
	a = arr("<f8", 1, SHAPE(3));
	nested_is(&a, f8,
		  "93 cb 3f b9 99 99 99 99 99 9a cb c0 00 00 00 00 00 00 00 cb 7f f0 00 00 00 00 "
		  "00 00");
}

Test(encode_array, nested_big_endian_input)
{
	static const uint8_t f8[16] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0};
	struct mpfs_array a = arr(">f8", 1, SHAPE(2));
	nested_is(&a, f8, "92 cb 3f f8 00 00 00 00 00 00 cb c0 00 00 00 00 00 00 00");

	static const uint8_t f4[4] = {0x3f, 0xc0, 0, 0};
	a = arr(">f4", 1, SHAPE(1));
	nested_is(&a, f4, "91 ca 3f c0 00 00");

	static const uint8_t i8[16] = {0x80, 0,	   0,	 0,    0,    0,	   0,	 0,
				       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
	a = arr(">i8", 1, SHAPE(2));
	nested_is(&a, i8, "92 d3 80 00 00 00 00 00 00 00 fe");

	static const uint8_t u8[8] = {0xff, 0, 0, 0, 0, 0, 1, 2};
	a = arr(">u8", 1, SHAPE(1));
	nested_is(&a, u8, "91 cf ff 00 00 00 00 00 01 02");

	static const uint8_t b1[1] = {1};
	a = arr("|b1", 1, SHAPE(1));
	nested_is(&a, b1, "91 c3");
}

Test(encode_array, nested_shapes)
{
	static const int64_t v[6] = {1, 2, 3, 4, 5, 6};
	struct mpfs_array a = arr("<i8", 2, SHAPE(2, 3));
	nested_is(&a, v, "92 93 01 02 03 93 04 05 06");
	a = arr("<i8", 2, SHAPE(3, 2));
	nested_is(&a, v, "93 92 01 02 92 03 04 92 05 06");
	a = arr("<i8", 3, SHAPE(2, 1, 3));
	nested_is(&a, v, "92 91 93 01 02 03 91 93 04 05 06");
	a = arr("<i8", 4, SHAPE(1, 1, 1, 1));
	nested_is(&a, v, "91 91 91 91 01");
	a = arr("<f8", 1, SHAPE(0));
	nested_is(&a, v, "90");
	a = arr("<f8", 2, SHAPE(2, 0));
	nested_is(&a, v, "92 90 90");

	/* 16 and more elements: array16 */
	int64_t w[16];
	char want[128];
	size_t n = (size_t)sprintf(want, "dc 00 10");
	for (int i = 0; i < 16; i++) {
		w[i] = i;
		n += (size_t)sprintf(want + n, " %02x", i);
	}
	a = arr("<i8", 1, SHAPE(16));
	nested_is(&a, w, want);
}

/* What nested encoding writes reads back as an array of the same values. */
Test(encode_array, nested_round_trip)
{
	double v[12];
	for (int i = 0; i < 12; i++)
		v[i] = i * 1.25 - 3;
	struct mpfs_array a = arr("<f8", 3, SHAPE(2, 3, 2)), b;
	struct mpfs_strbuf out;
	struct mpfs_error err;
	struct tu_doc d;
	double back[12];

	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(&nested_doc.doc, &nested_old, &a, (uint8_t *)v, &out, &err),
		     MPFS_OK);
	decode_out(&d, &out, "round trip");
	cr_assert(mpfs_array_nested(&d.doc.root, &b));
	expect_shape(&b, "<f8", "2,3,2");
	mpfs_array_fill(&d.doc, &b, (uint8_t *)back);
	cr_assert(memcmp(back, v, sizeof(v)) == 0);
	tu_doc_free(&d);
	mpfs_strbuf_destroy(&out);
}

Test(encode_array, nested_refusals)
{
	static const struct {
		const char *descr;
		unsigned ndim;
		enum mpfs_codec_err code;
	} cases[] = {
		{"<c16", 1, MPFS_E_DTYPE},   {"<c8", 1, MPFS_E_DTYPE}, {">c16", 2, MPFS_E_DTYPE},
		{"<f2", 1, MPFS_E_DTYPE},    {"<f8", 0, MPFS_E_ARRAY}, {"|b1", 0, MPFS_E_ARRAY},
		{"<i8", 0, MPFS_E_ARRAY},    {"<U2", 1, MPFS_E_DTYPE}, {"|S3", 2, MPFS_E_DTYPE},
		{"<M8[D]", 1, MPFS_E_DTYPE}, {"<m8", 1, MPFS_E_DTYPE}, {"<f16", 1, MPFS_E_DTYPE},
		{">c32", 1, MPFS_E_DTYPE},
	};
	uint8_t data[64] = {0};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mpfs_array a = arr(cases[i].descr, cases[i].ndim, SHAPE(1, 1));
		struct mpfs_strbuf out;
		struct mpfs_error err = {0};

		mpfs_strbuf_init(&out);
		cr_assert_eq(mpfs_encode_array(&nested_doc.doc, &nested_old, &a, data, &out, &err),
			     cases[i].code, "%s %u-d", cases[i].descr, cases[i].ndim);
		cr_assert_eq(err.code, cases[i].code);
		cr_assert(err.msg[0]);
		cr_assert_eq(out.len, 0, "%s: output written on refusal", cases[i].descr);
		mpfs_strbuf_destroy(&out);
	}
}

/* Nested lists hold numbers and lengths, not a dtype or the dimensions
 * after an empty list (issue 7, item 6b): a write the lists would read
 * back changed is refused, never silently changed. Before, (0, 5) was
 * written as [] and read back (0,), an empty int array read back <f8,
 * and int32 read back int64. */
Test(encode_array, nested_refuses_what_would_read_back_changed)
{
	static const uint8_t data[64];
	static const struct {
		const char *descr;
		unsigned ndim;
		uint64_t shape[3];
		enum mpfs_codec_err code;
		const char *says; /* in the message: what it would read back as */
	} cases[] = {
		/* dimensions after the first zero are lost */
		{"<f8", 2, {0, 5}, MPFS_E_ARRAY, "(0,)"},
		{"<f8", 3, {2, 0, 3}, MPFS_E_ARRAY, "(2, 0)"},
		{"<f8", 2, {0, 0}, MPFS_E_ARRAY, "(0,)"},
		/* an empty list has no dtype: it reads back <f8 */
		{"<i8", 1, {0}, MPFS_E_DTYPE, "<f8"},
		{"|b1", 2, {3, 0}, MPFS_E_DTYPE, "<f8"},
		{"<f4", 1, {0}, MPFS_E_DTYPE, "<f8"},
		{"<u8", 1, {0}, MPFS_E_DTYPE, "<f8"},
		{"<i4", 2, {2, 0}, MPFS_E_DTYPE, "<f8"},
		/* integers read back int64 (uint64 where a value needs it) */
		{"|i1", 1, {2}, MPFS_E_DTYPE, "<i8"},
		{"<i2", 1, {2}, MPFS_E_DTYPE, "<i8"},
		{"<i4", 2, {2, 2}, MPFS_E_DTYPE, "<i8"},
		{">i4", 1, {2}, MPFS_E_DTYPE, "<i8"},
		{"|u1", 1, {2}, MPFS_E_DTYPE, "<i8"},
		{"<u2", 1, {2}, MPFS_E_DTYPE, "<i8"},
		{"<u4", 1, {2}, MPFS_E_DTYPE, "<i8"},
		{"<u8", 1, {2}, MPFS_E_DTYPE, "<i8"}, /* zeros: no value needs uint64 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mpfs_array a = arr(cases[i].descr, cases[i].ndim, cases[i].shape);
		struct mpfs_strbuf out;
		struct mpfs_error err = {0};

		mpfs_strbuf_init(&out);
		cr_assert_eq(mpfs_encode_array(&nested_doc.doc, &nested_old, &a, data, &out, &err),
			     cases[i].code, "case %zu, %s: %d, expected %d", i, cases[i].descr,
			     err.code, cases[i].code);
		cr_assert(strstr(err.msg, cases[i].says), "case %zu: %s", i, err.msg);
		cr_assert_eq(out.len, 0);
		mpfs_strbuf_destroy(&out);
	}

	/* what reads back as written is taken */
	struct mpfs_array a = arr("<f8", 1, SHAPE(0));
	nested_is(&a, data, "90");
	a = arr(">f8", 1, SHAPE(0));
	nested_is(&a, data, "90");
	a = arr("<f8", 2, SHAPE(3, 0));
	nested_is(&a, data, "93 90 90 90");
	a = arr("<f8", 3, SHAPE(1, 2, 0));
	nested_is(&a, data, "91 92 90 90");
}

/* Every dtype and shape, both byte orders: the nested encoding either
 * refuses, writing nothing, or writes lists that read back as the very
 * same array (dtype apart from byte order, shape, little-endian bytes). */
Test(encode_array, nested_reads_back_as_written)
{
	static const char *const dtypes[] = {"|b1", "|i1", "<i2", "<i4", "<i8", ">i8",
					     "|u1", "<u2", "<u4", "<u8", ">u8", "<f2",
					     "<f4", ">f4", "<f8", ">f8", "<c8", ">c16"};
	static const struct {
		unsigned ndim;
		uint64_t shape[4];
	} shapes[] = {
		{0, {0}},	{1, {1}},	   {1, {5}},	   {2, {2, 3}},
		{3, {1, 1, 1}}, {1, {0}},	   {2, {3, 0}},	   {2, {0, 3}},
		{3, {2, 0, 2}}, {4, {2, 2, 2, 0}}, {3, {2, 2, 2}},
	};
	uint8_t data[8 * 16], le[8 * 16], back[8 * 16];
	int taken = 0, refused = 0;

	for (int big = 0; big < 2; big++)
		for (size_t t = 0; t < sizeof(dtypes) / sizeof(dtypes[0]); t++)
			for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
				struct mpfs_array a =
					arr(dtypes[t], shapes[s].ndim, shapes[s].shape);
				struct mpfs_array b;
				struct mpfs_strbuf out;
				struct mpfs_error err = {0};
				struct tu_doc d;
				char what[64], want[64], got[64];

				/* small numbers, and with big: the top bit set (a
				 * uint64 that needs it, negative ints, NaNs) */
				for (size_t i = 0; i < sizeof(data); i++)
					data[i] =
						(uint8_t)(big && i % a.itemsize == 0 ? 0x80 | i
										     : (i * 7) % 3);
				if (a.descr[1] == 'b')
					for (size_t i = 0; i < sizeof(data); i++)
						data[i] &= 1;
				snprintf(what, sizeof(what), "%s, shape %zu, %s", a.descr, s,
					 big ? "big" : "small");
				mpfs_strbuf_init(&out);
				enum mpfs_codec_err rc = mpfs_encode_array(
					&nested_doc.doc, &nested_old, &a, data, &out, &err);
				if (rc) {
					cr_assert(rc == MPFS_E_ARRAY || rc == MPFS_E_DTYPE,
						  "%s: %d", what, rc);
					cr_assert_eq(out.len, 0, "%s", what);
					mpfs_strbuf_destroy(&out);
					refused++;
					continue;
				}
				taken++;
				decode_out(&d, &out, what);
				cr_assert(mpfs_array_nested(&d.doc.root, &b), "%s: not an array",
					  what);
				cr_assert_str_eq(b.descr + 1, a.descr + 1, "%s: reads back %s",
						 what, b.descr);
				mpfs_array_shape_str(&a, want, sizeof(want));
				mpfs_array_shape_str(&b, got, sizeof(got));
				cr_assert_str_eq(got, want, "%s: reads back (%s)", what, got);
				if (a.descr[0] == '>')
					mpfs_array_swap(&a, data, le);
				else
					memcpy(le, data, sizeof(le));
				mpfs_array_fill(&d.doc, &b, back);
				cr_assert(memcmp(back, le, a.nbytes) == 0, "%s: other values",
					  what);
				tu_doc_free(&d);
				mpfs_strbuf_destroy(&out);
			}
	cr_assert_geq(taken, 40);
	cr_assert_geq(refused, 100);
}

/* Hostile shapes through the write path (issue 7, item 7): each is refused
 * at once, with nothing written, however large its declared dimensions;
 * none may loop over a dimension that no data backs. */

/* a (with data, which may be much shorter than a claims: a refusal reads
 * none of it) must be refused by the encoding of old with code. */
static void encode_refused(const struct mpfs_array *old, const struct mpfs_array *a,
			   const void *data, enum mpfs_codec_err code, const char *what)
{
	struct mpfs_strbuf out;
	struct mpfs_error err = {0};

	mpfs_strbuf_init(&out);
	mpfs_strbuf_add(&out, "x", 1); /* a refusal leaves what was there */
	cr_assert_eq(mpfs_encode_array(&nested_doc.doc, old, a, data, &out, &err), code,
		     "%s (%s): %d, expected %d (%s)", what, old ? "nested" : "compact", err.code,
		     code, err.msg);
	cr_assert_eq(err.code, code);
	cr_assert(err.msg[0], "%s: no message", what);
	cr_assert_eq(out.len, 1, "%s: output written on refusal", what);
	mpfs_strbuf_destroy(&out);
}

/* The 128-byte .npy of np.empty((10**12, 0)): before, nested encoding wrote
 * 10^12 empty lists (the mount hung); compact holds it as it is. */
Test(encode_array, zero_size_with_huge_dimensions, .timeout = 10)
{
	struct mpfs_array a = arr("<f8", 2, SHAPE(1000000000000ULL, 0)), b;
	struct mpfs_strbuf out;
	struct mpfs_error err;
	struct tu_doc e;

	encode_refused(&nested_old, &a, NULL, MPFS_E_ARRAY, "(10**12, 0)");
	a = arr("<f8", 3, SHAPE(1000000, 1000000, 0));
	encode_refused(&nested_old, &a, NULL, MPFS_E_ARRAY, "(10**6, 10**6, 0)");
	a = arr("<f8", 2, SHAPE(UINT32_MAX, 0));
	encode_refused(&nested_old, &a, NULL, MPFS_E_ARRAY, "(2**32 - 1, 0)");
	/* the bound on empty lists: the outer one and 4095 inside it fit */
	a = arr("<f8", 2, SHAPE(MPFS_NESTED_EMPTY_LISTS - 1, 0));
	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(&nested_doc.doc, &nested_old, &a, NULL, &out, &err), MPFS_OK,
		     "%s", err.msg);
	cr_assert_eq(out.len, 3 + (MPFS_NESTED_EMPTY_LISTS - 1));
	decode_out(&e, &out, "4095 empty lists");
	cr_assert(mpfs_array_nested(&e.doc.root, &b));
	expect_shape(&b, "<f8", "4095,0");
	tu_doc_free(&e);
	mpfs_strbuf_destroy(&out);
	a = arr("<f8", 2, SHAPE(MPFS_NESTED_EMPTY_LISTS, 0));
	encode_refused(&nested_old, &a, NULL, MPFS_E_ARRAY, "one list too many");
	a = arr("<f8", 3, SHAPE(64, 63, 0)); /* 1 + 64 + 4032 */
	encode_refused(&nested_old, &a, NULL, MPFS_E_ARRAY, "(64, 63, 0)");
	a = arr("<f8", 3, SHAPE(63, 64, 0)); /* 1 + 63 + 4032 */
	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(&nested_doc.doc, &nested_old, &a, NULL, &out, &err), MPFS_OK,
		     "%s", err.msg);
	decode_out(&e, &out, "4096 lists");
	cr_assert(mpfs_array_nested(&e.doc.root, &b));
	expect_shape(&b, "<f8", "63,64,0");
	tu_doc_free(&e);
	mpfs_strbuf_destroy(&out);

	/* compact keeps the shape: a few bytes whatever the dimensions */
	a = arr("<f8", 2, SHAPE(1000000000000ULL, 0));
	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(&nested_doc.doc, NULL, &a, NULL, &out, &err), MPFS_OK, "%s",
		     err.msg);
	cr_assert_lt(out.len, 64);
	decode_out(&e, &out, "compact (10**12, 0)");
	cr_assert_eq(mpfs_array_compact(&e.doc, &e.doc.root, &b, &err), MPFS_OK, "%s", err.msg);
	expect_shape(&b, "<f8", "1000000000000,0");
	tu_doc_free(&e);
	mpfs_strbuf_destroy(&out);
}

/* A MsgPack list holds at most 2^32 - 1 items, a bin 2^32 - 1 bytes. Before,
 * the counts were cut to 32 bits and the data read past its end. The data
 * here is 8 bytes, whatever the shape claims: it must not be read. */
Test(encode_array, dimensions_over_2_32, .timeout = 10)
{
	static const uint8_t data[8];
	struct mpfs_array a = arr("|b1", 1, SHAPE(1ULL << 32));

	encode_refused(&nested_old, &a, data, MPFS_E_ARRAY, "(2**32,) nested");
	encode_refused(NULL, &a, data, MPFS_E_ARRAY, "(2**32,) compact");
	a = arr("<f8", 2, SHAPE(1, 1ULL << 32));
	encode_refused(&nested_old, &a, data, MPFS_E_ARRAY, "(1, 2**32) nested");
	a = arr("<f8", 1, SHAPE(1ULL << 29)); /* 2^32 bytes */
	encode_refused(NULL, &a, data, MPFS_E_ARRAY, "2**32 bytes compact");
	a = arr("<f8", 2, SHAPE(1ULL << 32, 0));
	encode_refused(&nested_old, &a, data, MPFS_E_ARRAY, "(2**32, 0) nested");
}

/* Shapes numpy cannot make (2^63 bytes or more, counting only nonzero
 * dimensions), and an array whose counts disagree with its shape: refused
 * in both encodings rather than trusted by the loops. */
Test(encode_array, shapes_whose_product_overflows, .timeout = 10)
{
	static const uint8_t data[8];
	struct mpfs_array a = arr("<f8", 3, SHAPE(0, 1ULL << 62, 1ULL << 62));
	const struct mpfs_array *olds[] = {&nested_old, NULL};

	for (int k = 0; k < 2; k++) {
		encode_refused(olds[k], &a, data, MPFS_E_ARRAY, "(0, 2**62, 2**62)");
		struct mpfs_array b = arr("<f8", 2, SHAPE(1ULL << 63, 0));
		encode_refused(olds[k], &b, data, MPFS_E_ARRAY, "(2**63, 0)");
		b = arr("|u1", 2, SHAPE(UINT64_MAX, 0));
		encode_refused(olds[k], &b, data, MPFS_E_ARRAY, "(2**64 - 1, 0)");
		b = arr("<f8", 2, SHAPE(1ULL << 32, 1ULL << 32)); /* count wraps to 0 */
		b.count = 0, b.nbytes = 0;
		encode_refused(olds[k], &b, data, MPFS_E_ARRAY, "wrapped count");
		b = arr("<f8", 1, SHAPE(1000));
		b.count = 1, b.nbytes = 8; /* counts that disagree with the shape */
		encode_refused(olds[k], &b, data, MPFS_E_ARRAY, "count 1 for shape (1000,)");
	}
}

/* Compact: an old map keeps its keys (bin here), their order and the kind
 * of each value; type, shape and data get the new array. */
Test(encode_array, compact_keeps_the_old_map)
{
	struct tu_doc d;
	struct mpfs_array old, a, b;
	struct mpfs_strbuf out;
	struct mpfs_error err;
	struct tu_doc e;
	static const int32_t v[6] = {10, -20, 30, -40, 50, -60};

	tu_doc_fixture(&d, "edge_values.mpk");
	cr_assert_eq(mpfs_array_compact(&d.doc, get(&d, "weights/i32"), &old, &err), MPFS_OK);

	/* same dtype, new shape (3, 2) */
	a = arr("<i4", 2, SHAPE(3, 2));
	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(&d.doc, &old, &a, (const uint8_t *)v, &out, &err), MPFS_OK,
		     "%s", err.msg);
	struct tb want = {0};
	tb_hex(&want, "85 c4 02 6e 64 c3 c4 04 74 79 70 65 a3 3c 69 34 c4 04 6b 69 6e 64 c4 00 "
		      "c4 05 73 68 61 70 65 92 03 02 c4 04 64 61 74 61 c4 18");
	tb_put(&want, v, sizeof(v));
	expect_bytes(out.p, out.len, hexs(want.p, want.len), "i32 as (3, 2)");
	tb_free(&want);
	decode_out(&e, &out, "i32");
	cr_assert(mpfs_array_is_compact(&e.doc, &e.doc.root));
	cr_assert_eq(mpfs_array_compact(&e.doc, &e.doc.root, &b, &err), MPFS_OK, "%s", err.msg);
	expect_shape(&b, "<i4", "3,2");
	cr_assert(memcmp(e.buf + b.data_off, v, sizeof(v)) == 0);
	tu_doc_free(&e);
	mpfs_strbuf_destroy(&out);

	/* another dtype and a 0-d shape */
	static const double x = 2.5;
	a = arr("<f8", 0, NULL);
	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(&d.doc, &old, &a, (const uint8_t *)&x, &out, &err), MPFS_OK);
	expect_bytes(out.p, out.len,
		     "85 c4 02 6e 64 c3 c4 04 74 79 70 65 a3 3c 66 38 c4 04 6b 69 6e 64 c4 00 "
		     "c4 05 73 68 61 70 65 90 c4 04 64 61 74 61 c4 08 00 00 00 00 00 00 04 40",
		     "i32 as a 0-d <f8");
	mpfs_strbuf_destroy(&out);

	/* complex is fine in a compact map */
	static const double c[2] = {1, 2};
	a = arr("<c16", 1, SHAPE(1));
	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(&d.doc, &old, &a, (const uint8_t *)c, &out, &err), MPFS_OK);
	decode_out(&e, &out, "c16");
	cr_assert_eq(mpfs_array_compact(&e.doc, &e.doc.root, &b, &err), MPFS_OK, "%s", err.msg);
	expect_shape(&b, "<c16", "1");
	tu_doc_free(&e);
	mpfs_strbuf_destroy(&out);
	tu_doc_free(&d);
}

/* Other spellings: str keys in another order, type as bin, data as str,
 * extra keys, kind absent; a map16 header is copied as it is. */
Test(encode_array, compact_keeps_odd_spellings)
{
	struct tb b = {0};
	struct tu_doc d, e;
	struct mpfs_array old, a, back;
	struct mpfs_strbuf out;
	struct mpfs_error err;
	static const uint16_t v[3] = {1, 2, 0xffff};

	tb_hex(&b, "de 00 05");
	tb_str(&b, "data");
	tb_strn(&b, "\x01\x00", 2);
	tb_str(&b, "extra");
	tb_hex(&b, "d4 07 2a");
	tb_str(&b, "type");
	tb_bin(&b, "<u2", 3);
	tb_str(&b, "shape");
	tb_hex(&b, "91 cc 01");
	tb_str(&b, "nd");
	tb_bool(&b, true);
	tu_doc_tb(&d, &b);
	cr_assert(mpfs_array_is_compact(&d.doc, &d.doc.root));
	cr_assert_eq(mpfs_array_compact(&d.doc, &d.doc.root, &old, &err), MPFS_OK, "%s", err.msg);

	a = arr("<u2", 1, SHAPE(3));
	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(&d.doc, &old, &a, (const uint8_t *)v, &out, &err), MPFS_OK);
	expect_bytes(out.p, out.len,
		     "de 00 05 a4 64 61 74 61 a6 01 00 02 00 ff ff a5 65 78 74 72 61 d4 07 2a "
		     "a4 74 79 70 65 c4 03 3c 75 32 a5 73 68 61 70 65 91 03 a2 6e 64 c3",
		     "odd spellings");
	decode_out(&e, &out, "odd");
	cr_assert_eq(mpfs_array_compact(&e.doc, &e.doc.root, &back, &err), MPFS_OK, "%s", err.msg);
	expect_shape(&back, "<u2", "3");
	cr_assert(memcmp(e.buf + back.data_off, v, 6) == 0);
	tu_doc_free(&e);
	mpfs_strbuf_destroy(&out);
	tu_doc_free(&d);
}

/* Compact arrays of every fixture re-encoded with their own data give
 * back the very same bytes. */
static size_t same_bytes_below(const struct tu_doc *d, const struct mpfs_val *v, const char *name)
{
	size_t seen = 0;
	if (v->type == MPFS_MAP && mpfs_array_is_compact(&d->doc, v)) {
		struct mpfs_array a;
		struct mpfs_error err;
		struct mpfs_strbuf out;
		cr_assert_eq(mpfs_array_compact(&d->doc, v, &a, &err), MPFS_OK);
		cr_assert_eq(a.src, v);
		mpfs_strbuf_init(&out);
		cr_assert_eq(mpfs_encode_array(&d->doc, &a, &a, d->buf + a.data_off, &out, &err),
			     MPFS_OK);
		cr_assert(out.len == v->end - v->off &&
				  memcmp(out.p, d->buf + v->off, out.len) == 0,
			  "%s: compact map at %" PRIu64 " re-encoded as [%s]", name, v->off,
			  hexs(out.p, out.len));
		mpfs_strbuf_destroy(&out);
		return 1;
	}
	if ((v->type == MPFS_MAP || v->type == MPFS_ARRAY) && v->items) {
		uint32_t n = v->type == MPFS_MAP ? 2 * v->len : v->len;
		for (uint32_t i = 0; i < n; i++)
			seen += same_bytes_below(d, &v->items[i], name);
	}
	return seen;
}

Test(encode_array, compact_same_array_same_bytes)
{
	static const char *const names[] = {"edge_values.mpk", "logreg_compact.mpk",
					    "mlp_compact.mpk", "tfidf_compact.mpk"};
	size_t seen = 0;
	for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
		struct tu_doc d;
		tu_doc_fixture(&d, names[f]);
		seen += same_bytes_below(&d, &d.doc.root, names[f]);
		tu_doc_free(&d);
	}
	cr_assert_geq(seen, 10);
}

Test(encode_array, new_compact_map)
{
	static const double v[2] = {1.5, -2};
	struct mpfs_array a = arr("<f8", 1, SHAPE(2)), b;
	struct mpfs_strbuf out;
	struct mpfs_error err;
	struct tu_doc e;

	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(&nested_doc.doc, NULL, &a, (const uint8_t *)v, &out, &err),
		     MPFS_OK);
	expect_bytes(out.p, out.len,
		     "85 a2 6e 64 c3 a4 74 79 70 65 a3 3c 66 38 a4 6b 69 6e 64 c4 00 "
		     "a5 73 68 61 70 65 91 02 a4 64 61 74 61 c4 10 "
		     "00 00 00 00 00 00 f8 3f 00 00 00 00 00 00 00 c0",
		     "new compact");
	decode_out(&e, &out, "new compact");
	cr_assert(mpfs_array_is_compact(&e.doc, &e.doc.root));
	cr_assert_eq(mpfs_array_compact(&e.doc, &e.doc.root, &b, &err), MPFS_OK, "%s", err.msg);
	expect_shape(&b, "<f8", "2");
	tu_doc_free(&e);
	mpfs_strbuf_destroy(&out);

	/* any dtype and shape, 0-d and empty included; big data gets bin32 */
	static const struct {
		const char *descr;
		unsigned ndim;
		uint64_t shape[3];
	} cases[] = {
		{"<c16", 1, {2}}, {"<f2", 2, {2, 2}},	 {"|b1", 0, {0}},
		{"<f8", 1, {0}},  {">i4", 3, {2, 0, 5}}, {"|u1", 1, {70000}},
	};
	uint8_t *data = calloc(1, 70000);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char shape[64];
		a = arr(cases[i].descr, cases[i].ndim, cases[i].shape);
		mpfs_strbuf_init(&out);
		cr_assert_eq(mpfs_encode_array(&nested_doc.doc, NULL, &a, data, &out, &err),
			     MPFS_OK);
		decode_out(&e, &out, cases[i].descr);
		cr_assert_eq(mpfs_array_compact(&e.doc, &e.doc.root, &b, &err), MPFS_OK, "%s: %s",
			     cases[i].descr, err.msg);
		mpfs_array_shape_str(&a, shape, sizeof(shape));
		expect_shape(&b, a.descr, shape);
		tu_doc_free(&e);
		mpfs_strbuf_destroy(&out);
	}
	free(data);
}

/* ---- whole archives ------------------------------------------------------------------- */

static int tb_write(void *ctx, const void *p, size_t n)
{
	tb_put(ctx, p, n);
	return 0;
}

/* Encodes d with the edits; the output must decode (into *e if given). */
static void encode_doc(const struct tu_doc *d, const struct mpfs_edit *ed, size_t n, struct tb *out)
{
	memset(out, 0, sizeof(*out));
	cr_assert_eq(mpfs_encode_doc(&d->doc, ed, n, tb_write, out), 0);
}

/* out must be d's bytes with [off, end) replaced by the hex bytes. */
static void spliced(const struct tb *out, const struct tu_doc *d, uint64_t off, uint64_t end,
		    const char *hex, const char *what)
{
	struct tb w = {0};
	tb_put(&w, d->buf, off);
	tb_hex(&w, hex);
	tb_put(&w, d->buf + end, d->n - end);
	cr_assert(out->len == w.len && memcmp(out->p, w.p, w.len) == 0,
		  "%s: output differs from the input spliced at [%" PRIu64 ", %" PRIu64 ")", what,
		  off, end);
	tb_free(&w);
}

Test(encode_doc, no_edits_copies_every_fixture)
{
	for (size_t i = 0; i < TU_NGOOD; i++) {
		struct tu_doc d;
		struct tb out;
		tu_doc_fixture(&d, tu_good_fixtures[i]);
		encode_doc(&d, NULL, 0, &out);
		cr_assert(out.len == d.n && memcmp(out.p, d.buf, d.n) == 0,
			  "%s: not byte-identical", tu_good_fixtures[i]);
		tb_free(&out);
		tu_doc_free(&d);
	}
	/* odd widths: map16 of 1, array32 of 2, str32, bin32, uint64 of 1, float32 */
	struct tu_doc d;
	struct tb out;
	tu_doc_hex(&d, "de 00 01 db 00 00 00 01 6b dd 00 00 00 03 c6 00 00 00 01 ff "
		       "cf 00 00 00 00 00 00 00 01 ca 3f 80 00 00");
	encode_doc(&d, NULL, 0, &out);
	cr_assert(out.len == d.n && memcmp(out.p, d.buf, d.n) == 0);
	tb_free(&out);
	tu_doc_free(&d);
}

Test(encode_doc, replace_a_scalar)
{
	struct tu_doc d, e;
	struct tb out;
	const struct mpfs_val *v;

	tu_doc_fixture(&d, "edge_values.mpk");
	v = get(&d, "params/f32");
	struct mpfs_edit ed = {.op = MPFS_EDIT_REPLACE,
			       .target = v,
			       .bytes = (const uint8_t *)"\xca\x3f\x00\x00\x00",
			       .len = 5};
	encode_doc(&d, &ed, 1, &out);
	spliced(&out, &d, v->off, v->end, "ca 3f 00 00 00", "params/f32");
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_eq(get(&e, "params/f32")->f, 0.5);
	tu_doc_free(&e);
	tb_free(&out);

	/* by something longer: a list, and a map */
	v = get(&d, "params/none");
	ed = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
				.target = v,
				.bytes = (const uint8_t *)"\x81\xa1x\x92\x01\x02",
				.len = 6};
	encode_doc(&d, &ed, 1, &out);
	spliced(&out, &d, v->off, v->end, "81 a1 78 92 01 02", "params/none");
	tb_free(&out);

	/* two at once, in different maps */
	const struct mpfs_val *w = get(&d, "blob");
	struct mpfs_edit two[2] = {
		{.op = MPFS_EDIT_REPLACE,
		 .target = get(&d, "params/yes"),
		 .bytes = (const uint8_t *)"\xc2",
		 .len = 1},
		{.op = MPFS_EDIT_REPLACE,
		 .target = w,
		 .bytes = (const uint8_t *)"\xc4\x00",
		 .len = 2},
	};
	encode_doc(&d, two, 2, &out);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_eq(get(&e, "params/yes")->b, false);
	cr_assert_eq(get(&e, "blob")->len, 0);
	cr_assert_eq(out.len, d.n - 6);
	tu_doc_free(&e);
	tb_free(&out);

	/* the root itself */
	ed = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
				.target = &d.doc.root,
				.bytes = (const uint8_t *)"\x80",
				.len = 1};
	encode_doc(&d, &ed, 1, &out);
	expect_bytes(out.p, out.len, "80", "root");
	tb_free(&out);
	tu_doc_free(&d);
}

Test(encode_doc, delete_a_map_pair)
{
	struct tu_doc d, e;
	struct tb out;
	const struct mpfs_val *params;

	tu_doc_fixture(&d, "edge_values.mpk");
	params = get(&d, "params");
	cr_assert_eq(params->len, 10);
	/* "nan" is the second pair */
	struct mpfs_edit ed = {.op = MPFS_EDIT_DELETE, .target = params, .index = 1};
	encode_doc(&d, &ed, 1, &out);
	{
		struct tb w = {0};
		tb_put(&w, d.buf, params->off);
		tb_byte(&w, 0x89);
		tb_put(&w, d.buf + params->off + 1, params->items[2].off - params->off - 1);
		tb_put(&w, d.buf + params->items[4].off, d.n - params->items[4].off);
		cr_assert(out.len == w.len && memcmp(out.p, w.p, w.len) == 0, "delete params/nan");
		tb_free(&w);
	}
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_null(mpfs_map_get(&e.doc, get(&e, "params"), "nan"));
	cr_assert_eq(get(&e, "params")->len, 9);
	tu_doc_free(&e);
	tb_free(&out);

	/* the first and the last pair of the root, at once */
	struct mpfs_edit two[2] = {
		{.op = MPFS_EDIT_DELETE, .target = &d.doc.root, .index = 3},
		{.op = MPFS_EDIT_DELETE, .target = &d.doc.root, .index = 0},
	};
	encode_doc(&d, two, 2, &out);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_eq(e.doc.root.len, 2);
	cr_assert(mpfs_val_is(&e.doc, &e.doc.root.items[0], "params"));
	cr_assert(mpfs_val_is(&e.doc, &e.doc.root.items[2], "weights"));
	cr_assert_eq(out.len, d.n - (d.doc.root.items[2].off - d.doc.root.items[0].off) -
				      (d.doc.root.end - d.doc.root.items[6].off));
	tu_doc_free(&e);
	tb_free(&out);

	/* down to nothing */
	const struct mpfs_val *one = get(&d, "weights/u8");
	struct mpfs_edit five[5];
	for (uint32_t i = 0; i < 5; i++)
		five[i] = (struct mpfs_edit){.op = MPFS_EDIT_DELETE, .target = one, .index = i};
	encode_doc(&d, five, 5, &out);
	spliced(&out, &d, one->off, one->end, "80", "weights/u8 emptied");
	tb_free(&out);
	tu_doc_free(&d);
}

/* A materialised list (it holds containers or bins): its items can go. */
Test(encode_doc, delete_an_array_item)
{
	struct tu_doc d, e;
	struct tb out;
	/* {"l": [{"a": 1}, [1, 2], "x", bin 00], "k": 5} */
	tu_doc_hex(&d, "82 a1 6c 94 81 a1 61 01 92 01 02 a1 78 c4 01 00 a1 6b 05");
	const struct mpfs_val *l = get(&d, "l");
	cr_assert_not_null(l->items);
	struct mpfs_edit ed = {.op = MPFS_EDIT_DELETE, .target = l, .index = 1};
	encode_doc(&d, &ed, 1, &out);
	expect_bytes(out.p, out.len, "82 a1 6c 93 81 a1 61 01 a1 78 c4 01 00 a1 6b 05", "l[1]");
	tu_doc_bytes(&e, out.p, out.len);
	tu_doc_free(&e);
	tb_free(&out);

	/* a list of bins (a list directory) */
	tu_doc_free(&d);
	tu_doc_hex(&d, "81 a1 6c 93 c4 01 aa c4 01 bb c4 01 cc");
	l = get(&d, "l");
	cr_assert_not_null(l->items);
	ed = (struct mpfs_edit){.op = MPFS_EDIT_DELETE, .target = l, .index = 0};
	encode_doc(&d, &ed, 1, &out);
	expect_bytes(out.p, out.len, "81 a1 6c 92 c4 01 bb c4 01 cc", "bins[0]");
	tb_free(&out);

	/* array16 of 16 down to 15: the header is re-encoded, smallest form */
	tu_doc_free(&d);
	struct tb b = {0};
	tb_hex(&b, "81 a1 6c dc 00 10");
	for (int i = 0; i < 16; i++)
		tb_hex(&b, "91 00");
	tu_doc_tb(&d, &b);
	ed = (struct mpfs_edit){.op = MPFS_EDIT_DELETE, .target = get(&d, "l"), .index = 15};
	encode_doc(&d, &ed, 1, &out);
	cr_assert_eq(out.len, d.n - 2 - 2);
	cr_assert_eq(out.p[3], 0x9f);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_eq(get(&e, "l")->len, 15);
	tu_doc_free(&e);
	tb_free(&out);
	tu_doc_free(&d);
}

/* A leaf array (scalars only, not materialised by the decoder: items is
 * NULL) is copied whole: a DELETE on it is silently dropped and
 * mpfs_encode_doc still returns 0. Not reachable from fs/ today (a list of
 * numbers is a text file or an array there, never a list directory). */
Test(encode_doc, delete_an_item_of_a_leaf_array)
{
	struct tu_doc d;
	struct tb out;
	tu_doc_hex(&d, "81 a1 6c 93 01 02 03");
	const struct mpfs_val *l = get(&d, "l");
	struct mpfs_edit ed = {.op = MPFS_EDIT_DELETE, .target = l, .index = 1};
	encode_doc(&d, &ed, 1, &out);
	expect_bytes(out.p, out.len, "81 a1 6c 92 01 03", "[1, 2, 3] without [1]");
	tb_free(&out);
	tu_doc_free(&d);
}

Test(encode_doc, insert_into_a_map)
{
	struct tu_doc d, e;
	struct tb out;

	/* into {}, {"a": 1}, at the end; two inserts keep their order */
	tu_doc_hex(&d, "82 a1 65 80 a1 6d 81 a1 61 01");
	struct mpfs_edit ed[3] = {
		{.op = MPFS_EDIT_INSERT,
		 .target = get(&d, "e"),
		 .key = (const uint8_t *)"\xa1k",
		 .key_len = 2,
		 .bytes = (const uint8_t *)"\x07",
		 .len = 1},
		{.op = MPFS_EDIT_INSERT,
		 .target = get(&d, "m"),
		 .key = (const uint8_t *)"\x05",
		 .key_len = 1,
		 .bytes = (const uint8_t *)"\xc3",
		 .len = 1},
		{.op = MPFS_EDIT_INSERT,
		 .target = get(&d, "m"),
		 .key = (const uint8_t *)"\xa1z",
		 .key_len = 2,
		 .bytes = (const uint8_t *)"\x80",
		 .len = 1},
	};
	encode_doc(&d, ed, 3, &out);
	expect_bytes(out.p, out.len, "82 a1 65 81 a1 6b 07 a1 6d 83 a1 61 01 05 c3 a1 7a 80",
		     "inserts");
	tb_free(&out);
	tu_doc_free(&d);

	/* fixmap of 15 -> map16 of 16 */
	struct tb b = {0};
	tb_map(&b, 1);
	tb_str(&b, "m");
	tb_map(&b, 15);
	for (int i = 0; i < 15; i++) {
		char k[4];
		sprintf(k, "k%02d", i);
		tb_str(&b, k);
		tb_int(&b, i);
	}
	tu_doc_tb(&d, &b);
	const struct mpfs_val *m = get(&d, "m");
	cr_assert_eq(d.buf[m->off], 0x8f);
	struct mpfs_edit one = {.op = MPFS_EDIT_INSERT,
				.target = m,
				.key = (const uint8_t *)"\xa3new",
				.key_len = 4,
				.bytes = (const uint8_t *)"\xcc\xff",
				.len = 2};
	encode_doc(&d, &one, 1, &out);
	{
		struct tb w = {0};
		tb_put(&w, d.buf, m->off);
		tb_hex(&w, "de 00 10");
		tb_put(&w, d.buf + m->off + 1, m->end - m->off - 1);
		tb_hex(&w, "a3 6e 65 77 cc ff");
		cr_assert(out.len == w.len && memcmp(out.p, w.p, w.len) == 0,
			  "15 -> 16 pairs: [%s]", hexs(out.p + m->off, 8));
		tb_free(&w);
	}
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_eq(get(&e, "m")->len, 16);
	cr_assert_eq(get(&e, "m/new")->u, 255);
	cr_assert_eq(get(&e, "m/k14")->u, 14);
	tu_doc_free(&e);
	tb_free(&out);

	/* an insert and a delete in one map: count unchanged, header copied */
	struct mpfs_edit swap[2] = {
		{.op = MPFS_EDIT_DELETE, .target = m, .index = 0},
		one,
	};
	encode_doc(&d, swap, 2, &out);
	cr_assert_eq(out.p[m->off], 0x8f);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_null(mpfs_map_get(&e.doc, get(&e, "m"), "k00"));
	cr_assert_eq(get(&e, "m/new")->u, 255);
	tu_doc_free(&e);
	tb_free(&out);
	tu_doc_free(&d);
}

Test(encode_doc, replace_a_key)
{
	struct tu_doc d, e;
	struct tb out;
	const struct mpfs_val *params;

	tu_doc_fixture(&d, "edge_values.mpk");
	params = get(&d, "params");
	const struct mpfs_val *k = &params->items[0]; /* "f32" */
	cr_assert(mpfs_val_is(&d.doc, k, "f32"));
	struct mpfs_edit ed = {.op = MPFS_EDIT_REPLACE,
			       .target = k,
			       .bytes = (const uint8_t *)"\xa5"
							 "float",
			       .len = 6};
	encode_doc(&d, &ed, 1, &out);
	spliced(&out, &d, k->off, k->end, "a5 66 6c 6f 61 74", "key f32 -> float");
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert(mpfs_val_is(&e.doc, &get(&e, "params")->items[0], "float"));
	cr_assert_eq(get(&e, "params/float")->f, get(&d, "params/f32")->f);
	tu_doc_free(&e);
	tb_free(&out);

	/* a key by an integer, inside a compact map with bin keys */
	const struct mpfs_val *i32 = get(&d, "weights/i32");
	ed = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
				.target = &i32->items[4],
				.bytes = (const uint8_t *)"\x07",
				.len = 1};
	encode_doc(&d, &ed, 1, &out);
	spliced(&out, &d, i32->items[4].off, i32->items[4].end, "07", "key kind -> 7");
	tb_free(&out);

	/* rename a key and delete a sibling: position of the rest kept */
	struct mpfs_edit two[2] = {
		{.op = MPFS_EDIT_REPLACE,
		 .target = &params->items[2],
		 .bytes = (const uint8_t *)"\xa1n",
		 .len = 2},
		{.op = MPFS_EDIT_DELETE, .target = params, .index = 0},
	};
	encode_doc(&d, two, 2, &out);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert(mpfs_val_is(&e.doc, &get(&e, "params")->items[0], "n"));
	cr_assert(isnan(get(&e, "params/n")->f));
	tu_doc_free(&e);
	tb_free(&out);
	tu_doc_free(&d);
}

/* A move across maps, as fs does it: delete here, insert there with the
 * value's own bytes. */
Test(encode_doc, move_between_maps)
{
	struct tu_doc d, e;
	struct tb out;

	tu_doc_fixture(&d, "edge_values.mpk");
	const struct mpfs_val *params = get(&d, "params"), *v = get(&d, "params/text");
	const struct mpfs_val *weights = get(&d, "weights");
	struct mpfs_edit ed[2] = {
		{.op = MPFS_EDIT_DELETE, .target = params, .index = 7},
		{.op = MPFS_EDIT_INSERT,
		 .target = weights,
		 .key = (const uint8_t *)"\xa4text",
		 .key_len = 5,
		 .bytes = d.buf + v->off,
		 .len = v->end - v->off},
	};
	encode_doc(&d, ed, 2, &out);
	cr_assert_eq(out.len, d.n);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_null(mpfs_map_get(&e.doc, get(&e, "params"), "text"));
	const struct mpfs_val *t = get(&e, "weights/text");
	cr_assert_eq(t->len, v->len);
	cr_assert(memcmp(e.buf + t->off, d.buf + v->off, v->end - v->off) == 0);
	cr_assert(mpfs_val_is(&e.doc, &get(&e, "weights")->items[8], "text"));
	tu_doc_free(&e);
	tb_free(&out);
	tu_doc_free(&d);
}

/* ---- write failures ------------------------------------------------------------------------ */

struct failing {
	size_t calls, fail_at; /* fail the fail_at-th call (1-based); 0: every one */
	size_t after;	       /* calls made after the failure */
	bool failed;
};

static int failing_write(void *ctx, const void *p, size_t n)
{
	struct failing *f = ctx;
	(void)p, (void)n;
	f->calls++;
	if (f->failed)
		f->after++;
	if (f->fail_at == 0 || f->calls == f->fail_at) {
		f->failed = true;
		return -1;
	}
	return 0;
}

Test(encode_doc, a_failing_write_fails_the_encoding)
{
	struct tu_doc d;
	tu_doc_fixture(&d, "edge_values.mpk");
	const struct mpfs_val *params = get(&d, "params");
	struct mpfs_edit ed[3] = {
		{.op = MPFS_EDIT_DELETE, .target = params, .index = 2},
		{.op = MPFS_EDIT_REPLACE,
		 .target = get(&d, "params/yes"),
		 .bytes = (const uint8_t *)"\xc2",
		 .len = 1},
		{.op = MPFS_EDIT_INSERT,
		 .target = get(&d, "weights"),
		 .key = (const uint8_t *)"\xa1k",
		 .key_len = 2,
		 .bytes = (const uint8_t *)"\x01",
		 .len = 1},
	};
	struct failing f = {0};

	/* every write fails */
	cr_assert_eq(mpfs_encode_doc(&d.doc, NULL, 0, failing_write, &f), -1);
	cr_assert_eq(f.calls, 1);
	f = (struct failing){0};
	cr_assert_eq(mpfs_encode_doc(&d.doc, ed, 3, failing_write, &f), -1);
	cr_assert_eq(f.calls, 1);

	/* count the writes of a good run, then fail each in turn */
	size_t total;
	f = (struct failing){.fail_at = SIZE_MAX};
	cr_assert_eq(mpfs_encode_doc(&d.doc, ed, 3, failing_write, &f), 0);
	total = f.calls;
	cr_assert_gt(total, 5);
	for (size_t k = 1; k <= total; k++) {
		f = (struct failing){.fail_at = k};
		cr_assert_eq(mpfs_encode_doc(&d.doc, ed, 3, failing_write, &f), -1,
			     "write %zu of %zu failing", k, total);
		cr_assert_eq(f.after, 0, "write %zu failed, %zu more writes followed", k, f.after);
	}
	tu_doc_free(&d);
}

/* ---- running out of memory ------------------------------------------------------------------- */

/* mpfs_encode_array in encode_oom needs the nested old array too. */
TestSuite(encode_oom, .init = nested_setup, .fini = nested_teardown);

/* A write callback that allocates nothing (allocations are being counted). */
static uint8_t sink[1 << 16];
static size_t sink_len;

static int sink_write(void *ctx, const void *p, size_t n)
{
	(void)ctx;
	cr_assert_leq(sink_len + n, sizeof(sink));
	memcpy(sink + sink_len, p, n);
	sink_len += n;
	return 0;
}

/* Each allocation fails in turn: mpfs_encode_json then says MPFS_E_NOMEM
 * (or out.oom is set), never a wrong value. */
static void json_oom(const char *text)
{
	struct tu_doc d;
	tu_doc_hex(&d, "c0");
	size_t len = strlen(text);
	char *t = (char *)tu_dup(text, len);
	struct mpfs_strbuf good;
	struct mpfs_error err;

	mpfs_strbuf_init(&good);
	cr_assert_eq(mpfs_encode_json(&d.doc, NULL, t, len, &good, &err), MPFS_OK);
	for (size_t k = 1;; k++) {
		struct mpfs_strbuf out;
		enum mpfs_codec_err rc;

		cr_assert_lt(k, 10000);
		mpfs_strbuf_init(&out);
		tu_track_allocs();
		tu_allocs.fail_at = k;
		rc = mpfs_encode_json(&d.doc, NULL, t, len, &out, &err);
		tu_allocs.on = false;
		if (tu_allocs.calls < k) { /* nothing failed */
			cr_assert_eq(rc, MPFS_OK);
			mpfs_strbuf_destroy(&out);
			break;
		}
		cr_assert(rc == MPFS_E_NOMEM || out.oom,
			  "'%s', allocation %zu failing: %d, produced [%s] instead of [%s]", text,
			  k, rc, hexs(out.p, out.len), hexs(good.p, good.len));
		mpfs_strbuf_destroy(&out);
	}
	mpfs_strbuf_destroy(&good);
	free(t);
	tu_doc_free(&d);
}

Test(encode_oom, json_without_strings)
{
	json_oom("[1, [2.5, [true, null]], {}, [[[[]]]]]");
	json_oom("not json at all, a string");
}

/* The decoded text of a JSON string (or object key) goes to a buffer of its
 * own whose failure is not looked at: with that allocation failing, the
 * string comes out empty (or cut) and the call still returns MPFS_OK, so a
 * commit would store "" for "abc". */
Test(encode_oom, json_strings)
{
	json_oom("\"abc\"");
	json_oom("{\"key\": \"value\"}");
}

Test(encode_oom, arrays_and_documents)
{
	struct tu_doc d;
	tu_doc_fixture(&d, "edge_values.mpk");
	struct mpfs_array old, a = arr("<i4", 2, SHAPE(3, 2)), a8 = arr("<i8", 2, SHAPE(3, 2));
	struct mpfs_error err;
	static const int32_t v[6] = {1, 2, 3, 4, 5, 6};
	static const int64_t v8[6] = {1, 2, 3, 4, 5, 6}; /* nested lists read back int64 */
	cr_assert_eq(mpfs_array_compact(&d.doc, get(&d, "weights/i32"), &old, &err), MPFS_OK);

	for (int which = 0; which < 3; which++)
		for (size_t k = 1;; k++) {
			struct mpfs_strbuf out;
			cr_assert_lt(k, 1000);
			mpfs_strbuf_init(&out);
			tu_track_allocs();
			tu_allocs.fail_at = k;
			enum mpfs_codec_err rc = mpfs_encode_array(
				which == 2 ? &nested_doc.doc : &d.doc,
				which == 0   ? &old
				: which == 1 ? NULL
					     : &nested_old,
				which == 2 ? &a8 : &a,
				which == 2 ? (const void *)v8 : (const void *)v, &out, &err);
			tu_allocs.on = false;
			bool failed = tu_allocs.calls >= k;
			/* before: MPFS_OK with out.oom set, so a commit would store
			 * a cut array */
			cr_assert(!failed || (rc == MPFS_E_NOMEM && err.code == MPFS_E_NOMEM &&
					      out.len == 0),
				  "encoding %d, allocation %zu failing: %d, %zu bytes out", which,
				  k, rc, out.len);
			cr_assert(failed || rc == MPFS_OK, "encoding %d: %s", which, err.msg);
			mpfs_strbuf_destroy(&out);
			if (!failed)
				break;
		}

	/* the re-encoded header of a map whose count changes */
	struct mpfs_edit ed = {.op = MPFS_EDIT_DELETE, .target = get(&d, "params"), .index = 0};
	sink_len = 0;
	tu_track_allocs();
	tu_allocs.fail_at = 1;
	int rc = mpfs_encode_doc(&d.doc, &ed, 1, sink_write, NULL);
	tu_allocs.on = false;
	cr_assert_eq(tu_allocs.calls, 1);
	cr_assert_eq(rc, -1, "out of memory not reported");
	sink_len = 0;
	cr_assert_eq(mpfs_encode_doc(&d.doc, &ed, 1, sink_write, NULL), 0);
	cr_assert_eq(sink_len,
		     d.n - (get(&d, "params")->items[2].off - get(&d, "params")->items[0].off));
	tu_doc_free(&d);
}

/* A string array (numpy.save of str data) stored compact: its dtype and
 * bytes as they are, read back as the same array. */
Test(encode_array, compact_string_array)
{
	struct mpfs_array a = arr("<U2", 1, SHAPE(3)), b;
	uint8_t data[24] = {'a', 0, 0, 0, 'b', 0, 0, 0, 'c', 0, 0, 0};
	struct mpfs_strbuf out;
	struct mpfs_error err = {0};
	struct tu_doc d;

	cr_assert_eq(a.itemsize, 8);
	cr_assert_eq(a.nbytes, 24);
	mpfs_strbuf_init(&out);
	cr_assert_eq(mpfs_encode_array(NULL, NULL, &a, data, &out, &err), MPFS_OK, "%s", err.msg);
	tu_doc_bytes(&d, (const uint8_t *)out.p, out.len);
	cr_assert(mpfs_array_is_compact(&d.doc, &d.doc.root));
	cr_assert_eq(mpfs_array_compact(&d.doc, &d.doc.root, &b, &err), MPFS_OK, "%s", err.msg);
	cr_assert_str_eq(b.descr, "<U2");
	cr_assert_eq(b.nbytes, 24);
	cr_assert(memcmp(d.doc.buf + b.data_off, data, 24) == 0);
	tu_doc_free(&d);
	mpfs_strbuf_destroy(&out);
}
