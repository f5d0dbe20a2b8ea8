/* codec/array.c: the dtype and shape of nested lists, compact msgpack-numpy
 * maps (dtype strings, shapes, sizes), and the bytes mpfs_array_fill writes. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>

#include "codec/array.h"
#include "testutil.h"

/* ---- nested lists ------------------------------------------------------------ */

/* hex must be a nested array of dtype descr and the given shape. */
static void nested_ok(const char *hex, const char *descr, unsigned ndim, const uint64_t *shape)
{
	struct tu_doc d;
	struct mpfs_array a;
	uint64_t count = 1;

	tu_doc_hex(&d, hex);
	cr_assert(mpfs_array_nested(&d.doc.root, &a), "%s: not an array", hex);
	cr_assert_str_eq(a.descr, descr, "%s: dtype %s, expected %s", hex, a.descr, descr);
	cr_assert_eq(a.itemsize, descr[2] - '0');
	cr_assert_eq(a.encoding, MPFS_ENC_NESTED);
	cr_assert_eq(a.src, &d.doc.root);
	cr_assert_eq(a.ndim, ndim, "%s: ndim %u, expected %u", hex, a.ndim, ndim);
	for (unsigned i = 0; i < ndim; i++) {
		cr_assert_eq(a.shape[i], shape[i], "%s: shape[%u] %llu, expected %llu", hex, i,
			     (unsigned long long)a.shape[i], (unsigned long long)shape[i]);
		count *= shape[i];
	}
	cr_assert_eq(a.count, count, "%s: count", hex);
	cr_assert_eq(a.nbytes, count * a.itemsize, "%s: nbytes", hex);
	tu_doc_free(&d);
}

/* hex must not be an array, and *a is left untouched. */
static void nested_no(const char *hex)
{
	struct tu_doc d;
	struct mpfs_array a, before;

	memset(&a, 0xab, sizeof(a));
	before = a;
	tu_doc_hex(&d, hex);
	cr_assert_not(mpfs_array_nested(&d.doc.root, &a), "%s: taken for an array (%s)", hex,
		      a.descr);
	cr_assert(memcmp(&a, &before, sizeof(a)) == 0, "%s: a was written", hex);
	tu_doc_free(&d);
}

#define SHAPE(...) ((const uint64_t[]){__VA_ARGS__})

Test(codec_array, nested_bool)
{
	nested_ok("92 c3 c2", "|b1", 1, SHAPE(2));
	nested_ok("92 92 c3 c2 92 c2 c2", "|b1", 2, SHAPE(2, 2));
}

Test(codec_array, nested_int64)
{
	nested_ok("93 01 02 03", "<i8", 1, SHAPE(3));
	nested_ok("92 01 ff", "<i8", 1, SHAPE(2));
	nested_ok("92 92 01 02 92 03 04", "<i8", 2, SHAPE(2, 2));
	nested_ok("92 92 92 01 02 92 03 04 92 92 05 06 92 07 08", "<i8", 3, SHAPE(2, 2, 2));
	/* every integer width, INT64_MAX included */
	nested_ok("95 d0 80 cd 01 00 d2 80 00 00 00 cf 7f ff ff ff ff ff ff ff d3 80 00 00 00 00 "
		  "00 00 00",
		  "<i8", 1, SHAPE(5));
}

Test(codec_array, nested_uint64_when_a_value_needs_it)
{
	nested_ok("92 cf ff ff ff ff ff ff ff ff 01", "<u8", 1, SHAPE(2));
	nested_ok("92 91 cf 80 00 00 00 00 00 00 00 91 00", "<u8", 2, SHAPE(2, 1));
	/* ... but not with a negative number: no dtype holds both */
	nested_no("92 cf ff ff ff ff ff ff ff ff ff");
	nested_no("92 91 cf 80 00 00 00 00 00 00 00 91 d0 80");
}

Test(codec_array, nested_float64_and_float32)
{
	nested_ok("92 cb 3f f0 00 00 00 00 00 00 cb 40 00 00 00 00 00 00 00", "<f8", 1, SHAPE(2));
	nested_ok("92 01 cb 40 04 00 00 00 00 00 00", "<f8", 1, SHAPE(2)); /* int + float */
	nested_ok("92 ca 3f 80 00 00 ca 40 00 00 00", "<f4", 1, SHAPE(2)); /* all float32 */
	nested_ok("92 92 ca 3f 80 00 00 ca 40 00 00 00 92 ca 3f 80 00 00 ca 40 00 00 00", "<f4", 2,
		  SHAPE(2, 2));
	nested_ok("92 ca 3f 80 00 00 cb 40 00 00 00 00 00 00 00", "<f8", 1, SHAPE(2)); /* f32+f64 */
	nested_ok("92 ca 3f 80 00 00 01", "<f8", 1, SHAPE(2));			       /* f32+int */
	nested_ok("92 cf ff ff ff ff ff ff ff ff cb 3f f0 00 00 00 00 00 00", "<f8", 1, SHAPE(2));
	nested_ok("93 cf ff ff ff ff ff ff ff ff ff cb 3f f0 00 00 00 00 00 00", "<f8", 1,
		  SHAPE(3));
}

Test(codec_array, nested_empty_is_float64)
{
	nested_ok("90", "<f8", 1, SHAPE(0));
	nested_ok("91 90", "<f8", 2, SHAPE(1, 0));
	nested_ok("92 90 90", "<f8", 2, SHAPE(2, 0));
}

Test(codec_array, nested_rejects_ragged_and_mixed)
{
	nested_no("92 92 01 02 91 03"); /* ragged */
	nested_no("92 91 01 92 02 03");
	nested_no("92 91 01 02"); /* a list next to a number */
	nested_no("92 01 91 02");
	nested_no("92 91 91 01 91 02"); /* numbers at different depths */
	nested_no("92 90 91 01");
	nested_no("92 c3 01");			       /* bool + int */
	nested_no("92 c2 cb 3f f0 00 00 00 00 00 00"); /* bool + float */
	nested_no("92 92 c3 c3 92 01 01");
	nested_no("92 01 c0");	  /* nil */
	nested_no("92 01 a1 61"); /* str */
	nested_no("91 c4 01 00"); /* bin */
	nested_no("91 d4 01 00"); /* ext */
	nested_no("91 80");	  /* map */
	nested_no("92 91 01 81 a1 61 01");
	nested_no("80"); /* not a list at all */
	nested_no("01");
	nested_no("a3 61 62 63");
}

Test(codec_array, nested_dimension_limit)
{
	struct tb b = {0};
	struct tu_doc d;
	struct mpfs_array a;

	for (int i = 0; i < MPFS_MAX_DIMS - 1; i++)
		tb_hex(&b, "91");
	tb_hex(&b, "92 01 02");
	tu_doc_tb(&d, &b);
	cr_assert(mpfs_array_nested(&d.doc.root, &a));
	cr_assert_eq(a.ndim, MPFS_MAX_DIMS);
	cr_assert_eq(a.shape[MPFS_MAX_DIMS - 1], 2);
	cr_assert_eq(a.count, 2);
	tu_doc_free(&d);

	for (int i = 0; i < MPFS_MAX_DIMS; i++)
		tb_hex(&b, "91");
	tb_hex(&b, "92 01 02");
	tu_doc_tb(&d, &b);
	cr_assert_not(mpfs_array_nested(&d.doc.root, &a), "33 dimensions");
	tu_doc_free(&d);
}

/* ---- mpfs_array_fill ---------------------------------------------------------- */

/* Fills hex's array into a buffer of exactly nbytes and compares with want. */
static void fill_is(const char *hex, const char *descr, const void *want, size_t n)
{
	struct tu_doc d;
	struct mpfs_array a;
	uint8_t *out;

	tu_doc_hex(&d, hex);
	cr_assert(mpfs_array_nested(&d.doc.root, &a), "%s: not an array", hex);
	cr_assert_str_eq(a.descr, descr, "%s", hex);
	cr_assert_eq(a.nbytes, n, "%s: nbytes %llu, expected %zu", hex,
		     (unsigned long long)a.nbytes, n);
	out = malloc(n ? n : 1);
	mpfs_array_fill(&d.doc, &a, out);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(out[i], ((const uint8_t *)want)[i],
			     "%s: byte %zu is %02x, expected %02x", hex, i, out[i],
			     ((const uint8_t *)want)[i]);
	free(out);
	tu_doc_free(&d);
}

static void le64(uint8_t *p, uint64_t x)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(x >> 8 * i);
}

static void le_f64(uint8_t *p, double f)
{
	uint64_t x;
	memcpy(&x, &f, 8);
	le64(p, x);
}

static void le_f32(uint8_t *p, float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(x >> 8 * i);
}

Test(codec_array, fill_int64_little_endian_c_order)
{
	uint8_t want[32];
	le64(want, 1);
	le64(want + 8, (uint64_t)-2);
	le64(want + 16, 3);
	le64(want + 24, 4);
	fill_is("92 92 01 fe 92 03 04", "<i8", want, 32);

	uint8_t w2[40];
	le64(w2, (uint64_t)-128);
	le64(w2 + 8, 256);
	le64(w2 + 16, (uint64_t)(int64_t)INT32_MIN);
	le64(w2 + 24, INT64_MAX);
	le64(w2 + 32, (uint64_t)INT64_MIN);
	fill_is("95 d0 80 cd 01 00 d2 80 00 00 00 cf 7f ff ff ff ff ff ff ff d3 80 00 00 00 00 00 "
		"00 00",
		"<i8", w2, 40);
}

Test(codec_array, fill_uint64)
{
	uint8_t want[16];
	le64(want, UINT64_MAX);
	le64(want + 8, 1);
	fill_is("92 cf ff ff ff ff ff ff ff ff 01", "<u8", want, 16);
}

Test(codec_array, fill_bool)
{
	fill_is("93 c3 c2 c3", "|b1", "\x01\x00\x01", 3);
	fill_is("92 92 c2 c3 92 c3 c3", "|b1", "\x00\x01\x01\x01", 4);
}

Test(codec_array, fill_float64_converts_integers)
{
	uint8_t want[40];
	le_f64(want, 1.0);
	le_f64(want + 8, 2.5);
	le_f64(want + 16, -3.0);
	le_f64(want + 24, 18446744073709551615.0);
	le_f64(want + 32, -9223372036854775808.0);
	fill_is("95 01 cb 40 04 00 00 00 00 00 00 fd cf ff ff ff ff ff ff ff ff d3 80 00 00 00 00 "
		"00 00 00",
		"<f8", want, 40);
}

Test(codec_array, fill_float32_keeps_the_bits)
{
	uint8_t want[12];
	le_f32(want, 0.1f);
	le_f32(want + 4, 1.0f);
	le_f32(want + 8, -FLT_MAX);
	fill_is("93 ca 3d cc cc cd ca 3f 80 00 00 ca ff 7f ff ff", "<f4", want, 12);
}

Test(codec_array, fill_float32_widened_in_float64)
{
	uint8_t want[16];
	le_f64(want, (double)0.1f);
	le_f64(want + 8, 0.2);
	fill_is("92 ca 3d cc cc cd cb 3f c9 99 99 99 99 99 9a", "<f8", want, 16);
}

Test(codec_array, fill_special_floats)
{
	uint8_t want[32];
	le64(want, 0x7ff8000000000001ULL); /* NaN payload kept */
	le_f64(want + 8, INFINITY);
	le_f64(want + 16, -0.0);
	le_f64(want + 24, 5e-324);
	fill_is("94 cb 7f f8 00 00 00 00 00 01 cb 7f f0 00 00 00 00 00 00 cb 80 00 00 00 00 00 00 "
		"00 cb 00 00 00 00 00 00 00 01",
		"<f8", want, 32);
}

Test(codec_array, fill_empty_writes_nothing)
{
	struct tu_doc d;
	struct mpfs_array a;
	uint8_t out[4] = {0xee, 0xee, 0xee, 0xee};

	tu_doc_hex(&d, "92 90 90");
	cr_assert(mpfs_array_nested(&d.doc.root, &a));
	cr_assert_eq(a.nbytes, 0);
	mpfs_array_fill(&d.doc, &a, out);
	cr_assert_eq(out[0], 0xee);
	tu_doc_free(&d);
}

Test(codec_array, fill_large_matrix)
{
	struct tb b = {0};
	struct tu_doc d;
	struct mpfs_array a;

	tb_arr(&b, 100);
	for (int i = 0; i < 100; i++) {
		tb_arr(&b, 70);
		for (int j = 0; j < 70; j++)
			tb_f64(&b, i * 1000.0 + j + 0.5);
	}
	tu_doc_tb(&d, &b);
	cr_assert(mpfs_array_nested(&d.doc.root, &a));
	cr_assert_eq(a.ndim, 2);
	cr_assert_eq(a.shape[0], 100);
	cr_assert_eq(a.shape[1], 70);
	double *out = malloc(a.nbytes);
	mpfs_array_fill(&d.doc, &a, (uint8_t *)out);
	for (int i = 0; i < 100; i++)
		for (int j = 0; j < 70; j++)
			cr_assert_eq(out[i * 70 + j], i * 1000.0 + j + 0.5);
	free(out);
	tu_doc_free(&d);
}

/* ---- mpfs_array_shape_str ----------------------------------------------------------- */

Test(codec_array, shape_str)
{
	struct mpfs_array a = {.ndim = 2, .shape = {256, 128}};
	char out[MPFS_MAX_DIMS * 21];

	cr_assert_eq(mpfs_array_shape_str(&a, out, sizeof(out)), 7);
	cr_assert_str_eq(out, "256,128");
	a.ndim = 1, a.shape[0] = 10;
	cr_assert_eq(mpfs_array_shape_str(&a, out, sizeof(out)), 2);
	cr_assert_str_eq(out, "10");
	a.shape[0] = 0;
	mpfs_array_shape_str(&a, out, sizeof(out));
	cr_assert_str_eq(out, "0");
	a.ndim = 0;
	cr_assert_eq(mpfs_array_shape_str(&a, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "");

	/* The longest shape fits the documented buffer. */
	a.ndim = MPFS_MAX_DIMS;
	for (int i = 0; i < MPFS_MAX_DIMS; i++)
		a.shape[i] = UINT64_MAX;
	size_t n = mpfs_array_shape_str(&a, out, sizeof(out));
	cr_assert_eq(n, strlen(out));
	cr_assert_eq(n, MPFS_MAX_DIMS * 20 + MPFS_MAX_DIMS - 1);

	/* A small buffer gets a NUL-terminated prefix and its length. */
	a.ndim = 2, a.shape[0] = 256, a.shape[1] = 128;
	for (size_t cap = 1; cap < 9; cap++) {
		char small[9];
		memset(small, 'x', sizeof(small));
		n = mpfs_array_shape_str(&a, small, cap);
		cr_assert_lt(n, cap);
		cr_assert_eq(strlen(small), n, "cap %zu", cap);
		cr_assert(strncmp(small, "256,128", n) == 0, "cap %zu: %s", cap, small);
	}
}

/* ---- compact maps ---------------------------------------------------------------- */

static void key(struct tb *b, bool bin, const char *k)
{
	if (bin)
		tb_bin(b, k, strlen(k));
	else
		tb_str(b, k);
}

/* A msgpack-numpy map: nd, type, kind "", shape, data (n zero bytes). */
static void compact(struct tb *b, bool bin, const char *type, const int64_t *shape, int ndim,
		    size_t n)
{
	uint8_t *data = calloc(1, n + 1);
	tb_map(b, 5);
	key(b, bin, "nd");
	tb_bool(b, true);
	key(b, bin, "type");
	key(b, bin, type);
	key(b, bin, "kind");
	key(b, bin, "");
	key(b, bin, "shape");
	tb_arr(b, (uint32_t)ndim);
	for (int i = 0; i < ndim; i++)
		tb_int(b, shape[i]);
	key(b, bin, "data");
	tb_bin(b, data, n);
	free(data);
}

static enum mpfs_codec_err compact_of(struct tu_doc *d, struct mpfs_array *a,
				      struct mpfs_error *err)
{
	cr_assert(mpfs_array_is_compact(&d->doc, &d->doc.root));
	memset(err, 0, sizeof(*err));
	enum mpfs_codec_err rc = mpfs_array_compact(&d->doc, &d->doc.root, a, err);
	if (rc) {
		cr_assert_eq(err->code, rc);
		cr_assert(err->msg[0], "empty message");
		cr_assert_lt(err->off, d->n, "error offset %llu outside the input",
			     (unsigned long long)err->off);
	}
	return rc;
}

Test(codec_array, compact_str_and_bin_keys)
{
	for (int bin = 0; bin < 2; bin++) {
		struct tb b = {0};
		struct tu_doc d;
		struct mpfs_array a;
		struct mpfs_error err;

		compact(&b, bin, "<f8", (const int64_t[]){2, 3}, 2, 48);
		tu_doc_tb(&d, &b);
		cr_assert_eq(compact_of(&d, &a, &err), MPFS_OK, "%s", err.msg);
		cr_assert_str_eq(a.descr, "<f8");
		cr_assert_eq(a.itemsize, 8);
		cr_assert_eq(a.encoding, MPFS_ENC_COMPACT);
		cr_assert_eq(a.ndim, 2);
		cr_assert_eq(a.shape[0], 2);
		cr_assert_eq(a.shape[1], 3);
		cr_assert_eq(a.count, 6);
		cr_assert_eq(a.nbytes, 48);
		cr_assert_eq(a.src, &d.doc.root);
		cr_assert_eq(a.data_off, d.n - 48, "data_off %llu", (unsigned long long)a.data_off);
		tu_doc_free(&d);
	}
}

Test(codec_array, compact_key_order_kind_absent_and_str_data)
{
	struct tb b = {0};
	struct tu_doc d;
	struct mpfs_array a;
	struct mpfs_error err;

	/* {"data": "abcd", "shape": [4], "type": "|u1", "nd": true} */
	tb_map(&b, 4);
	tb_str(&b, "data");
	tb_str(&b, "abcd");
	tb_str(&b, "shape");
	tb_arr(&b, 1);
	tb_uint(&b, 4);
	tb_str(&b, "type");
	tb_str(&b, "|u1");
	tb_str(&b, "nd");
	tb_bool(&b, true);
	tu_doc_tb(&d, &b);
	cr_assert_eq(compact_of(&d, &a, &err), MPFS_OK, "%s", err.msg);
	cr_assert_str_eq(a.descr, "|u1");
	cr_assert_eq(a.nbytes, 4);
	cr_assert(memcmp(d.buf + a.data_off, "abcd", 4) == 0);
	tu_doc_free(&d);
}

Test(codec_array, compact_zero_d_and_empty)
{
	struct tb b = {0};
	struct tu_doc d;
	struct mpfs_array a;
	struct mpfs_error err;

	compact(&b, false, "<f8", NULL, 0, 8);
	tu_doc_tb(&d, &b);
	cr_assert_eq(compact_of(&d, &a, &err), MPFS_OK, "%s", err.msg);
	cr_assert_eq(a.ndim, 0);
	cr_assert_eq(a.count, 1);
	cr_assert_eq(a.nbytes, 8);
	tu_doc_free(&d);

	compact(&b, false, "<f8", (const int64_t[]){0}, 1, 0);
	tu_doc_tb(&d, &b);
	cr_assert_eq(compact_of(&d, &a, &err), MPFS_OK, "%s", err.msg);
	cr_assert_eq(a.ndim, 1);
	cr_assert_eq(a.count, 0);
	cr_assert_eq(a.nbytes, 0);
	tu_doc_free(&d);

	/* 32 dimensions of 1 */
	int64_t ones[MPFS_MAX_DIMS];
	for (int i = 0; i < MPFS_MAX_DIMS; i++)
		ones[i] = 1;
	compact(&b, false, "<i2", ones, MPFS_MAX_DIMS, 2);
	tu_doc_tb(&d, &b);
	cr_assert_eq(compact_of(&d, &a, &err), MPFS_OK, "%s", err.msg);
	cr_assert_eq(a.ndim, MPFS_MAX_DIMS);
	tu_doc_free(&d);
}

Test(codec_array, compact_dtype_strings)
{
	static const struct {
		const char *in, *descr;
		unsigned size;
	} ok[] = {
		{"<f8", "<f8", 8},
		{"|u1", "|u1", 1},
		{"<i4", "<i4", 4},
		{">f8", ">f8", 8},
		{"=f8", "<f8", 8},
		{"f8", "<f8", 8},
		{"u1", "|u1", 1},
		{"<u1", "|u1", 1},
		{">i1", "|i1", 1},
		{"|b1", "|b1", 1},
		{"b1", "|b1", 1},
		{"<b1", "|b1", 1},
		{"<f2", "<f2", 2},
		{"<f4", "<f4", 4},
		{">f4", ">f4", 4},
		{"<c8", "<c8", 8},
		{"<c16", "<c16", 16},
		{">c16", ">c16", 16},
		{"<u8", "<u8", 8},
		{"<u2", "<u2", 2},
		{"<i2", "<i2", 2},
		{"=i8", "<i8", 8},
		{">u4", ">u4", 4},
		{"i8", "<i8", 8},
		/* strings, as msgpack-numpy writes str and bytes arrays */
		{"<U3", "<U3", 12},
		{">U2", ">U2", 8},
		{"=U1", "<U1", 4},
		{"|U3", "<U3", 12},
		{"U10", "<U10", 40},
		{"<U03", "<U3", 12},
		{"|S5", "|S5", 5},
		{"<S4", "|S4", 4},
		{">S1", "|S1", 1},
		{"S300", "|S300", 300},
		/* datetime64, timedelta64, long double: what msgpack-numpy writes */
		{"<M8[ns]", "<M8[ns]", 8},
		{">m8[10s]", ">m8[10s]", 8},
		{"<M8", "<M8", 8},
		{"=M8[D]", "<M8[D]", 8},
		{"M8[us]", "<M8[us]", 8},
		{"<f16", "<f16", 16},
		{">c32", ">c32", 32},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct tb b = {0};
		struct tu_doc d;
		struct mpfs_array a;
		struct mpfs_error err;

		compact(&b, i % 2, ok[i].in, (const int64_t[]){3}, 1, 3 * ok[i].size);
		tu_doc_tb(&d, &b);
		cr_assert_eq(compact_of(&d, &a, &err), MPFS_OK, "%s: %s", ok[i].in, err.msg);
		cr_assert_str_eq(a.descr, ok[i].descr, "%s: %s", ok[i].in, a.descr);
		cr_assert_eq(a.itemsize, ok[i].size, "%s", ok[i].in);
		cr_assert_eq(a.nbytes, 3 * ok[i].size);
		tu_doc_free(&d);

		/* The same through mpfs_array_parse_dtype. */
		memset(&a, 0, sizeof(a));
		cr_assert(mpfs_array_parse_dtype((const uint8_t *)ok[i].in, strlen(ok[i].in), &a));
		cr_assert_str_eq(a.descr, ok[i].descr);
		cr_assert_eq(a.itemsize, ok[i].size);
	}
}

Test(codec_array, compact_rejects_other_dtypes)
{
	static const struct {
		const char *s;
		size_t n;
	} bad[] = {
		{"O", 1},
		{"|O", 2},
		{"<O8", 3},
		{"<U0", 3},
		{"|S0", 3},
		{"|M8", 3},
		{"<U", 2},
		{"|S", 2},
		{"<U-1", 4},
		{"<U3x", 4},
		{"<U 3", 4},
		{"<U268435457", 11},
		{"<U99999999999", 14},
		{"<u3S", 4},
		{"<m4", 3},
		{"<M8[", 4},
		{"<M8[]", 5},
		{"<M8[Q]", 6},
		{"<M8[D", 5},
		{"<M8[01s]", 8},
		{"<M8[1234567s]", 13},
		{"<M8[s]x", 7},
		{"|V8", 3},
		{"<f3", 3},
		{"<i3", 3},
		{"<u16", 4},
		{"|f8", 3},
		{"|i4", 3},
		{"", 0},
		{"<", 1},
		{"<f", 2},
		{"<f123", 5},
		{"float64", 7},
		{"<b2", 3},
		{"x8", 2},
		{"<c4", 3},
		{"<f32", 4},
		{"<f8\0", 4},
		{"\0f8", 3},
		{"<f 8", 4},
		{"<<f8", 4},
		{"<-8", 3},
		{"<f+8", 4},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tb b = {0};
		struct tu_doc d;
		struct mpfs_array a;
		struct mpfs_error err;
		uint64_t type_off;

		/* {"nd": true, "type": T, "shape": [1], "data": 8 bytes} */
		tb_map(&b, 4);
		tb_str(&b, "nd");
		tb_bool(&b, true);
		tb_str(&b, "type");
		type_off = b.len;
		tb_strn(&b, bad[i].s, bad[i].n);
		tb_str(&b, "shape");
		tb_hex(&b, "91 01");
		tb_str(&b, "data");
		tb_bin(&b, "12345678", 8);
		tu_doc_tb(&d, &b);
		cr_assert_eq(compact_of(&d, &a, &err), MPFS_E_DTYPE, "dtype '%.*s' accepted",
			     (int)bad[i].n, bad[i].s);
		cr_assert_eq(err.off, type_off, "'%.*s': offset", (int)bad[i].n, bad[i].s);
		tu_doc_free(&d);
		cr_assert_not(mpfs_array_parse_dtype((const uint8_t *)bad[i].s, bad[i].n, &a));
	}
}

Test(codec_array, compact_rejects_kind)
{
	struct tb b = {0};
	struct tu_doc d;
	struct mpfs_array a;
	struct mpfs_error err;
	uint64_t kind_off;

	/* msgpack-numpy writes kind 'O' (pickled objects) or 'V' (structured) */
	static const char *const kinds[] = {"O", "V", "x"};
	for (int i = 0; i < 3; i++) {
		tb_map(&b, 5);
		tb_str(&b, "nd");
		tb_bool(&b, true);
		tb_str(&b, "type");
		tb_str(&b, "<f8");
		tb_str(&b, "kind");
		kind_off = b.len;
		tb_bin(&b, kinds[i], 1);
		tb_str(&b, "shape");
		tb_hex(&b, "91 01");
		tb_str(&b, "data");
		tb_bin(&b, "12345678", 8);
		tu_doc_tb(&d, &b);
		cr_assert_eq(compact_of(&d, &a, &err), MPFS_E_DTYPE, "kind %s", kinds[i]);
		cr_assert_eq(err.off, kind_off);
		tu_doc_free(&d);
	}

	/* a kind that is not even a string */
	tb_map(&b, 5);
	tb_str(&b, "nd");
	tb_bool(&b, true);
	tb_str(&b, "type");
	tb_str(&b, "<f8");
	tb_str(&b, "kind");
	tb_uint(&b, 0);
	tb_str(&b, "shape");
	tb_hex(&b, "91 01");
	tb_str(&b, "data");
	tb_bin(&b, "12345678", 8);
	tu_doc_tb(&d, &b);
	cr_assert_eq(compact_of(&d, &a, &err), MPFS_E_ARRAY);
	tu_doc_free(&d);
}

/* Builds {"nd": true, "type": "<f8", "shape": SHAPE, "data": DATA} where
 * shape_hex and data_hex are raw MsgPack (or NULL to leave the key out). */
static enum mpfs_codec_err try_compact(const char *type_hex, const char *shape_hex,
				       const char *data_hex, struct mpfs_error *err,
				       uint64_t *at_shape, uint64_t *at_data)
{
	struct tb b = {0};
	struct tu_doc d;
	struct mpfs_array a;
	enum mpfs_codec_err rc;

	tb_map(&b, 2 + !!shape_hex + !!data_hex);
	tb_str(&b, "nd");
	tb_bool(&b, true);
	tb_str(&b, "type");
	tb_hex(&b, type_hex);
	if (shape_hex) {
		tb_str(&b, "shape");
		*at_shape = b.len;
		tb_hex(&b, shape_hex);
	}
	if (data_hex) {
		tb_str(&b, "data");
		*at_data = b.len;
		tb_hex(&b, data_hex);
	}
	tu_doc_tb(&d, &b);
	rc = compact_of(&d, &a, err);
	tu_doc_free(&d);
	return rc;
}

#define F8    "a3 3c 66 38"
#define DATA8 "c4 08 00 00 00 00 00 00 00 00"

Test(codec_array, compact_rejects_missing_or_wrong_members)
{
	struct mpfs_error err;
	uint64_t s = 0, dt = 0;

	cr_assert_eq(try_compact(F8, "91 01", DATA8, &err, &s, &dt), MPFS_OK, "%s", err.msg);
	cr_assert_eq(try_compact(F8, NULL, DATA8, &err, &s, &dt), MPFS_E_ARRAY);
	cr_assert_eq(err.off, 0, "the map's offset");
	cr_assert_eq(try_compact(F8, "91 01", NULL, &err, &s, &dt), MPFS_E_ARRAY);
	cr_assert_eq(try_compact("01", "91 01", DATA8, &err, &s, &dt), MPFS_E_ARRAY); /* type */
	cr_assert_eq(try_compact(F8, "01", DATA8, &err, &s, &dt), MPFS_E_ARRAY);      /* shape */
	cr_assert_eq(try_compact(F8, "a1 31", DATA8, &err, &s, &dt), MPFS_E_ARRAY);
	cr_assert_eq(try_compact(F8, "80", DATA8, &err, &s, &dt), MPFS_E_ARRAY);
	cr_assert_eq(try_compact(F8, "91 01", "01", &err, &s, &dt), MPFS_E_ARRAY); /* data */
	cr_assert_eq(try_compact(F8, "91 01", "90", &err, &s, &dt), MPFS_E_ARRAY);
}

Test(codec_array, compact_rejects_bad_shapes)
{
	struct mpfs_error err;
	uint64_t s = 0, dt = 0;

	/* negative: the offset is the dimension's */
	cr_assert_eq(try_compact(F8, "91 fc", "c4 00", &err, &s, &dt), MPFS_E_ARRAY);
	cr_assert_eq(err.off, s + 1);
	cr_assert(strstr(err.msg, "-4"), "%s", err.msg);
	cr_assert_eq(try_compact(F8, "92 01 d3 80 00 00 00 00 00 00 00", "c4 00", &err, &s, &dt),
		     MPFS_E_ARRAY);
	cr_assert_eq(err.off, s + 2);
	/* not integers */
	cr_assert_eq(try_compact(F8, "91 cb 40 00 00 00 00 00 00 00", DATA8, &err, &s, &dt),
		     MPFS_E_ARRAY);
	cr_assert_eq(err.off, s + 1);
	cr_assert_eq(try_compact(F8, "91 c0", DATA8, &err, &s, &dt), MPFS_E_ARRAY);
	cr_assert_eq(try_compact(F8, "91 c3", DATA8, &err, &s, &dt), MPFS_E_ARRAY);
	cr_assert_eq(try_compact(F8, "91 a1 31", DATA8, &err, &s, &dt), MPFS_E_ARRAY);
	/* nested */
	cr_assert_eq(try_compact(F8, "91 91 01", DATA8, &err, &s, &dt), MPFS_E_ARRAY);
	cr_assert_eq(err.off, s);
	/* more than 32 dimensions */
	char shape[3 * 40 + 8] = "dc 00 21";
	for (int i = 0; i < 33; i++)
		strcat(shape, " 01");
	cr_assert_eq(try_compact(F8, shape, DATA8, &err, &s, &dt), MPFS_E_ARRAY);
	cr_assert_eq(err.off, s);
}

Test(codec_array, compact_rejects_overflow)
{
	struct mpfs_error err;
	uint64_t s = 0, dt = 0;

	/* [2^62, 2^62]: the element count overflows at the second dimension */
	cr_assert_eq(try_compact(F8, "92 cf 40 00 00 00 00 00 00 00 cf 40 00 00 00 00 00 00 00",
				 "c4 00", &err, &s, &dt),
		     MPFS_E_ARRAY);
	cr_assert_eq(err.off, s + 10);
	/* [2^32, 2^32] */
	cr_assert_eq(try_compact(F8, "92 cf 00 00 00 01 00 00 00 00 cf 00 00 00 01 00 00 00 00",
				 "c4 00", &err, &s, &dt),
		     MPFS_E_ARRAY);
	/* [2^61] elements of 8 bytes: the byte count overflows */
	cr_assert_eq(try_compact(F8, "91 cf 20 00 00 00 00 00 00 00", "c4 00", &err, &s, &dt),
		     MPFS_E_ARRAY);
	cr_assert_eq(err.off, s);
	/* [INT64_MAX] of bytes: fits, but the data does not match */
	cr_assert_eq(
		try_compact("a3 7c 75 31", "91 cf 7f ff ff ff ff ff ff ff", "c4 00", &err, &s, &dt),
		MPFS_E_ARRAY);
	cr_assert_eq(err.off, dt);
	/* numpy cannot make these, empty or not: 2^63 bytes or more, counting
	 * only nonzero dimensions (before, the zero made them pass) */
	static const char *const shapes[] = {
		"91 cf ff ff ff ff ff ff ff ff",    /* [2^64 - 1] of bytes */
		"92 00 cf 80 00 00 00 00 00 00 00", /* [0, 2^63] */
		"93 cf 40 00 00 00 00 00 00 00 00 cf 00 00 00 00 00 00 00 04", /* [2^62, 0, 4] */
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		cr_assert_eq(try_compact("a3 7c 75 31", shapes[i], "c4 00", &err, &s, &dt),
			     MPFS_E_ARRAY, "%s", shapes[i]);
		cr_assert_eq(err.off, s, "%s: %s", shapes[i], err.msg);
	}
	/* np.empty((10**12, 0)) is an array numpy makes */
	cr_assert_eq(try_compact(F8, "92 cf 00 00 00 e8 d4 a5 10 00 00", "c4 00", &err, &s, &dt),
		     MPFS_OK, "%s", err.msg);
}

Test(codec_array, compact_rejects_data_size_mismatch)
{
	struct mpfs_error err;
	uint64_t s = 0, dt = 0;

	cr_assert_eq(try_compact(F8, "92 02 03",
				 "c4 2f" /* 47 bytes */
				 " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
				 " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
				 " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
				 &err, &s, &dt),
		     MPFS_E_ARRAY);
	cr_assert_eq(err.off, dt);
	cr_assert(strstr(err.msg, "47"), "%s", err.msg);
	cr_assert(strstr(err.msg, "48"), "%s", err.msg);
	cr_assert_eq(try_compact(F8, "91 01", "c4 09 00 00 00 00 00 00 00 00 00", &err, &s, &dt),
		     MPFS_E_ARRAY);
	cr_assert_eq(err.off, dt);
	cr_assert_eq(try_compact(F8, "91 01", "c4 00", &err, &s, &dt), MPFS_E_ARRAY);
	cr_assert_eq(try_compact(F8, "90", "c4 00", &err, &s, &dt), MPFS_E_ARRAY); /* 0-d: 8 */
}

Test(codec_array, is_compact)
{
	struct tu_doc d;

	tu_doc_hex(&d, "81 a2 6e 64 c3"); /* {"nd": true} */
	cr_assert(mpfs_array_is_compact(&d.doc, &d.doc.root));
	tu_doc_free(&d);
	tu_doc_hex(&d, "81 c4 02 6e 64 c3"); /* bin key */
	cr_assert(mpfs_array_is_compact(&d.doc, &d.doc.root));
	tu_doc_free(&d);
	/* only nd: true makes one (docs/tree.md §2) */
	tu_doc_hex(&d, "81 a2 6e 64 c2"); /* {"nd": false} */
	cr_assert_not(mpfs_array_is_compact(&d.doc, &d.doc.root));
	tu_doc_free(&d);
	tu_doc_hex(&d, "81 a2 6e 64 01"); /* {"nd": 1} */
	cr_assert_not(mpfs_array_is_compact(&d.doc, &d.doc.root));
	tu_doc_free(&d);
	tu_doc_hex(&d, "81 a4 74 79 70 65 a3 3c 66 38"); /* no nd */
	cr_assert_not(mpfs_array_is_compact(&d.doc, &d.doc.root));
	tu_doc_free(&d);
	tu_doc_hex(&d, "80");
	cr_assert_not(mpfs_array_is_compact(&d.doc, &d.doc.root));
	tu_doc_free(&d);
	tu_doc_hex(&d, "91 a2 6e 64"); /* a list is no map */
	cr_assert_not(mpfs_array_is_compact(&d.doc, &d.doc.root));
	tu_doc_free(&d);
}

/* ---- fixtures -------------------------------------------------------------------- */

static const struct mpfs_val *path2(const struct mpfs_doc *doc, const char *a, const char *b)
{
	const struct mpfs_val *v = mpfs_map_get(doc, &doc->root, a);
	cr_assert_not_null(v, "no %s", a);
	v = mpfs_map_get(doc, v, b);
	cr_assert_not_null(v, "no %s/%s", a, b);
	return v;
}

Test(codec_array, edge_values_compact_arrays)
{
	static const struct {
		const char *key, *descr, *shape;
		uint64_t nbytes;
	} cases[] = {
		{"empty", "<f8", "0", 0},
		{"i32", "<i4", "2,3", 24},
		{"u8", "|u1", "10", 10},
		{"scalar0d", "<f8", "", 8},
	};
	size_t n;
	uint8_t *buf = tu_fixture("edge_values.mpk", &n);
	struct mpfs_doc doc;
	struct mpfs_error err;

	cr_assert_eq(mpfs_doc_init(&doc, buf, n, &err), MPFS_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct mpfs_val *v = path2(&doc, "weights", cases[i].key);
		struct mpfs_array a;
		char shape[64];
		cr_assert(mpfs_array_is_compact(&doc, v));
		cr_assert_eq(mpfs_array_compact(&doc, v, &a, &err), MPFS_OK, "%s", err.msg);
		cr_assert_str_eq(a.descr, cases[i].descr);
		mpfs_array_shape_str(&a, shape, sizeof(shape));
		cr_assert_str_eq(shape, cases[i].shape);
		cr_assert_eq(a.nbytes, cases[i].nbytes);
		cr_assert_leq(a.data_off + a.nbytes, n);
	}
	/* i32 holds 0..5; scalar0d holds 3.5 */
	struct mpfs_array a;
	mpfs_array_compact(&doc, path2(&doc, "weights", "i32"), &a, &err);
	for (int k = 0; k < 6; k++) {
		int32_t x;
		memcpy(&x, buf + a.data_off + 4 * k, 4);
		cr_assert_eq(x, k);
	}
	mpfs_array_compact(&doc, path2(&doc, "weights", "scalar0d"), &a, &err);
	double f;
	memcpy(&f, buf + a.data_off, 8);
	cr_assert_eq(f, 3.5);
	mpfs_doc_destroy(&doc);
	free(buf);
}

Test(codec_array, bad_compact_fixtures)
{
	static const struct {
		const char *name;
		enum mpfs_codec_err code;
		uint64_t off;
	} cases[] = {
		{"bad_compact_bad_dtype.mpk", MPFS_E_DTYPE, 32},
		{"bad_compact_data_too_short.mpk", MPFS_E_ARRAY, 56},
		{"bad_compact_negative_shape.mpk", MPFS_E_ARRAY, 44},
		{"bad_compact_shape_overflow.mpk", MPFS_E_ARRAY, 53},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		uint8_t *buf = tu_fixture(cases[i].name, &n);
		struct mpfs_doc doc;
		struct mpfs_error err;
		struct mpfs_array a;

		cr_assert_eq(mpfs_doc_init(&doc, buf, n, &err), MPFS_OK, "%s: valid MsgPack",
			     cases[i].name);
		const struct mpfs_val *w = path2(&doc, "weights", "w");
		cr_assert(mpfs_array_is_compact(&doc, w));
		cr_assert_eq(mpfs_array_compact(&doc, w, &a, &err), cases[i].code, "%s: %s",
			     cases[i].name, err.msg);
		cr_assert_eq(err.off, cases[i].off, "%s: offset %llu", cases[i].name,
			     (unsigned long long)err.off);
		mpfs_doc_destroy(&doc);
		free(buf);
	}
}

/* A big-endian string array is swapped character by character (UCS-4). */
Test(codec_array, swap_string_arrays_by_character)
{
	struct mpfs_array a = {0};
	const uint8_t be[8] = {0, 0, 0, 'a', 0, 0, 0x01, 0x02};
	uint8_t le[8];

	cr_assert(mpfs_array_parse_dtype((const uint8_t *)">U2", 3, &a));
	a.count = 1;
	a.nbytes = 8;
	mpfs_array_swap(&a, be, le);
	cr_assert(memcmp(le, (const uint8_t[]){'a', 0, 0, 0, 0x02, 0x01, 0, 0}, 8) == 0);
}
