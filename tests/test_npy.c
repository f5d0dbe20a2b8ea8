/* codec/npy.c: NPY v1.0 headers as numpy's format spec (numpy/lib/format.py,
 * NEP 1) defines them, and files numpy itself loads. */
#include <criterion/criterion.h>
#include <math.h>

#include "codec/array.h"
#include "codec/npy.h"
#include "testutil.h"

static struct mpfs_array array_of(const char *descr, unsigned ndim, const uint64_t *shape)
{
	struct mpfs_array a = {.ndim = (uint8_t)ndim, .count = 1};
	snprintf(a.descr, sizeof(a.descr), "%s", descr);
	a.itemsize = (uint8_t)atoi(descr + 2);
	for (unsigned i = 0; i < ndim; i++) {
		a.shape[i] = shape[i];
		a.count *= shape[i];
	}
	a.nbytes = a.count * a.itemsize;
	return a;
}

/* Checks the framing of header h (n bytes) and returns its dict text with
 * the padding removed (static storage). */
static const char *check_header(const char *h, size_t n)
{
	static char dict[MPFS_NPY_HEADER_MAX];
	size_t hlen, end;

	cr_assert_leq(n, MPFS_NPY_HEADER_MAX);
	cr_assert(memcmp(h, "\x93NUMPY", 6) == 0, "magic");
	cr_assert_eq((uint8_t)h[6], 1, "major version");
	cr_assert_eq((uint8_t)h[7], 0, "minor version");
	hlen = (uint8_t)h[8] | (size_t)(uint8_t)h[9] << 8; /* little-endian */
	cr_assert_eq(10 + hlen, n, "HEADER_LEN %zu for a header of %zu bytes", hlen, n);
	cr_assert_eq(n % 64, 0, "header of %zu bytes: data would not be aligned", n);
	cr_assert_eq(h[n - 1], '\n', "the header ends with a newline");
	/* The dict, then spaces only, then the newline. */
	end = n - 1;
	while (end > 10 && h[end - 1] == ' ')
		end--;
	cr_assert_eq(h[end - 1], '}', "dict not closed");
	cr_assert_lt(end - 10, sizeof(dict));
	memcpy(dict, h + 10, end - 10);
	dict[end - 10] = '\0';
	for (size_t i = 10; i < n; i++)
		cr_assert(h[i] >= 0x20 && h[i] < 0x7f ? true : (i == n - 1), "byte %zu is %#x", i,
			  (uint8_t)h[i]);
	return dict;
}

static void expect_header(const char *descr, unsigned ndim, const uint64_t *shape,
			  const char *dict_text)
{
	struct mpfs_array a = array_of(descr, ndim, shape);
	char h[MPFS_NPY_HEADER_MAX];
	size_t n = mpfs_npy_header(&a, h);
	cr_assert_str_eq(check_header(h, n), dict_text);
}

Test(codec_npy, header_2d)
{
	expect_header("<f8", 2, (const uint64_t[]){2, 3},
		      "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }");
	expect_header("<f8", 2, (const uint64_t[]){256, 128},
		      "{'descr': '<f8', 'fortran_order': False, 'shape': (256, 128), }");
}

Test(codec_npy, header_1d_has_a_trailing_comma)
{
	expect_header("<f8", 1, (const uint64_t[]){380},
		      "{'descr': '<f8', 'fortran_order': False, 'shape': (380,), }");
	expect_header("<i8", 1, (const uint64_t[]){0},
		      "{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }");
}

Test(codec_npy, header_0d)
{
	expect_header("<f8", 0, NULL, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }");
}

Test(codec_npy, header_dtypes)
{
	expect_header("|b1", 1, (const uint64_t[]){3},
		      "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }");
	expect_header("|u1", 1, (const uint64_t[]){10},
		      "{'descr': '|u1', 'fortran_order': False, 'shape': (10,), }");
	expect_header(">f8", 1, (const uint64_t[]){1},
		      "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }");
	expect_header("<c16", 1, (const uint64_t[]){1},
		      "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }");
}

/* The usual header is 128 bytes (what numpy writes too); wider shapes grow
 * it by whole 64-byte blocks, up to the biggest possible one. */
Test(codec_npy, header_sizes)
{
	struct mpfs_array a = array_of("<f8", 2, (const uint64_t[]){20, 16});
	char h[MPFS_NPY_HEADER_MAX];
	cr_assert_eq(mpfs_npy_header(&a, h), 128);

	uint64_t shape[MPFS_MAX_DIMS];
	for (unsigned ndim = 0; ndim <= MPFS_MAX_DIMS; ndim++) {
		for (unsigned i = 0; i < ndim; i++)
			shape[i] = UINT64_MAX - i;
		a = array_of("<c16", ndim, shape);
		size_t n = mpfs_npy_header(&a, h);
		const char *dict = check_header(h, n);
		/* Rebuild the expected text. */
		char want[MPFS_NPY_HEADER_MAX];
		int k = snprintf(want, sizeof(want),
				 "{'descr': '<c16', 'fortran_order': False, 'shape': (");
		for (unsigned i = 0; i < ndim; i++)
			k += snprintf(want + k, sizeof(want) - k, "%s%llu", i ? ", " : "",
				      (unsigned long long)shape[i]);
		snprintf(want + k, sizeof(want) - k, "%s), }", ndim == 1 ? "," : "");
		cr_assert_str_eq(dict, want, "ndim %u", ndim);
	}
}

/* Every header length lands on a multiple of 64, whatever the dict length. */
Test(codec_npy, header_padding_for_every_length)
{
	char h[MPFS_NPY_HEADER_MAX];
	for (uint64_t x = 1; x < 100000000000000000ULL; x = x * 10 + 7) {
		for (unsigned ndim = 1; ndim < 6; ndim++) {
			uint64_t shape[6] = {x, x, x, x, x, x};
			struct mpfs_array a = array_of("<f8", ndim, shape);
			size_t n = mpfs_npy_header(&a, h);
			/* Spaces and the newline: never a whole block more. */
			size_t pad = n - 10 - strlen(check_header(h, n));
			cr_assert(pad >= 1 && pad <= 64, "padding of %zu bytes", pad);
		}
	}
}

/* The header alone gives the verdict the whole file gets: the size of a
 * file of any length is checked from its first bytes (mpfs refuses a
 * `truncate -s 4G x.npy` without copying 4 GiB to parse it). */
Test(codec_npy, header_only_parse_checks_the_size)
{
	struct mpfs_array a = array_of("<f8", 2, (const uint64_t[]){20, 16}), got;
	char h[MPFS_NPY_HEADER_MAX];
	struct mpfs_error err;
	size_t n = mpfs_npy_header(&a, h), off;
	uint64_t whole = n + a.nbytes;
	bool fortran;

	cr_assert_eq(mpfs_npy_parse_header((uint8_t *)h, n, whole, &got, &off, &fortran, &err),
		     MPFS_OK, "%s", err.msg);
	cr_assert_eq(off, n);
	cr_assert_eq(got.nbytes, a.nbytes);
	cr_assert_not(fortran);
	cr_assert_eq(mpfs_npy_parse_header((uint8_t *)h, n, (uint64_t)4 << 30, &got, &off, &fortran,
					   &err),
		     MPFS_E_ARRAY);
	cr_assert_str_eq(err.msg, "NPY data is 4294967168 bytes, the header's shape and dtype "
				  "need 2560");
	cr_assert_eq(mpfs_npy_parse_header((uint8_t *)h, n, whole - 1, &got, &off, &fortran, &err),
		     MPFS_E_ARRAY);
	/* fewer bytes than the header (the caller gave too few): refused */
	cr_assert_eq(mpfs_npy_parse_header((uint8_t *)h, 40, whole, &got, &off, &fortran, &err),
		     MPFS_E_ARRAY);
	cr_assert_str_eq(err.msg, "NPY header longer than the file");
	/* avail beyond len: only len counts */
	cr_assert_eq(mpfs_npy_parse_header((uint8_t *)h, n, 40, &got, &off, &fortran, &err),
		     MPFS_E_ARRAY);
	cr_assert_str_eq(err.msg, "NPY header longer than the file");
}

/* ---- numpy reads what we write --------------------------------------------------- */

struct npy_case {
	const char *name;
	const char *hex;   /* a nested list, or NULL for a raw array */
	const char *check; /* Python expression over a, true when right */
};

static void write_npy(const char *path, const struct mpfs_array *a, const void *data)
{
	char h[MPFS_NPY_HEADER_MAX];
	size_t n = mpfs_npy_header(a, h);
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(h, 1, n, f), n);
	if (a->nbytes)
		cr_assert_eq(fwrite(data, 1, a->nbytes, f), a->nbytes);
	cr_assert_eq(fclose(f), 0);
}

/* Writes every case to DIR/NAME.npy (header + mpfs_array_fill of the nested
 * list) and has numpy load each, plainly and memory-mapped, and check it. */
Test(codec_npy, numpy_loads_headers_and_filled_data, .timeout = 60)
{
	static const struct npy_case cases[] = {
		{"f8_2d", "92 93 01 cb 40 04 00 00 00 00 00 00 03 93 04 05 fa",
		 "a.dtype == numpy.float64 and a.shape == (2, 3) and "
		 "a.tolist() == [[1.0, 2.5, 3.0], [4.0, 5.0, -6.0]]"},
		{"i8_1d", "93 01 ff cf 7f ff ff ff ff ff ff ff",
		 "a.dtype == numpy.int64 and a.shape == (3,) and a.tolist() == [1, -1, 2**63 - 1]"},
		{"u8_1d", "92 cf ff ff ff ff ff ff ff ff 00",
		 "a.dtype == numpy.uint64 and a.tolist() == [2**64 - 1, 0]"},
		{"b1_2d", "92 92 c3 c2 92 c2 c3",
		 "a.dtype == numpy.bool_ and a.tolist() == [[True, False], [False, True]]"},
		{"f4_1d", "92 ca 3d cc cc cd ca 3f 80 00 00",
		 "a.dtype == numpy.float32 and a.tolist() == [numpy.float32(0.1).item(), 1.0]"},
		{"empty", "90", "a.dtype == numpy.float64 and a.shape == (0,)"},
		{"empty_2d", "92 90 90", "a.dtype == numpy.float64 and a.shape == (2, 0)"},
		{"3d", "92 92 91 01 91 02 92 91 03 91 04",
		 "a.shape == (2, 2, 1) and a.ravel().tolist() == [1, 2, 3, 4]"},
		{"specials",
		 "93 cb 7f f8 00 00 00 00 00 00 cb ff f0 00 00 00 00 00 00 cb 80 00 00 00 "
		 "00 00 00 00",
		 "numpy.isnan(a[0]) and a[1] == -numpy.inf and str(a[2]) == '-0.0'"},
	};
	char *dir = tu_temp_dir();
	char *script, *cmd;
	FILE *py;

	cr_assert(asprintf(&script, "%s/check.py", dir) > 0);
	py = fopen(script, "w");
	cr_assert_not_null(py);
	fprintf(py, "import numpy, sys\n"
		    "from numpy.lib import format as fmt\n"
		    "bad = 0\n"
		    "def check(name, test):\n"
		    "    global bad\n"
		    "    path = sys.argv[1] + '/' + name + '.npy'\n"
		    "    with open(path, 'rb') as f:\n"
		    "        assert fmt.read_magic(f) == (1, 0), name\n"
		    "        fmt.read_array_header_1_0(f)\n"
		    "        assert f.tell() %% 64 == 0, name\n"
		    "    for mode in (None, 'r'):\n"
		    "        a = numpy.load(path, mmap_mode=mode, allow_pickle=False)\n"
		    "        if not eval(test):\n"
		    "            print('numpy disagrees on', name, mode, repr(a), a.dtype)\n"
		    "            bad += 1\n");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tb b = {0};
		struct mpfs_doc doc;
		struct mpfs_error err;
		struct mpfs_array a;
		uint8_t *buf, *data;
		char *path;

		tb_hex(&b, cases[i].hex);
		buf = tu_dup(b.p, b.len);
		cr_assert_eq(mpfs_doc_init(&doc, buf, b.len, &err), MPFS_OK, "%s", err.msg);
		tb_free(&b);
		cr_assert(mpfs_array_nested(&doc.root, &a), "%s", cases[i].name);
		data = malloc(a.nbytes + 1);
		mpfs_array_fill(&doc, &a, data);
		cr_assert(asprintf(&path, "%s/%s.npy", dir, cases[i].name) > 0);
		write_npy(path, &a, data);
		fprintf(py, "check('%s', \"\"\"%s\"\"\")\n", cases[i].name, cases[i].check);
		free(path);
		free(data);
		mpfs_doc_destroy(&doc);
		free(buf);
	}

	/* Compact-style raw data: a 0-d array, |u1, <i4, >f8 and <c16. */
	static const struct {
		const char *name, *descr, *check;
		unsigned ndim;
		uint64_t shape[2];
		uint8_t data[32];
	} raws[] = {
		{"zero_d",
		 "<f8",
		 "a.shape == () and a.item() == 3.5",
		 0,
		 {0},
		 {0, 0, 0, 0, 0, 0, 0x0c, 0x40}},
		{"u1",
		 "|u1",
		 "a.dtype == numpy.uint8 and a.tolist() == [0, 1, 255]",
		 1,
		 {3},
		 {0, 1, 255}},
		{"i4",
		 "<i4",
		 "a.dtype == numpy.int32 and a.tolist() == [[1], [-2]]",
		 2,
		 {2, 1},
		 {1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff}},
		{"f8be",
		 ">f8",
		 "a.dtype == numpy.dtype('>f8') and a.tolist() == [1.0]",
		 1,
		 {1},
		 {0x3f, 0xf0, 0, 0, 0, 0, 0, 0}},
		{"c16",
		 "<c16",
		 "a.dtype == numpy.complex128 and a.tolist() == [1+2j]",
		 1,
		 {1},
		 {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40}},
	};
	for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
		struct mpfs_array a = array_of(raws[i].descr, raws[i].ndim, raws[i].shape);
		char *path;
		cr_assert(asprintf(&path, "%s/%s.npy", dir, raws[i].name) > 0);
		write_npy(path, &a, raws[i].data);
		fprintf(py, "check('%s', \"\"\"%s\"\"\")\n", raws[i].name, raws[i].check);
		free(path);
	}
	fprintf(py, "sys.exit(1 if bad else 0)\n");
	fclose(py);

	cr_assert(asprintf(&cmd, "/usr/bin/python3 '%s' '%s'", script, dir) > 0);
	cr_assert_eq(tu_run(cmd), 0, "numpy did not load the files as written (see above)");
	free(cmd);
	free(script);
	tu_rm_rf(dir);
	free(dir);
}
