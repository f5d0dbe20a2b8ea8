/* codec/json.c: floats as the shortest text that reads back, in the layout of
 * Python's repr; values and strings rendered as JSON. */
#include <criterion/criterion.h>
#include <fenv.h>
#include <float.h>
#include <math.h>

#include "codec/json.h"
#include "testutil.h"

static uint64_t bits(double f)
{
	uint64_t x;
	memcpy(&x, &f, 8);
	return x;
}

static double from_bits(uint64_t x)
{
	double f;
	memcpy(&f, &x, 8);
	return f;
}

/* ---- the float checker ---------------------------------------------------- */

/* Checks mpfs_json_double(f) against the contract, not a table: the text is
 * a JSON-style number in Python repr's layout, reads back to exactly f, and
 * no decimal with one significant digit fewer reads back to f (with shortest
 * false, only the first two). Returns the number of significant digits. */
static int check_double_ex(double f, bool shortest)
{
	char out[MPFS_JSON_DOUBLE_MAX + 8];
	size_t n;
	const char *p;
	char digits[40];
	int nd = 0, ip = 0, exp10, lead0 = 0;
	bool neg, sci;

	memset(out, 0x55, sizeof(out));
	n = mpfs_json_double(f, out);
	cr_assert_lt(n, MPFS_JSON_DOUBLE_MAX, "%a: %zu bytes", f, n);
	cr_assert_eq(strlen(out), n, "%a: returned length %zu, text %s", f, n, out);
	if (isnan(f)) {
		cr_assert_str_eq(out, "NaN");
		return 0;
	}
	if (isinf(f)) {
		cr_assert_str_eq(out, f < 0 ? "-Infinity" : "Infinity");
		return 0;
	}

	/* Syntax: -?D+ (.D+)? (e[+-]DD+)? and nothing else. */
	p = out;
	neg = *p == '-';
	if (neg)
		p++;
	cr_assert_eq(neg, (bool)signbit(f), "%a: sign of %s", f, out);
	cr_assert(*p >= '0' && *p <= '9', "%a: %s", f, out);
	while (*p >= '0' && *p <= '9')
		digits[nd++] = *p++, ip++;
	if (*p == '.') {
		p++;
		cr_assert(*p >= '0' && *p <= '9', "%a: no digit after the point in %s", f, out);
		while (*p >= '0' && *p <= '9')
			digits[nd++] = *p++;
	}
	sci = *p == 'e';
	exp10 = 0;
	if (sci) {
		p++;
		cr_assert(*p == '+' || *p == '-', "%a: exponent sign in %s", f, out);
		const char *e = p + 1;
		cr_assert(strlen(e) >= 2 && strspn(e, "0123456789") == strlen(e),
			  "%a: exponent of %s", f, out);
		cr_assert(strlen(e) == 2 || e[0] != '0', "%a: exponent padded beyond 2 digits: %s",
			  f, out);
		exp10 = atoi(p);
		p += strlen(p);
	}
	cr_assert_eq(*p, '\0', "%a: junk in %s", f, out);

	/* Significant digits, and the decimal exponent of the first. */
	while (lead0 < nd - 1 && digits[lead0] == '0')
		lead0++;
	int sig = nd - lead0;
	while (sig > 1 && digits[lead0 + sig - 1] == '0')
		sig--;
	int first = sci ? exp10 : (digits[0] != '0' ? ip - 1 : -(lead0 - ip + 1));

	/* Layout of Python's repr: fixed notation for exponents -4..15. */
	if (f == 0) {
		cr_assert_str_eq(out, neg ? "-0.0" : "0.0");
		return 1;
	}
	if (first >= -4 && first < 16) {
		cr_assert_not(sci, "%a: %s should be in fixed notation", f, out);
		cr_assert(strchr(out, '.'), "%a: %s lacks a point", f, out);
		cr_assert(ip == 1 || digits[0] != '0', "%a: leading zeros in %s", f, out);
		/* No trailing zeros but one after the point. */
		cr_assert(out[n - 1] != '0' || out[n - 2] == '.', "%a: trailing zero in %s", f,
			  out);
	} else {
		cr_assert(sci, "%a: %s should be in exponent notation", f, out);
		cr_assert_eq(ip, 1, "%a: one digit before the point in %s", f, out);
		cr_assert_neq(digits[0], '0', "%a: %s", f, out);
		cr_assert(nd == 1 || digits[nd - 1] != '0', "%a: trailing zero in %s", f, out);
	}

	/* Reads back to the same bits. */
	cr_assert_eq(bits(strtod(out, NULL)), bits(f), "%a: %s reads back as %a", f, out,
		     strtod(out, NULL));

	/* Shortest: the two decimals of sig-1 digits around f do not read back
	 * to f (any shorter one that did would be one of them). glibc's printf
	 * rounds in the current rounding mode. */
	if (shortest && sig > 1) {
		char lo[48], hi[48];
		fesetround(FE_DOWNWARD);
		snprintf(lo, sizeof(lo), "%.*e", sig - 2, f);
		fesetround(FE_UPWARD);
		snprintf(hi, sizeof(hi), "%.*e", sig - 2, f);
		fesetround(FE_TONEAREST);
		cr_assert_neq(bits(strtod(lo, NULL)), bits(f), "%a: %s is not the shortest: %s", f,
			      out, lo);
		cr_assert_neq(bits(strtod(hi, NULL)), bits(f), "%a: %s is not the shortest: %s", f,
			      out, hi);
	}
	return sig;
}

static int check_double(double f)
{
	return check_double_ex(f, true);
}

static void expect_double(double f, const char *text)
{
	char out[MPFS_JSON_DOUBLE_MAX];
	size_t n = mpfs_json_double(f, out);
	cr_assert_str_eq(out, text, "%a: %s, expected %s", f, out, text);
	cr_assert_eq(n, strlen(text));
	check_double(f);
}

/* ---- floats --------------------------------------------------------------- */

/* What Python's repr() writes for these doubles (given by their bits). */
Test(codec_json, double_matches_python_repr)
{
	static const struct {
		uint64_t bits;
		const char *text;
	} cases[] = {
		{0x3fb999999999999aULL, "0.1"},
		{0x3fc999999999999aULL, "0.2"},
		{0x3fd3333333333333ULL, "0.3"},
		{0x3fd3333333333334ULL, "0.30000000000000004"},
		{0x3fd5555555555555ULL, "0.3333333333333333"},
		{0x3fe5555555555555ULL, "0.6666666666666666"},
		{0x3ff0000000000000ULL, "1.0"},
		{0xbff0000000000000ULL, "-1.0"},
		{0x4059000000000000ULL, "100.0"},
		{0x4059200000000000ULL, "100.5"},
		{0x40f0000000000000ULL, "65536.0"},
		{0x41f0000000000000ULL, "4294967296.0"},
		{0x430c6bf526340000ULL, "1000000000000000.0"},
		{0x430c6bf52633ffffULL, "999999999999999.9"},
		{0x42dc12218377de66ULL, "123456789012345.6"},
		{0x4341c37937e07fffULL, "9999999999999998.0"},
		{0x4340000000000000ULL, "9007199254740992.0"},
		{0x4341c37937e08000ULL, "1e+16"},
		{0x437b69b4ba630f35ULL, "1.2345678901234568e+17"},
		{0x444b1ae4d6e2ef50ULL, "1e+21"},
		{0x4480f0cf064dd592ULL, "1e+22"},
		{0x44b52d02c7e14af6ULL, "1e+23"},
		{0x7e37e43c8800759cULL, "1e+300"},
		{0x7e41eb2d66005835ULL, "1.5e+300"},
		{0x3f50624dd2f1a9fcULL, "0.001"},
		{0x3f1a36e2eb1c432dULL, "0.0001"},
		{0x3f33a92a30553262ULL, "0.00030000000000000003"},
		{0x3ee4f8b588e368f1ULL, "1e-05"},
		{0x3ee9e3abe16fc70dULL, "1.2345e-05"},
		{0x3e7ad7f29abcaf48ULL, "1e-07"},
		{0x3e45798ee2308c3aULL, "1e-08"},
		{0xbe90c6f7a0b5ed8dULL, "-2.5e-07"},
		{0xbe10f7bfe8731f1cULL, "-9.87654321e-10"},
		{0x81a56e1fc2f8f359ULL, "-1e-300"},
		{0x3fe0000000000000ULL, "0.5"},
		{0x3ff8000000000000ULL, "1.5"},
		{0x3ff199999999999aULL, "1.1"},
		{0x405edd2f1a9fbe77ULL, "123.456"},
		{0x40c81cd6c8b43958ULL, "12345.678"},
		{0x400921fb54442d18ULL, "3.141592653589793"},
		{0x4005bf0a8b145769ULL, "2.718281828459045"},
		{0x0000000000000000ULL, "0.0"},
		{0x8000000000000000ULL, "-0.0"},
		{0x0000000000000001ULL, "5e-324"},
		{0x8000000000000001ULL, "-5e-324"},
		{0x0000000000000002ULL, "1e-323"},
		{0x000012688b70e62bULL, "1e-310"},
		{0x000fffffffffffffULL, "2.225073858507201e-308"},
		{0x0010000000000000ULL, "2.2250738585072014e-308"},
		{0x7fefffffffffffffULL, "1.7976931348623157e+308"},
		{0xffefffffffffffffULL, "-1.7976931348623157e+308"},
		/* float32 values widened to double */
		{0x3fb99999a0000000ULL, "0.10000000149011612"},
		{0x3ff19999a0000000ULL, "1.100000023841858"},
		{0x47efffffe0000000ULL, "3.4028234663852886e+38"},
		{0x36a0000000000000ULL, "1.401298464324817e-45"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_double(from_bits(cases[i].bits), cases[i].text);
}

Test(codec_json, double_specials_of_the_brief)
{
	expect_double(0.1, "0.1");
	expect_double(1e-08, "1e-08");
	expect_double(100.0, "100.0");
	expect_double(1e16, "1e+16");
	expect_double(5e-324, "5e-324");
	expect_double(-0.0, "-0.0");
	expect_double(DBL_MAX, "1.7976931348623157e+308");
	expect_double(DBL_MIN, "2.2250738585072014e-308");
	expect_double((double)0.1f, "0.10000000149011612");
	expect_double(INFINITY, "Infinity");
	expect_double(-INFINITY, "-Infinity");
	expect_double(NAN, "NaN");
	expect_double(-NAN, "NaN");
	expect_double(from_bits(0x7ff0000000000001ULL), "NaN"); /* signalling */
	expect_double(from_bits(0xfff8000000000001ULL), "NaN");
	expect_double(from_bits(0x7fffffffffffffffULL), "NaN");
}

Test(codec_json, double_subnormals)
{
	/* Every power of two below DBL_MIN, and every small mantissa. */
	for (int k = -1074; k < -1022; k++) {
		check_double(ldexp(1.0, k));
		check_double(-ldexp(1.0, k));
	}
	for (uint64_t m = 1; m < 4096; m++)
		check_double(from_bits(m));
	for (uint64_t m = 0x000fffffffffffffULL; m > 0x000fffffffffe000ULL; m--)
		check_double(from_bits(m));
}

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

Test(codec_json, random_doubles_round_trip_and_are_shortest, .timeout = 60)
{
	int done = 0;
	while (done < 20000) {
		double f = from_bits(rng());
		if (!isfinite(f))
			continue;
		check_double(f);
		done++;
	}
}

/* Decimals of few digits (what people type: 0.3, 1e-05, 2.5) must come back
 * as those digits, not the 17 of their binary value. */
Test(codec_json, short_decimals_stay_short, .timeout = 60)
{
	for (int i = 0; i < 20000; i++) {
		uint64_t r = rng();
		int digits = 1 + (int)(r % 15);
		long long mant = 1 + (long long)((r >> 8) % 1000000000000000ULL);
		char text[64];

		while (mant >= 10 && snprintf(NULL, 0, "%lld", mant) > digits)
			mant /= 10;
		snprintf(text, sizeof(text), "%lld.0e%d", mant, (int)((r >> 56) % 600) - 300);
		double f = strtod(text, NULL);
		if (!isfinite(f) || f == 0 || fabs(f) < DBL_MIN)
			continue; /* subnormals may need fewer digits than typed */
		int sig = check_double(f);
		cr_assert_leq(sig, snprintf(NULL, 0, "%lld", mant), "%s came back with %d digits",
			      text, sig);
	}
}

Test(codec_json, powers_of_two_round_trip)
{
	for (int k = -1074; k < 1024; k++) {
		check_double_ex(ldexp(1.0, k), false);
		check_double_ex(-ldexp(1.0, k), false);
	}
}

/* A power of two has a narrower gap below it than above, so the shortest
 * decimal that reads back may lie above it while the nearest decimal of that
 * length lies below and does not read back. Python prints 2**-24 as
 * 5.960464477539063e-08 (16 digits); 17 digits are not the shortest. */
Test(codec_json, powers_of_two_are_shortest)
{
	expect_double(0x1p-24, "5.960464477539063e-08");
	expect_double(0x1p-44, "5.684341886080802e-14");
	expect_double(0x1p89, "6.189700196426902e+26");
	expect_double(0x1p-1017, "7.120236347223045e-307");
	for (int k = -1074; k < 1024; k++)
		check_double(ldexp(1.0, k));
}

/* ---- rendering values ------------------------------------------------------- */

/* Renders the single value in hex (after any prefix already in out). */
static char *render_hex(const char *hex)
{
	struct tb b = {0};
	struct mpfs_doc doc;
	struct mpfs_error err;
	struct mpfs_strbuf out;
	uint8_t *buf;
	char *s;

	tb_hex(&b, hex);
	buf = tu_dup(b.p, b.len);
	cr_assert_eq(mpfs_doc_init(&doc, buf, b.len, &err), MPFS_OK, "%s: %s", hex, err.msg);
	tb_free(&b);
	mpfs_strbuf_init(&out);
	mpfs_json_render(&doc, &doc.root, &out);
	cr_assert_not(out.oom);
	cr_assert_not_null(out.p);
	cr_assert_eq(strlen(out.p), out.len, "%s: a NUL inside the JSON", hex);
	s = strdup(out.p);
	mpfs_strbuf_destroy(&out);
	mpfs_doc_destroy(&doc);
	free(buf);
	return s;
}

static void expect_render(const char *hex, const char *json)
{
	char *s = render_hex(hex);
	cr_assert_str_eq(s, json, "%s: %s, expected %s", hex, s, json);
	free(s);
}

Test(codec_json, renders_scalars)
{
	expect_render("c0", "null");
	expect_render("c2", "false");
	expect_render("c3", "true");
	expect_render("00", "0");
	expect_render("7f", "127");
	expect_render("ff", "-1");
	expect_render("d0 80", "-128");
	expect_render("d0 05", "5");
	expect_render("cd 30 39", "12345");
	expect_render("cf ff ff ff ff ff ff ff ff", "18446744073709551615");
	expect_render("cf 80 00 00 00 00 00 00 00", "9223372036854775808");
	expect_render("d3 80 00 00 00 00 00 00 00", "-9223372036854775808");
	expect_render("d3 7f ff ff ff ff ff ff ff", "9223372036854775807");
	expect_render("ca 3d cc cc cd", "0.10000000149011612"); /* float32 0.1 */
	expect_render("ca 3f 80 00 00", "1.0");
	expect_render("ca 7f c0 00 00", "NaN");
	expect_render("ca ff 80 00 00", "-Infinity");
	expect_render("cb 3f 1a 36 e2 eb 1c 43 2d", "0.0001");
	expect_render("cb 3e 45 79 8e e2 30 8c 3a", "1e-08");
	expect_render("cb 7f f0 00 00 00 00 00 00", "Infinity");
	expect_render("cb 80 00 00 00 00 00 00 00", "-0.0");
}

Test(codec_json, renders_string_escapes)
{
	expect_render("a0", "\"\"");
	expect_render("a4 72 65 6c 75", "\"relu\"");
	expect_render("a3 61 22 62", "\"a\\\"b\"");
	expect_render("a3 61 5c 62", "\"a\\\\b\"");
	expect_render("a3 61 2f 62", "\"a/b\""); /* '/' as is */
	expect_render("a3 61 27 62", "\"a'b\"");
	expect_render("a1 0a", "\"\\n\"");
	expect_render("a1 0d", "\"\\r\"");
	expect_render("a1 09", "\"\\t\"");
	expect_render("a1 08", "\"\\b\"");
	expect_render("a1 0c", "\"\\f\"");
	expect_render("a1 00", "\"\\u0000\"");
	expect_render("a1 01", "\"\\u0001\"");
	expect_render("a1 0b", "\"\\u000b\"");
	expect_render("a1 1b", "\"\\u001b\"");
	expect_render("a1 1f", "\"\\u001f\"");
	expect_render("a1 7f", "\"\\u007f\"");
	expect_render("a1 20", "\" \"");
	expect_render("a1 7e", "\"~\"");
	/* h é l l o space " q " \n, as in edge_values.mpk */
	expect_render("ab 68 c3 a9 6c 6c 6f 20 22 71 22 0a", "\"h\xc3\xa9llo \\\"q\\\"\\n\"");
	/* every width of str renders the same */
	expect_render("d9 02 6f 6b", "\"ok\"");
	expect_render("da 00 02 6f 6b", "\"ok\"");
	expect_render("db 00 00 00 02 6f 6b", "\"ok\"");
}

Test(codec_json, renders_utf8_as_is)
{
	static const char *const texts[] = {
		"h\xc3\xa9llo",
		"\xe2\x9d\xa4",
		"\xf0\x9f\x8d\xba",
		"\xd0\x9a\xd0\xb8\xd1\x80\xd0\xb8\xd0\xbb\xd0\xbb\xd0\xb8\xd1\x86\xd0\xb0",
		"\xe3\x81\xb2\xe3\x82\x89\xe3\x81\x8c\xe3\x81\xaa",
		"\xf4\x8f\xbf\xbf",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct tb b = {0};
		char hex[256] = "", *s, want[128];
		tb_str(&b, texts[i]);
		for (size_t k = 0; k < b.len; k++)
			snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex), "%02x", b.p[k]);
		tb_free(&b);
		s = render_hex(hex);
		snprintf(want, sizeof(want), "\"%s\"", texts[i]);
		cr_assert_str_eq(s, want);
		free(s);
	}
}

/* Bytes that are not text come out one \u00XX per byte, so that nothing
 * fails; bin holding UTF-8 renders as a string. */
Test(codec_json, renders_bytes)
{
	expect_render("a2 ff 00", "\"\\u00ff\\u0000\"");    /* str, not UTF-8 */
	expect_render("c4 02 00 ff", "\"\\u0000\\u00ff\""); /* bin, not UTF-8 */
	expect_render("c4 03 61 62 63", "\"abc\"");	    /* bin, UTF-8 */
	expect_render("c4 00", "\"\"");
	expect_render("d4 05 41", "\"\\u0041\""); /* ext payload */
	expect_render("c7 00 01", "\"\"");
	expect_render("d6 ff 5a 4a f6 a5", "\"\\u005a\\u004a\\u00f6\\u00a5\"");
}

Test(codec_json, renders_lists_and_maps)
{
	expect_render("90", "[]");
	expect_render("80", "{}");
	expect_render("91 01", "[1]");
	expect_render("95 01 cb 40 04 00 00 00 00 00 00 a1 78 c0 c3",
		      "[1, 2.5, \"x\", null, true]");
	expect_render("94 01 a3 74 77 6f cb 40 0c 00 00 00 00 00 00 c0", "[1, \"two\", 3.5, null]");
	expect_render("92 92 01 02 91 03", "[[1, 2], [3]]");
	expect_render("92 92 a1 61 01 92 a1 62 02", "[[\"a\", 1], [\"b\", 2]]");
	expect_render("91 90", "[[]]");
	expect_render("91 80", "[{}]");
	expect_render("82 a1 61 01 a1 62 92 01 02", "{\"a\": 1, \"b\": [1, 2]}");
	expect_render("81 a1 61 81 a1 62 90", "{\"a\": {\"b\": []}}");
	/* Keys that are not strings are written as the JSON of the key, quoted. */
	expect_render("82 00 cb 3f f0 00 00 00 00 00 00 01 cb 40 04 00 00 00 00 00 00",
		      "{\"0\": 1.0, \"1\": 2.5}");
	expect_render("82 fe c0 c3 01", "{\"-2\": null, \"true\": 1}");
	expect_render("81 c4 01 6b 01", "{\"k\": 1}"); /* bin key */
	/* A float32 list keeps the widened values. */
	expect_render("92 ca 3d cc cc cd ca 3f 80 00 00", "[0.10000000149011612, 1.0]");
}

Test(codec_json, render_appends)
{
	struct mpfs_doc doc;
	struct mpfs_error err;
	struct mpfs_strbuf out;
	static const uint8_t buf[] = {0x92, 0x01, 0x02};

	cr_assert_eq(mpfs_doc_init(&doc, buf, sizeof(buf), &err), MPFS_OK);
	mpfs_strbuf_init(&out);
	mpfs_strbuf_puts(&out, "x=");
	mpfs_json_render(&doc, &doc.root, &out);
	mpfs_json_render(&doc, &doc.root, &out);
	cr_assert_str_eq(out.p, "x=[1, 2][1, 2]");
	mpfs_strbuf_destroy(&out);
	mpfs_doc_destroy(&doc);
}

/* Python's json module reads back every string we render, as the same text:
 * each ASCII byte alone, and mixed UTF-8. */
Test(codec_json, python_reads_rendered_strings)
{
	char *dir = tu_temp_dir(), *path, *cmd;
	FILE *f;

	cr_assert(asprintf(&path, "%s/strings.tsv", dir) > 0);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int c = 0; c < 0x80; c++) {
		char hex[16];
		snprintf(hex, sizeof(hex), "a1 %02x", c);
		char *s = render_hex(hex);
		fprintf(f, "%02x\t%s\n", c, s);
		free(s);
	}
	static const char *const mixed[] = {
		"aa 68 c3 a9 22 5c 0a 09 e2 9d a4",
		"a8 00 1f 7f 2f f0 9f 8d ba",
		"ac 6c 69 6e 65 0d 0a 62 72 65 61 6b 21",
	};
	for (size_t i = 0; i < sizeof(mixed) / sizeof(mixed[0]); i++) {
		char *s = render_hex(mixed[i]);
		fprintf(f, "%s\t%s\n", mixed[i] + 3, s);
		free(s);
	}
	fclose(f);
	cr_assert(asprintf(&cmd,
			   "/usr/bin/python3 -c 'import json,sys\n"
			   "for line in open(sys.argv[1], encoding=\"utf-8\"):\n"
			   "    h, j = line.rstrip(\"\\n\").split(\"\\t\")\n"
			   "    want = bytes.fromhex(h).decode(\"utf-8\")\n"
			   "    got = json.loads(j)\n"
			   "    assert got == want, (h, j, got)\n' '%s'",
			   path) > 0);
	cr_assert_eq(tu_run(cmd), 0, "python3 rejected a rendered string (see above)");
	free(cmd);
	free(path);
	tu_rm_rf(dir);
	free(dir);
}
