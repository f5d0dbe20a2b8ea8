/* codec/encode.c: arrays encoded as nested lists or compact maps (widths,
 * shapes, refusals, reading back as written). Produced bytes are checked
 * exactly and decoded again with mpfs_doc_init. */
#include "encode_env.h"

/* ---- arrays ------------------------------------------------------------------------------ */

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
