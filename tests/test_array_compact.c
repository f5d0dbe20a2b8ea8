/* codec/array.c, compact msgpack-numpy maps: dtype strings, shapes, sizes and
 * what is refused, the compact arrays of the fixtures, and the byte swap of
 * string arrays. (Nested lists: test_array_nested.c.) */
#include <criterion/criterion.h>

#include "codec/array.h"
#include "testutil.h"

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
