/* How fast the bytes of a nested-list array are made, without FUSE: the
 * general per-element decoder against the row loops, on one thread and
 * more, into a fresh buffer (as a first read makes it) and into one
 * already written (the decode alone). A benchmark, not a test.
 *
 *     build/bench_fill [SIDE [REPEAT]]
 *
 * makes a SIDE x SIDE array (default 3000) of float64s, then of int64s
 * (both signs, as msgpack writes them: uint64 and int64 tags), and prints
 * the best of REPEAT (default 7) runs of each, as MB/s of archive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/array.h"
#include "fs/fill.h"
#include "fs/guard.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void put_be(uint8_t **p, uint8_t tag, uint64_t x)
{
	*(*p)++ = tag;
	for (int i = 7; i >= 0; i--)
		*(*p)++ = (uint8_t)(x >> 8 * i);
}

/* SIDE rows of SIDE float64s (0xcb) or ints (0xcf/0xd3), as an array32 of
 * array16s; *n gets the length. */
static uint8_t *make_archive(uint32_t side, bool ints, size_t *n)
{
	uint8_t *buf = malloc(5 + (size_t)side * (3 + 9 * (size_t)side)), *p = buf;
	uint64_t s = 88172645463325252ull;

	*p++ = 0xdd;
	for (int i = 3; i >= 0; i--)
		*p++ = (uint8_t)(side >> 8 * i);
	for (uint32_t r = 0; r < side; r++) {
		*p++ = 0xdc, *p++ = (uint8_t)(side >> 8), *p++ = (uint8_t)side;
		for (uint32_t c = 0; c < side; c++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			if (!ints) /* a double in [1, 2) */
				put_be(&p, 0xcb, 0x3ff0000000000000ull | (s >> 12));
			else if (s & 1) /* negative: int64 */
				put_be(&p, 0xd3, (s >> 20) | 0xfff0000000000000ull);
			else
				put_be(&p, 0xcf, s >> 20);
		}
	}
	*n = (size_t)(p - buf);
	return buf;
}

/* Best seconds of repeat runs; fresh: a new buffer each run. */
static double best(const struct mpfs_doc *doc, const struct mpfs_array *a, int how, bool fresh,
		   int repeat)
{
	uint8_t *out = fresh ? NULL : mpfs_fill_alloc(a->nbytes);
	double min = 1e9;

	if (out)
		memset(out, 0, a->nbytes);
	for (int k = 0; k < repeat; k++) {
		uint8_t *o = fresh ? mpfs_fill_alloc(a->nbytes) : out;
		double t = now();

		if (how == 0)
			mpfs_array_fill_slow(doc, a, o);
		else
			mpfs_fill_nested(doc, a, o, (unsigned)how);
		t = now() - t;
		if (t < min)
			min = t;
		if (fresh)
			mpfs_fill_free(o, a->nbytes);
	}
	if (out)
		mpfs_fill_free(out, a->nbytes);
	return min;
}

int main(int argc, char **argv)
{
	uint32_t side = argc > 1 ? (uint32_t)atoi(argv[1]) : 3000;
	int repeat = argc > 2 ? atoi(argv[2]) : 7;
	static const char *const names[] = {"general decoder", "row loops, 1 thread",
					    "row loops, 2 threads"};

	if (side == 0 || side > 20000 || repeat < 1 || mpfs_guard_init()) {
		fprintf(stderr, "usage: bench_fill [SIDE (1-20000) [REPEAT]]\n");
		return 2;
	}
	printf("%-8s %-22s %14s %14s\n", "", "", "fresh buffer", "written buffer");
	for (int ints = 0; ints < 2; ints++) {
		struct mpfs_error err;
		struct mpfs_doc doc;
		struct mpfs_array a;
		size_t n;
		uint8_t *buf = make_archive(side, ints, &n);

		if (mpfs_doc_init(&doc, buf, n, &err) || !mpfs_array_nested(&doc.root, &a)) {
			fprintf(stderr, "bench_fill: %s\n", err.msg);
			return 1;
		}
		for (int how = 0; how < 3; how++) {
			double f = best(&doc, &a, how, true, repeat);
			double w = best(&doc, &a, how, false, repeat);

			printf("%-8s %-22s %8.0f MB/s %8.0f MB/s\n", ints ? "int64" : "float64",
			       names[how], (double)n / 1e6 / f, (double)n / 1e6 / w);
		}
		mpfs_doc_destroy(&doc);
		free(buf);
	}
	return 0;
}
