/* codec/numpy.c: numpy scalars and pickled object arrays, as msgpack-numpy
 * (Python's msgpack_numpy.encode) writes them. */
#include <math.h>

#include "codec/json.h"
#include "codec/numpy.h"
#include "testutil.h"

/* {b'nd': False, b'type': TYPE, b'data': DATA} with bin keys, as
 * msgpack-numpy writes a numpy scalar. */
static void scalar_map(struct tb *b, const char *type, const void *data, size_t n)
{
	tb_map(b, 3);
	tb_bin(b, "nd", 2);
	tb_bool(b, false);
	tb_bin(b, "type", 4);
	tb_str(b, type);
	tb_bin(b, "data", 4);
	tb_bin(b, data, n);
}

static void scalar_doc(struct tu_doc *d, const char *type, const void *data, size_t n)
{
	struct tb b = {0};
	scalar_map(&b, type, data, n);
	tu_doc_tb(d, &b);
}

/* The JSON text of scalar doc d's root, which must be a numpy scalar. */
static char *render(struct tu_doc *d, struct mpfs_array *a)
{
	struct mpfs_strbuf out;

	cr_assert(mpfs_numpy_scalar(&d->doc, &d->doc.root, a));
	mpfs_strbuf_init(&out);
	mpfs_numpy_scalar_render(&d->doc, a, &out);
	cr_assert_not(out.oom);
	return out.p;
}

Test(numpy_scalar, recognised_as_msgpack_numpy_writes_them)
{
	struct tu_doc d;
	struct mpfs_array a;
	int64_t five = 5;

	scalar_doc(&d, "<i8", &five, 8);
	cr_assert(mpfs_numpy_scalar(&d.doc, &d.doc.root, &a));
	cr_assert_str_eq(a.descr, "<i8");
	cr_assert_eq(a.ndim, 0);
	cr_assert_eq(a.count, 1);
	cr_assert_eq(a.nbytes, 8);
	cr_assert_eq(a.src, &d.doc.root);
	cr_assert(memcmp(d.doc.buf + a.data_off, &five, 8) == 0);
	tu_doc_free(&d);

	/* str keys and str data do as well */
	struct tb b = {0};
	tb_map(&b, 3);
	tb_str(&b, "type");
	tb_str(&b, "|u1");
	tb_str(&b, "data");
	tb_strn(&b, "\x07", 1);
	tb_str(&b, "nd");
	tb_bool(&b, false);
	tu_doc_tb(&d, &b);
	cr_assert(mpfs_numpy_scalar(&d.doc, &d.doc.root, &a));
	cr_assert_str_eq(a.descr, "|u1");
	tu_doc_free(&d);
}

/* Anything else with nd false stays an ordinary map. */
Test(numpy_scalar, near_misses_are_ordinary_maps)
{
	static const char *const maps[] = {
		/* a fourth key */
		"84 a2 6e 64 c2 a4 74 79 70 65 a3 3c 69 31 a4 64 61 74 61 c4 01 05 a1 78 01",
		/* nd true, nd 0, nd missing */
		"83 a2 6e 64 c3 a4 74 79 70 65 a3 7c 69 31 a4 64 61 74 61 c4 01 05",
		"83 a2 6e 64 00 a4 74 79 70 65 a3 7c 69 31 a4 64 61 74 61 c4 01 05",
		"83 a2 6e 78 c2 a4 74 79 70 65 a3 7c 69 31 a4 64 61 74 61 c4 01 05",
		/* data of the wrong size for <i8, or not bytes */
		"83 a2 6e 64 c2 a4 74 79 70 65 a3 3c 69 38 a4 64 61 74 61 c4 01 05",
		"83 a2 6e 64 c2 a4 74 79 70 65 a3 7c 69 31 a4 64 61 74 61 05",
		/* a string dtype, no dtype at all, a type that is a number */
		"83 a2 6e 64 c2 a4 74 79 70 65 a3 7c 53 31 a4 64 61 74 61 c4 01 05",
		"83 a2 6e 64 c2 a4 74 79 70 65 a1 5a a4 64 61 74 61 c4 01 05",
		"83 a2 6e 64 c2 a4 74 79 70 65 01 a4 64 61 74 61 c4 01 05",
		/* a list */
		"93 c2 a3 7c 69 31 c4 01 05",
	};
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		struct tu_doc d;
		struct mpfs_array a = {.descr = "keep"};

		tu_doc_hex(&d, maps[i]);
		cr_assert_not(mpfs_numpy_scalar(&d.doc, &d.doc.root, &a), "%s", maps[i]);
		cr_assert_str_eq(a.descr, "keep", "a was touched");
		tu_doc_free(&d);
	}
}

Test(numpy_scalar, renders_as_json)
{
	static const struct {
		const char *type;
		const char *hex; /* the data bytes */
		const char *json;
	} cases[] = {
		{"<i8", "fb ff ff ff ff ff ff ff", "-5"},
		{"|i1", "80", "-128"},
		{"|u1", "c8", "200"},
		{"<u8", "ff ff ff ff ff ff ff ff", "18446744073709551615"},
		{"<i8", "00 00 00 00 00 00 00 80", "-9223372036854775808"},
		{">i4", "ff ff ff fe", "-2"},
		{"<u2", "34 12", "4660"},
		{"|b1", "01", "true"},
		{"|b1", "00", "false"},
		{"<f4", "00 00 00 3f", "0.5"},
		{"<f4", "cd cc cc 3d", "0.10000000149011612"},
		{">f8", "3f f8 00 00 00 00 00 00", "1.5"},
		{"<f8", "00 00 00 00 00 00 f8 7f", "NaN"},
		{"<f8", "00 00 00 00 00 00 f0 ff", "-Infinity"},
		{"<f2", "00 3c", "1.0"},
		{"<f2", "01 00", "5.960464477539063e-08"},
		{"<f2", "ff 7b", "65504.0"},
		{"<f2", "00 fc", "-Infinity"},
		{"<f2", "00 80", "-0.0"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tb data = {0};
		struct tu_doc d;
		struct mpfs_array a;

		tb_hex(&data, cases[i].hex);
		scalar_doc(&d, cases[i].type, data.p, data.len);
		tb_free(&data);
		char *json = render(&d, &a);
		cr_assert_str_eq(json, cases[i].json, "%s %s", cases[i].type, cases[i].hex);
		free(json);
		tu_doc_free(&d);
	}
}

/* Encodes text over a scalar of type with data, and returns the new value
 * decoded (in *out, to free). */
static enum mpfs_codec_err encode_over(const char *type, const char *hex, const char *text,
				       struct tu_doc *out, struct mpfs_error *err)
{
	struct tb data = {0};
	struct tu_doc d;
	struct mpfs_array a;
	struct mpfs_strbuf buf;
	enum mpfs_codec_err rc;

	tb_hex(&data, hex);
	scalar_doc(&d, type, data.p, data.len);
	tb_free(&data);
	cr_assert(mpfs_numpy_scalar(&d.doc, &d.doc.root, &a));
	mpfs_strbuf_init(&buf);
	memset(err, 0, sizeof(*err));
	rc = mpfs_numpy_scalar_encode(&d.doc, &a, text, strlen(text), &buf, err);
	if (rc == MPFS_OK) {
		cr_assert_not(buf.oom);
		tu_doc_bytes(out, buf.p, buf.len);
	} else {
		cr_assert_eq(buf.len, 0, "%s: output on refusal", text);
	}
	mpfs_strbuf_destroy(&buf);
	tu_doc_free(&d);
	return rc;
}

/* A write keeps the dtype where the value fits; otherwise the MsgPack rules
 * for numbers (docs/writing.md §3) pick the new one. */
Test(numpy_scalar, writes_keep_the_dtype_where_the_value_fits)
{
	static const struct {
		const char *type, *hex, *text, *descr, *json;
	} cases[] = {
		{"<i8", "05 00 00 00 00 00 00 00", "7\n", "<i8", "7"},
		{"|u1", "c8", "255", "|u1", "255"},
		{"|u1", "c8", "300", "<u2", "300"},
		{"|u1", "c8", "70000", "<u4", "70000"},
		{"|u1", "c8", "-1", "|i1", "-1"},
		{"|u1", "c8", "-40000", "<i4", "-40000"},
		{"<i2", "05 00", "40000", "<i4", "40000"},
		{"<i2", "05 00", "-32768", "<i2", "-32768"},
		{"<i8", "05 00 00 00 00 00 00 00", "18446744073709551615", "<u8",
		 "18446744073709551615"},
		{">i4", "00 00 00 05", "6", ">i4", "6"},
		{">i4", "00 00 00 05", "5000000000", ">i8", "5000000000"},
		{"<f4", "00 00 00 3f", "0.25", "<f4", "0.25"},
		{"<f4", "00 00 00 3f", "0.1", "<f8", "0.1"},
		{"<f4", "00 00 00 3f", "3", "<f4", "3.0"},
		{"<f4", "00 00 00 3f", "NaN", "<f4", "NaN"},
		{"<f4", "00 00 00 3f", "-Infinity", "<f4", "-Infinity"},
		{"<f2", "00 3c", "65504", "<f2", "65504.0"},
		{"<f2", "00 3c", "70000", "<f4", "70000.0"},
		{"<f2", "00 3c", "0.1", "<f8", "0.1"},
		{"<f2", "00 3c", "5.960464477539063e-08", "<f2", "5.960464477539063e-08"},
		{"<f8", "00 00 00 00 00 00 f0 3f", "1e300", "<f8", "1e+300"},
		{"|b1", "01", "false", "|b1", "false"},
		{"|b1", "01", "2", "<i8", "2"},
		{"|b1", "01", "2.5", "<f8", "2.5"},
		{"<i8", "05 00 00 00 00 00 00 00", "2.5", "<f8", "2.5"},
		{"|u1", "05", "true", "|b1", "true"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tu_doc d;
		struct mpfs_array a;
		struct mpfs_error err;

		cr_assert_eq(encode_over(cases[i].type, cases[i].hex, cases[i].text, &d, &err),
			     MPFS_OK, "%s over %s: %s", cases[i].text, cases[i].type, err.msg);
		char *json = render(&d, &a);
		cr_assert_str_eq(a.descr, cases[i].descr, "%s over %s", cases[i].text,
				 cases[i].type);
		cr_assert_str_eq(json, cases[i].json, "%s over %s", cases[i].text, cases[i].type);
		free(json);
		tu_doc_free(&d);
	}
}

/* The map as written: bin keys stay bin, in their order. */
Test(numpy_scalar, writes_keep_the_map_as_written)
{
	struct tu_doc d;
	struct mpfs_error err;
	struct tb want = {0};

	cr_assert_eq(encode_over("|u1", "c8", "300", &d, &err), MPFS_OK, "%s", err.msg);
	scalar_map(&want, "<u2", "\x2c\x01", 2);
	cr_assert_eq(d.n, want.len);
	cr_assert(memcmp(d.buf, want.p, want.len) == 0, "not the map msgpack-numpy writes");
	tb_free(&want);
	tu_doc_free(&d);
}

/* Other JSON replaces the scalar by a plain value; text that is no JSON is
 * refused (a number is no string). */
Test(numpy_scalar, other_values_and_refusals)
{
	struct tu_doc d;
	struct mpfs_error err;

	cr_assert_eq(encode_over("<i8", "05 00 00 00 00 00 00 00", "\"five\"", &d, &err), MPFS_OK);
	cr_assert_eq(d.doc.root.type, MPFS_STR);
	tu_doc_free(&d);
	cr_assert_eq(encode_over("<i8", "05 00 00 00 00 00 00 00", "null", &d, &err), MPFS_OK);
	cr_assert_eq(d.doc.root.type, MPFS_NIL);
	tu_doc_free(&d);
	cr_assert_eq(encode_over("<i8", "05 00 00 00 00 00 00 00", "[1, 2]", &d, &err), MPFS_OK);
	cr_assert_eq(d.doc.root.type, MPFS_ARRAY);
	tu_doc_free(&d);

	static const char *const bad[] = {"five", "", "1 2", "0x10", "--1", "1e"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(encode_over("<i8", "05 00 00 00 00 00 00 00", bad[i], &d, &err),
			     MPFS_E_ARRAY, "'%s' accepted", bad[i]);
		cr_assert(err.msg[0]);
	}
}

/* Every float16 reads back to its own bits: what is shown is exact. One
 * document, its data bytes changed in place; a write of what is shown must
 * give the document back byte for byte. (No Criterion assertion in the
 * loop but on failure: each one is a message to the runner.) */
Test(numpy_scalar, every_float16_round_trips)
{
	unsigned failures = 0, first = 0;
	struct tu_doc d;
	struct mpfs_array a;
	struct mpfs_strbuf json, enc;
	struct mpfs_error err;

	scalar_doc(&d, "<f2", "\0\0", 2);
	cr_assert(mpfs_numpy_scalar(&d.doc, &d.doc.root, &a));
	mpfs_strbuf_init(&json);
	mpfs_strbuf_init(&enc);
	for (uint32_t h = 0; h < 0x10000; h++) {
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
			continue; /* NaNs: one NaN is written back */
		d.buf[a.data_off] = h & 0xff;
		d.buf[a.data_off + 1] = (uint8_t)(h >> 8);
		json.len = enc.len = 0;
		mpfs_numpy_scalar_render(&d.doc, &a, &json);
		if (mpfs_numpy_scalar_encode(&d.doc, &a, json.p, json.len, &enc, &err) ||
		    enc.len != d.n || memcmp(enc.p, d.buf, d.n))
			first = failures++ ? first : h;
	}
	cr_assert_eq(failures, 0, "%u float16 values do not round-trip, the first %04x", failures,
		     first);
	mpfs_strbuf_destroy(&json);
	mpfs_strbuf_destroy(&enc);
	tu_doc_free(&d);
}

/* ---- pickled object arrays ------------------------------------------------ */

/* What msgpack-numpy writes for an object array: type is the dtype's descr
 * (a list of pairs), kind b'O', data a pickle. */
static void pickled_map(struct tb *b, const char *shape_hex, const char *data_hex)
{
	tb_map(b, 5);
	tb_bin(b, "nd", 2);
	tb_bool(b, true);
	tb_bin(b, "type", 4);
	tb_hex(b, "91 92 a0 a2 7c 4f"); /* [["", "|O"]] */
	tb_bin(b, "kind", 4);
	tb_bin(b, "O", 1);
	tb_bin(b, "shape", 5);
	tb_hex(b, shape_hex);
	tb_bin(b, "data", 4);
	tb_hex(b, data_hex);
}

Test(numpy_pickled, recognised_and_never_unpickled)
{
	struct tb b = {0};
	struct tu_doc d;
	struct mpfs_array a;
	struct mpfs_error err = {0};

	pickled_map(&b, "91 04", "c4 03 80 04 2e");
	tu_doc_tb(&d, &b);
	cr_assert(mpfs_numpy_is_pickled(&d.doc, &d.doc.root));
	cr_assert_eq(mpfs_numpy_pickled(&d.doc, &d.doc.root, &a, &err), MPFS_OK, "%s", err.msg);
	cr_assert_str_eq(a.descr, "|O");
	cr_assert_eq(a.ndim, 1);
	cr_assert_eq(a.shape[0], 4);
	cr_assert_eq(a.nbytes, 3);
	cr_assert(memcmp(d.doc.buf + a.data_off, "\x80\x04\x2e", 3) == 0);
	tu_doc_free(&d);

	/* a shape that is no shape is left out, not refused */
	static const char *const shapes[] = {
		"91 ff", "a1 78", "92 ca 3f 80 00 00 01",
		"92 cf ff ff ff ff ff ff ff ff cf ff ff ff ff ff ff ff ff"};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		pickled_map(&b, shapes[i], "c4 01 2e");
		tu_doc_tb(&d, &b);
		cr_assert_eq(mpfs_numpy_pickled(&d.doc, &d.doc.root, &a, &err), MPFS_OK, "%s",
			     shapes[i]);
		cr_assert_eq(a.ndim, 0, "%s", shapes[i]);
		cr_assert_eq(a.nbytes, 1);
		tu_doc_free(&d);
	}

	/* data that is not bytes is refused */
	pickled_map(&b, "91 01", "2a");
	tu_doc_tb(&d, &b);
	cr_assert_eq(mpfs_numpy_pickled(&d.doc, &d.doc.root, &a, &err), MPFS_E_ARRAY);
	cr_assert(err.msg[0]);
	tu_doc_free(&d);
}

Test(numpy_pickled, only_kind_O)
{
	static const char *const maps[] = {
		"82 a2 6e 64 c3 a4 6b 69 6e 64 a0",	  /* kind "" */
		"82 a2 6e 64 c3 a4 6b 69 6e 64 a1 56",	  /* kind "V" */
		"82 a2 6e 64 c3 a4 6b 69 6e 64 a2 4f 4f", /* kind "OO" */
		"81 a2 6e 64 c3",			  /* no kind */
		"82 a2 6e 64 c3 a4 6b 69 6e 64 4f",	  /* kind 79 */
	};
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		struct tu_doc d;
		tu_doc_hex(&d, maps[i]);
		cr_assert_not(mpfs_numpy_is_pickled(&d.doc, &d.doc.root), "%s", maps[i]);
		tu_doc_free(&d);
	}
}

/* New arrays in an archive msgpack-numpy wrote: its map, bin keys. */
Test(numpy_encode, new_array_as_msgpack_numpy_writes_it)
{
	struct mpfs_array a = {0}, got;
	struct mpfs_strbuf out;
	struct mpfs_error err;
	struct tu_doc d;
	const uint8_t data[6] = {1, 2, 3, 4, 5, 6};
	static const char *const keys[] = {"nd", "type", "kind", "shape", "data"};

	cr_assert(mpfs_array_parse_dtype((const uint8_t *)">i2", 3, &a));
	a.ndim = 2;
	a.shape[0] = 3;
	a.shape[1] = 1;
	a.count = 3;
	a.nbytes = 6;
	mpfs_strbuf_init(&out);
	mpfs_numpy_encode_array(&a, data, &out);
	cr_assert_not(out.oom);
	tu_doc_bytes(&d, out.p, out.len);
	mpfs_strbuf_destroy(&out);
	cr_assert_eq(d.doc.root.len, 5);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(d.doc.root.items[2 * i].type, MPFS_BIN);
		cr_assert(mpfs_val_is(&d.doc, &d.doc.root.items[2 * i], keys[i]));
	}
	cr_assert_eq(d.doc.root.items[3].type, MPFS_STR, "type is a str");
	cr_assert_eq(mpfs_array_compact(&d.doc, &d.doc.root, &got, &err), MPFS_OK, "%s", err.msg);
	cr_assert_str_eq(got.descr, ">i2");
	cr_assert_eq(got.ndim, 2);
	cr_assert_eq(got.shape[0], 3);
	cr_assert(memcmp(d.doc.buf + got.data_off, data, 6) == 0);
	tu_doc_free(&d);
}
