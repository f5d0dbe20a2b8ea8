/* codec/array.c, nested lists: their dtype and shape, the bytes
 * mpfs_array_fill writes for them, and mpfs_array_shape_str. (Compact
 * msgpack-numpy maps: test_array_compact.c.) */
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
