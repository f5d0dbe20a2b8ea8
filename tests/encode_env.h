/* Shared by the codec/encode.c suites (test_encode_*.c): hex for messages,
 * produced bytes checked and decoded again, arrays and an old nested array.
 * Include once per suite (static helpers); define TU_WRAP_ALLOCS before it
 * in the suites that count allocations. */
#ifndef MPFS_TESTS_ENCODE_ENV_H
#define MPFS_TESTS_ENCODE_ENV_H

#include <criterion/criterion.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>

#include "codec/array.h"
#include "codec/encode.h"
#include "codec/npy.h"
#include "testutil.h"

/* ---- helpers --------------------------------------------------------------------- */

/* Bytes as hex for messages (one of four rotating static buffers). */
static inline const char *hexs(const void *p, size_t n)
{
	static char bufs[4][1024];
	static int k;
	char *o = bufs[k++ % 4];
	size_t i, w = 0;
	for (i = 0; i < n && w + 4 < sizeof(bufs[0]); i++)
		w += (size_t)sprintf(o + w, "%s%02x", i ? " " : "", ((const uint8_t *)p)[i]);
	if (i < n)
		strcpy(o + w, "...");
	else
		o[w] = '\0';
	return o;
}

static inline void expect_bytes(const void *got, size_t n, const char *want_hex, const char *what)
{
	struct tb w = {0};
	tb_hex(&w, want_hex);
	cr_assert(n == w.len && memcmp(got, w.p, n) == 0, "%s: got [%s], expected [%s]", what,
		  hexs(got, n), hexs(w.p, w.len));
	tb_free(&w);
}

/* out must hold exactly one MsgPack value; decoded into d. */
static inline void decode_out(struct tu_doc *d, const struct mpfs_strbuf *out, const char *what)
{
	struct mpfs_error err;
	cr_assert_not(out->oom, "%s: out of memory", what);
	d->n = out->len;
	d->buf = tu_dup(out->p, out->len);
	cr_assert_eq(mpfs_doc_init(&d->doc, d->buf, d->n, &err), MPFS_OK,
		     "%s: produced [%s] does not decode: %s", what, hexs(out->p, out->len),
		     err.msg);
}

/* A path of string keys below the root of d, "a/b/c". */
static inline const struct mpfs_val *get(const struct tu_doc *d, const char *path)
{
	const struct mpfs_val *v = &d->doc.root;
	char *copy = strdup(path), *save = NULL;
	for (char *k = strtok_r(copy, "/", &save); k; k = strtok_r(NULL, "/", &save)) {
		v = mpfs_map_get(&d->doc, v, k);
		cr_assert_not_null(v, "no %s (of %s)", k, path);
	}
	free(copy);
	return v;
}

static inline void expect_shape(const struct mpfs_array *a, const char *descr, const char *shape)
{
	char s[256];
	mpfs_array_shape_str(a, s, sizeof(s));
	cr_assert_str_eq(a->descr, descr);
	cr_assert_str_eq(s, shape);
	uint64_t count = 1;
	for (unsigned d = 0; d < a->ndim; d++)
		count *= a->shape[d];
	cr_assert_eq(a->count, count);
	cr_assert_eq(a->nbytes, count * a->itemsize);
}

static inline struct mpfs_array arr(const char *descr, unsigned ndim, const uint64_t *shape)
{
	struct mpfs_array a = {0};
	cr_assert(mpfs_array_parse_dtype((const uint8_t *)descr, strlen(descr), &a), "%s", descr);
	a.ndim = (uint8_t)ndim;
	a.count = 1;
	for (unsigned d = 0; d < ndim; d++)
		a.count *= a.shape[d] = shape[d];
	a.nbytes = a.count * a.itemsize;
	return a;
}

#define SHAPE(...) ((const uint64_t[]){__VA_ARGS__})

/* An old nested array, taken from a real document. */
static struct tu_doc nested_doc;
static struct mpfs_array nested_old;

static inline void nested_setup(void)
{
	tu_doc_hex(&nested_doc, "92 cb 3f f8 00 00 00 00 00 00 01");
	cr_assert(mpfs_array_nested(&nested_doc.doc.root, &nested_old));
	cr_assert_eq(nested_old.encoding, MPFS_ENC_NESTED);
}

static inline void nested_teardown(void)
{
	tu_doc_free(&nested_doc);
}

#endif
