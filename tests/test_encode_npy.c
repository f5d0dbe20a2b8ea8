/* mpfs_npy_parse: NPY files parsed (versions, Fortran order, broken
 * headers, files numpy writes). */
#include "encode_env.h"

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
