/* codec/decode.c: the rejections (truncation, 0xc1, trailing bytes, depth,
 * huge lengths) with their offsets, memory bounded by the input, error
 * names. */
#define TU_WRAP_ALLOCS
#include "decode_env.h"

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
