/* Making nested-list arrays fast: codec/array.c's row loops against the
 * general per-element decoder (mpfs_array_fill_slow), rows filled in any
 * split, archives rewritten under the mapping; fs/fill.c's threads; and
 * made arrays read by reference into a pipe (mpfs_fs_read_pipe). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "codec/array.h"
#include "fs/fill.h"
#include "fs/guard.h"
#include "fs_env.h"
#include "testutil.h"

/* ---- random nested arrays ------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* What the elements of a generated array are. */
enum gen {
	GEN_F64,   /* float64 only */
	GEN_MIXED, /* float64, float32 and every int encoding: a float64 array */
	GEN_F32,   /* float32 only */
	GEN_INT,   /* ints of every encoding, negative ones too: int64 */
	GEN_UINT,  /* non-negative ints, some above INT64_MAX: uint64 */
	GEN_BOOL,
};

static const char *const gen_descr[] = {"<f8", "<f8", "<f4", "<i8", "<u8", "|b1"};

/* An int with tag t (0 for a fixint of x), big-endian, even where a
 * narrower encoding would do: writers differ. */
static void put_int(struct tb *b, uint8_t t, uint64_t x)
{
	if (t == 0) {
		tb_byte(b, (uint8_t)x);
		return;
	}
	tb_byte(b, t);
	tb_be(b, x, 1 << ((t - 0xcc) & 3));
}

/* A random int: its tag fits its value. neg: negative values allowed. */
static void gen_int(struct tb *b, uint64_t *s, bool neg, bool big)
{
	uint64_t r = rng_next(s);
	int64_t i;

	switch (r % (neg ? 12 : 8)) {
	case 0: put_int(b, 0, r >> 58); break;				/* fixint */
	case 1: put_int(b, 0xcc, (r >> 8) & 0xff); break;		/* uint8 */
	case 2: put_int(b, 0xcd, (r >> 8) & 0xffff); break;		/* uint16 */
	case 3: put_int(b, 0xce, (r >> 8) & 0xffffffff); break;		/* uint32 */
	case 4: put_int(b, 0xcf, big ? r | 1ull << 63 : r >> 1); break; /* uint64 */
	case 5: put_int(b, 0xd0, (r >> 8) & 0x7f); break;		/* int8 >= 0 */
	case 6: put_int(b, 0xd3, r >> 2); break;			/* int64 >= 0 */
	case 7: put_int(b, 0xd1, (r >> 8) & 0x7fff); break;		/* int16 >= 0 */
	case 8: put_int(b, 0, 0xe0 | (r >> 59)); break;			/* negative fixint */
	case 9:
		i = -(int64_t)((r >> 8) % 128) - 1;
		put_int(b, 0xd0, (uint64_t)i & 0xff);
		break;
	case 10:
		i = -(int64_t)((r >> 8) % 2147483648u) - 1;
		put_int(b, 0xd2, (uint64_t)i & 0xffffffff);
		break;
	default: put_int(b, 0xd3, r | 1ull << 63); break; /* int64 < 0 */
	}
}

/* Random float bits: NaNs with payloads, infinities, subnormals too. */
static void gen_float(struct tb *b, uint64_t *s, bool f32)
{
	uint64_t r = rng_next(s);

	if (r % 16 == 0) /* exponent all ones: inf or a NaN */
		r |= f32 ? 0x7f800000ull : 0x7ff0000000000000ull;
	if (f32) {
		tb_byte(b, 0xca);
		tb_be(b, r & 0xffffffff, 4);
	} else {
		tb_byte(b, 0xcb);
		tb_be(b, r, 8);
	}
}

static void gen_element(struct tb *b, uint64_t *s, enum gen g)
{
	uint64_t r;

	switch (g) {
	case GEN_F64: gen_float(b, s, false); break;
	case GEN_F32: gen_float(b, s, true); break;
	case GEN_INT: gen_int(b, s, true, false); break;
	case GEN_UINT: gen_int(b, s, false, true); break;
	case GEN_BOOL: tb_bool(b, rng_next(s) & 1); break;
	default:
		r = rng_next(s) % 4;
		if (r < 2)
			gen_float(b, s, r == 1);
		else
			gen_int(b, s, true, r == 3);
	}
}

static void gen_list(struct tb *b, uint64_t *s, enum gen g, unsigned ndim, const uint32_t *shape)
{
	tb_arr(b, shape[0]);
	for (uint32_t i = 0; i < shape[0]; i++) {
		if (ndim == 1)
			gen_element(b, s, g);
		else
			gen_list(b, s, g, ndim - 1, shape + 1);
	}
}

/* A nested array of g's elements and the given shape, decoded, with *a. */
static void gen_doc(struct tu_doc *d, struct mpfs_array *a, uint64_t seed, enum gen g,
		    unsigned ndim, const uint32_t *shape)
{
	struct tb b = {0};
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;

	gen_list(&b, &s, g, ndim, shape);
	tu_doc_tb(d, &b);
	cr_assert(mpfs_array_nested(&d->doc.root, a), "seed %llu: not an array",
		  (unsigned long long)seed);
}

/* The bytes by the general decoder, in a buffer of exactly nbytes. */
static uint8_t *slow_bytes(const struct tu_doc *d, const struct mpfs_array *a)
{
	uint8_t *want = malloc(a->nbytes ? a->nbytes : 1);

	mpfs_array_fill_slow(&d->doc, a, want);
	return want;
}

static void same_bytes(const uint8_t *got, const uint8_t *want, uint64_t n, const char *what)
{
	for (uint64_t i = 0; i < n; i++)
		if (got[i] != want[i])
			cr_assert_fail("%s: byte %llu is %02x, the general decoder wrote %02x",
				       what, (unsigned long long)i, got[i], want[i]);
}

/* Fast and slow agree on array a, also filled row range by row range. */
static void fast_is_slow(const struct tu_doc *d, const struct mpfs_array *a, const char *what)
{
	uint8_t *want = slow_bytes(d, a), *got = malloc(a->nbytes + 1);
	uint64_t rows = mpfs_array_rows(a), row_bytes = rows ? a->nbytes / rows : 0;

	got[a->nbytes] = 0xee; /* must stay: nothing written past the array */
	mpfs_array_fill(&d->doc, a, got);
	same_bytes(got, want, a->nbytes, what);
	cr_assert_eq(got[a->nbytes], 0xee, "%s: wrote past the array", what);
	memset(got, 0, a->nbytes);
	for (uint64_t first = 0, n = 1; first < rows; first += n, n = n * 2 + 1)
		mpfs_array_fill_rows(&d->doc, a, first, n, got + first * row_bytes);
	same_bytes(got, want, a->nbytes, what);
	free(got);
	free(want);
}

/* ---- the row loops --------------------------------------------------------- */

Test(codec_fill, fast_loops_write_what_the_general_decoder_writes)
{
	static const uint32_t shapes[][4] = {
		{1, 1}, {1, 7}, {1, 300}, {2, 3, 5}, {3, 4, 2, 3}, {3, 1000}, {40, 1}, {5, 17},
	};
	static const unsigned ndims[] = {2, 2, 2, 3, 4, 2, 2, 2};
	char what[96];

	for (int g = GEN_F64; g <= GEN_BOOL; g++)
		for (size_t k = 0; k < sizeof(ndims) / sizeof(ndims[0]); k++)
			for (uint64_t seed = 1; seed <= 6; seed++) {
				/* the first dimension as the 1-d case: shape + 1 */
				unsigned ndim = seed % 3 == 0 ? ndims[k] - 1 : ndims[k];
				const uint32_t *shape = shapes[k] + (ndims[k] - ndim);
				struct tu_doc d;
				struct mpfs_array a;

				gen_doc(&d, &a, seed * 100 + k, (enum gen)g, ndim, shape);
				snprintf(what, sizeof(what), "%s, %u-d, shape %u..., seed %llu",
					 gen_descr[g], ndim, shape[0], (unsigned long long)seed);
				if (g != GEN_MIXED && g != GEN_UINT) /* those depend on the draw */
					cr_assert_str_eq(a.descr, gen_descr[g], "%s", what);
				fast_is_slow(&d, &a, what);
				tu_doc_free(&d);
			}
}

Test(codec_fill, every_int_encoding_in_float64_and_int64_arrays)
{
	/* Each int tag, with a float64 first to make a float array, then
	 * alone in an int array: INT64_MIN, -1, UINT64_MAX, non-minimal
	 * encodings of small values. */
	static const char *const ints =
		"00 7f e0 ff cc 00 cc ff cd ff ff ce ff ff ff ff "
		"cf ff ff ff ff ff ff ff ff cf 00 00 00 00 00 00 00 05 "
		"d0 80 d0 7f d1 80 00 d1 00 01 d2 80 00 00 00 d2 7f ff ff ff "
		"d3 80 00 00 00 00 00 00 00 d3 ff ff ff ff ff ff ff ff "
		"d3 00 00 00 00 00 00 00 2a";
	struct tb b = {0};
	struct tu_doc d;
	struct mpfs_array a;

	tb_arr(&b, 2);
	tb_arr(&b, 20);
	tb_f64(&b, 0.5);
	tb_hex(&b, ints);
	tb_arr(&b, 20);
	tb_hex(&b, ints);
	tb_f32(&b, 0.25f);
	tu_doc_tb(&d, &b);
	cr_assert(mpfs_array_nested(&d.doc.root, &a));
	cr_assert_str_eq(a.descr, "<f8");
	fast_is_slow(&d, &a, "ints in a float64 array");
	double got[40];
	mpfs_array_fill(&d.doc, &a, (uint8_t *)got);
	cr_assert_eq(got[9], 18446744073709551615.0);
	cr_assert_eq(got[10], 5.0);
	cr_assert_eq(got[11], -128.0);
	cr_assert_eq(got[37], -1.0);
	cr_assert_eq(got[39], 0.25);
	tu_doc_free(&d);

	/* the same ints alone: uint64 would be needed for UINT64_MAX, which
	 * together with negatives is no array: drop the two cf */
	tb_arr(&b, 17);
	tb_hex(&b, "00 7f e0 ff cc 00 cc ff cd ff ff ce ff ff ff ff d0 80 d0 7f d1 80 00 d1 00 01 "
		   "d2 80 00 00 00 d2 7f ff ff ff d3 80 00 00 00 00 00 00 00 d3 ff ff ff ff ff ff "
		   "ff ff d3 00 00 00 00 00 00 00 2a");
	tu_doc_tb(&d, &b);
	cr_assert(mpfs_array_nested(&d.doc.root, &a));
	cr_assert_str_eq(a.descr, "<i8");
	fast_is_slow(&d, &a, "ints in an int64 array");
	int64_t i64[17];
	mpfs_array_fill(&d.doc, &a, (uint8_t *)i64);
	cr_assert_eq(i64[2], -32);
	cr_assert_eq(i64[8], -128);
	cr_assert_eq(i64[10], -32768);
	cr_assert_eq(i64[12], INT32_MIN);
	cr_assert_eq(i64[14], INT64_MIN);
	cr_assert_eq(i64[15], -1);
	cr_assert_eq(i64[16], 42);
	tu_doc_free(&d);

	/* uint64 above INT64_MAX */
	tb_arr(&b, 3);
	tb_hex(&b, "cf ff ff ff ff ff ff ff fe 01 cf 80 00 00 00 00 00 00 00");
	tu_doc_tb(&d, &b);
	cr_assert(mpfs_array_nested(&d.doc.root, &a));
	cr_assert_str_eq(a.descr, "<u8");
	fast_is_slow(&d, &a, "uint64");
	uint64_t u64[3];
	mpfs_array_fill(&d.doc, &a, (uint8_t *)u64);
	cr_assert_eq(u64[0], UINT64_MAX - 1);
	cr_assert_eq(u64[2], 1ull << 63);
	tu_doc_free(&d);
}

Test(codec_fill, empty_rows_and_empty_arrays_write_nothing)
{
	static const char *const empties[] = {"90", "92 90 90", "93 91 90 91 90 91 90", "91 91 90"};

	for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		struct tu_doc d;
		struct mpfs_array a;
		uint8_t out = 0xee;

		tu_doc_hex(&d, empties[i]);
		cr_assert(mpfs_array_nested(&d.doc.root, &a), "%s", empties[i]);
		cr_assert_eq(a.nbytes, 0);
		cr_assert_eq(mpfs_array_rows(&a), 0);
		mpfs_array_fill(&d.doc, &a, &out);
		mpfs_array_fill_rows(&d.doc, &a, 0, 5, &out);
		cr_assert_eq(out, 0xee, "%s: wrote into an empty array", empties[i]);
		cr_assert_eq(mpfs_fill_nested(&d.doc, &a, &out, 4), 0);
		cr_assert_eq(out, 0xee);
		tu_doc_free(&d);
	}
}

/* Every prefix of a nested array's archive is refused when opened (the
 * rows are validated then), never read past: the buffers are exact, so a
 * sanitizer build sees any overread. */
Test(codec_fill, truncated_in_a_row_is_refused_at_open)
{
	static const uint32_t shape[] = {3, 5};
	struct tb b = {0};
	uint64_t s = 7;

	gen_list(&b, &s, GEN_MIXED, 2, shape);
	for (size_t n = 1; n < b.len; n++) {
		uint8_t *p = tu_dup(b.p, n);
		struct mpfs_doc doc;
		struct mpfs_error err;

		cr_assert_eq(mpfs_doc_init(&doc, p, n, &err), MPFS_E_TRUNCATED,
			     "%zu of %zu bytes: %s", n, b.len, err.msg);
		free(p);
	}
	tb_free(&b);
}

/* The archive rewritten in place after it was validated (the mapping shows
 * the new bytes): whatever a byte of a row becomes, the fast loops read
 * nothing past the buffer and write what the general decoder writes (it
 * reads what no longer decodes as a number as zero). The array ends the
 * buffer, so a wide tag near the end would lead a careless loop past it. */
Test(codec_fill, rewritten_under_the_mapping_reads_nothing_past_the_end)
{
	static const uint8_t tags[] = {0xcb, 0xca, 0xcf, 0xd3, 0xce, 0xd2, 0xcd, 0xcc,
				       0x05, 0xe5, 0xc2, 0xc3, 0xc0, 0xc1, 0xdb, 0xdd,
				       0xdf, 0xc6, 0x9f, 0x8f, 0xbf, 0xd9};
	static const uint32_t shape[] = {2, 4};
	char what[64];

	for (int g = GEN_F64; g <= GEN_BOOL; g++) {
		struct tu_doc d;
		struct mpfs_array a;

		gen_doc(&d, &a, 3, (enum gen)g, 2, shape);
		for (size_t at = 0; at < d.n; at++) {
			uint8_t keep = d.buf[at];

			for (size_t t = 0; t < sizeof(tags); t++) {
				d.buf[at] = tags[t];
				snprintf(what, sizeof(what), "%s, byte %zu made %02x", gen_descr[g],
					 at, tags[t]);
				fast_is_slow(&d, &a, what);
			}
			d.buf[at] = keep;
		}
		tu_doc_free(&d);
	}
}

/* ---- threads ----------------------------------------------------------------- */

Test(fs_fill, threads_write_what_one_thread_writes)
{
	static const uint32_t shapes[][3] = {{7, 3, 5}, {1, 1, 9}, {13, 2, 1}, {2, 2, 2}};
	char what[64];

	cr_assert_eq(mpfs_guard_init(), 0);
	for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++)
		for (int g = GEN_F64; g <= GEN_BOOL; g++) {
			struct tu_doc d;
			struct mpfs_array a;

			gen_doc(&d, &a, k + 11, (enum gen)g, 3, shapes[k]);
			uint8_t *want = slow_bytes(&d, &a);
			for (unsigned t = 1; t <= MPFS_FILL_MAX_THREADS + 2; t++) {
				uint8_t *got = mpfs_fill_alloc(a.nbytes);

				memset(got, 0, a.nbytes);
				snprintf(what, sizeof(what), "%s, shape %zu, %u threads",
					 gen_descr[g], k, t);
				cr_assert_eq(mpfs_fill_nested(&d.doc, &a, got, t), 0, "%s", what);
				same_bytes(got, want, a.nbytes, what);
				mpfs_fill_free(got, a.nbytes);
			}
			free(want);
			tu_doc_free(&d);
		}
}

/* The same for an array big enough to be split by itself, with a buffer
 * from mpfs_fill_alloc (huge pages). */
Test(fs_fill, a_big_array_is_split_and_comes_out_the_same)
{
	static const uint32_t shape[] = {1500, 500};
	struct tu_doc d;
	struct mpfs_array a;

	cr_assert_eq(mpfs_guard_init(), 0);
	gen_doc(&d, &a, 5, GEN_MIXED, 2, shape);
	cr_assert_eq(a.nbytes, 6000000);
	uint8_t *want = slow_bytes(&d, &a), *got = mpfs_fill_alloc(a.nbytes);
	cr_assert_eq(mpfs_fill_nested(&d.doc, &a, got, 0), 0);
	same_bytes(got, want, a.nbytes, "auto threads");
	memset(got, 0, a.nbytes);
	cr_assert_eq(mpfs_fill_nested(&d.doc, &a, got, 1), 0);
	same_bytes(got, want, a.nbytes, "one thread");
	mpfs_fill_free(got, a.nbytes);
	free(want);
	tu_doc_free(&d);
}

/* The archive cut short in place while its rows are being made: the
 * threads whose rows lie past the new end take SIGBUS, each under its own
 * guard, and the fill says -EIO; nothing dies. */
Test(fs_fill, archive_cut_short_under_the_threads_gives_eio)
{
	static const uint32_t shape[] = {1500, 500};
	char *dir = tu_temp_dir(), *path;
	struct mpfs_error err;
	struct mpfs_doc doc;
	struct mpfs_array a;
	struct tb b = {0};
	uint64_t s = 21;

	cr_assert_eq(mpfs_guard_init(), 0);
	gen_list(&b, &s, GEN_F64, 2, shape);
	cr_assert(asprintf(&path, "%s/a.mpk", dir) > 0);
	tu_write_file(path, b.p, b.len);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	uint8_t *map = mmap(NULL, b.len, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(map, MAP_FAILED);
	cr_assert_eq(mpfs_doc_init(&doc, map, b.len, &err), MPFS_OK, "%s", err.msg);
	cr_assert(mpfs_array_nested(&doc.root, &a));
	cr_assert_eq(ftruncate(fd, 4096), 0); /* rows past the first page: gone */
	uint8_t *out = mpfs_fill_alloc(a.nbytes);
	for (unsigned t = 1; t <= 4; t++)
		cr_assert_eq(mpfs_fill_nested(&doc, &a, out, t), -EIO, "%u threads", t);
	mpfs_fill_free(out, a.nbytes);
	mpfs_doc_destroy(&doc);
	munmap(map, b.len);
	close(fd);
	tb_free(&b);
	tu_rm_rf(dir);
	free(path);
	free(dir);
}

Test(fs_fill, thread_count_follows_size_and_rows)
{
	struct mpfs_array a = {.ndim = 2, .itemsize = 8};

	a.shape[0] = 1000, a.shape[1] = 100; /* 800 kB: not worth a thread */
	cr_assert(mpfs_array_sized(&a));
	cr_assert_eq(mpfs_fill_threads(&a), 1);
	a.shape[0] = 1, a.shape[1] = 100000000; /* one row of 800 MB */
	cr_assert(mpfs_array_sized(&a));
	cr_assert_eq(mpfs_fill_threads(&a), 1);
	a.shape[0] = 100000, a.shape[1] = 1000; /* 800 MB in 100k rows */
	cr_assert(mpfs_array_sized(&a));
	cr_assert_geq(mpfs_fill_threads(&a), 1);
	cr_assert_leq(mpfs_fill_threads(&a), MPFS_FILL_MAX_THREADS);
	a.shape[0] = 0;
	cr_assert(mpfs_array_sized(&a));
	cr_assert_eq(mpfs_fill_threads(&a), 1);
}

/* ---- reads by reference -------------------------------------------------------- */

#define READ_MAX 983040 /* mount/ops.h: MPFS_READ_MAX */

static void reply_pipe(int fd[2])
{
	cr_assert_eq(pipe2(fd, O_CLOEXEC | O_NONBLOCK), 0);
	cr_assert_geq(fcntl(fd[1], F_SETPIPE_SZ, 1 << 20), 1 << 20);
}

static int in_pipe(int fd)
{
	int n = -1;

	cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/* Reads [off, off+size) of fh into the pipe and checks what comes out
 * against want[0..len). */
static void pipe_read_is(struct env *e, uint64_t fh, int fd[2], uint64_t off, size_t size,
			 const char *want, size_t len)
{
	size_t expect = off >= len ? 0 : len - off < size ? len - off : size;
	long n = mpfs_fs_read_pipe(e->fs, fh, size, off, fd[1]);
	char *got = malloc(size + 1);

	cr_assert_eq(n, (long)expect, "read %zu at %llu: %ld", size, (unsigned long long)off, n);
	cr_assert_eq(in_pipe(fd[0]), (int)n);
	cr_assert_eq(read(fd[0], got, size + 1), n ? n : -1);
	cr_assert(memcmp(got, want + off, (size_t)n) == 0, "other bytes at %llu",
		  (unsigned long long)off);
	free(got);
}

/* An archive with a big nested array (2.9 MB: made into a buffer that
 * lasts), a small one, a compact one and a parameter to edit. */
static void big_and_small(struct tb *b)
{
	static const uint32_t big[] = {600, 600}, small[] = {3, 3};
	uint64_t s = 9;

	tb_map(b, 3);
	tb_str(b, "class_name");
	tb_str(b, "X");
	tb_str(b, "params");
	tb_map(b, 1);
	tb_str(b, "alpha");
	tb_uint(b, 1);
	tb_str(b, "weights");
	tb_map(b, 3);
	tb_str(b, "w");
	gen_list(b, &s, GEN_MIXED, 2, big);
	tb_str(b, "small");
	gen_list(b, &s, GEN_F64, 2, small);
	tb_str(b, "c");
	tb_compact(b, "<f8", 1, "\0\0\0\0\0\0\xf0\x3f", 8);
}

Test(fs_fill, made_array_goes_to_a_pipe_and_outlives_its_view)
{
	static const char *const others[] = {"/weights/small.npy", "/weights/c.npy",
					     "/params/alpha"};
	struct tb b = {0};
	struct env e;
	size_t len;
	int fd[2];

	cr_assert_eq(mpfs_guard_init(), 0);
	big_and_small(&b);
	env_open_bytes(&e, b.p, b.len);
	tb_free(&b);
	reply_pipe(fd);
	uint64_t fh = fs_open(&e, "/weights/w.npy", O_RDONLY, false);
	char *want = fh_read(&e, fh, &len); /* the copying read */
	cr_assert_eq(len, 128 + 600 * 600 * 8);

	/* the header, whole requests, the end, past it, odd pieces */
	pipe_read_is(&e, fh, fd, 0, READ_MAX, want, len);
	pipe_read_is(&e, fh, fd, READ_MAX, READ_MAX, want, len);
	pipe_read_is(&e, fh, fd, 5, 4000, want, len);
	pipe_read_is(&e, fh, fd, 100, 28, want, len);
	pipe_read_is(&e, fh, fd, len - 1000, READ_MAX, want, len);
	pipe_read_is(&e, fh, fd, len, READ_MAX, want, len);
	pipe_read_is(&e, fh, fd, len + 5, 10, want, len);

	/* Put in the pipe, then a commit replaces the snapshot (and frees the
	 * view that made the array): the pipe still gives the bytes. */
	long n = mpfs_fs_read_pipe(e.fs, fh, READ_MAX, 4096, fd[1]);
	cr_assert_eq(n, READ_MAX);
	cr_assert_eq(echo_to(&e, "/params/alpha", "2\n", false), 0);
	char *got = malloc(READ_MAX);
	cr_assert_eq(read(fd[0], got, READ_MAX), READ_MAX);
	cr_assert(memcmp(got, want + 4096, READ_MAX) == 0, "the bytes changed in the pipe");
	free(got);
	/* and the new snapshot makes it again */
	pipe_read_is(&e, fh, fd, 77, READ_MAX, want, len);
	fs_release(&e, fh);

	/* Anything else is not made into a lasting buffer: nothing put. */
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		fh = fs_open(&e, others[i], O_RDONLY, false);
		cr_assert_eq(mpfs_fs_read_pipe(e.fs, fh, READ_MAX, 0, fd[1]), -EAGAIN, "%s",
			     others[i]);
		cr_assert_eq(in_pipe(fd[0]), 0, "%s: put in the pipe", others[i]);
		fs_release(&e, fh);
	}
	close(fd[0]);
	close(fd[1]);
	free(want);
	env_close(&e);
}
