/* Shared by the codec/decode.c suites (test_decode_*.c): bytes decoded and
 * checked, accepted or refused. Include once per suite (static helpers),
 * after defining TU_WRAP_ALLOCS: the suites are linked with
 * -Wl,--wrap=malloc,calloc,realloc (see tests/meson.build) so that a test
 * can see what the decoder allocates, and make it fail. */
#ifndef MPFS_TESTS_DECODE_ENV_H
#define MPFS_TESTS_DECODE_ENV_H

#include <criterion/criterion.h>
#include <float.h>
#include <math.h>

#include "codec/json.h"
#include "codec/value.h"
#include "testutil.h"

/* ---- decoding helpers ----------------------------------------------------- */

struct dc {
	uint8_t *buf; /* exactly n bytes on the heap */
	size_t n;
	struct mpfs_doc doc;
	struct mpfs_error err;
	enum mpfs_codec_err rc;
};

static inline void dc_bytes(struct dc *d, const void *p, size_t n)
{
	d->buf = tu_dup(p, n);
	d->n = n;
	d->rc = mpfs_doc_init(&d->doc, d->buf, n, &d->err);
}

static inline void dc_tb(struct dc *d, struct tb *b)
{
	dc_bytes(d, b->p, b->len);
	tb_free(b);
}

static inline void dc_hex(struct dc *d, const char *hex)
{
	struct tb b = {0};
	tb_hex(&b, hex);
	dc_tb(d, &b);
}

static inline void dc_free(struct dc *d)
{
	if (d->rc == MPFS_OK)
		mpfs_doc_destroy(&d->doc);
	free(d->buf);
	memset(d, 0, sizeof(*d));
}

static inline void expect_ok(struct dc *d, const char *what)
{
	cr_assert_eq(d->rc, MPFS_OK, "%s: expected success, got %s at %llu: %s", what,
		     mpfs_codec_strerror(d->rc), (unsigned long long)d->err.off, d->err.msg);
	cr_assert_eq(d->doc.buf, d->buf, "%s: doc.buf", what);
	cr_assert_eq(d->doc.size, d->n, "%s: doc.size", what);
	cr_assert_eq(d->doc.root.off, 0, "%s: root.off", what);
	cr_assert_eq(d->doc.root.end, d->n, "%s: root.end %llu != %zu", what,
		     (unsigned long long)d->doc.root.end, d->n);
	cr_assert_eq(d->doc.root.tag, d->buf[0], "%s: tag", what);
}

/* Decodes hex, which must be one value of type with hdr header bytes, and
 * returns the root (valid until dc_free). */
static inline const struct mpfs_val *ok_hex(struct dc *d, const char *hex, enum mpfs_type type,
					    unsigned hdr)
{
	dc_hex(d, hex);
	expect_ok(d, hex);
	cr_assert_eq(d->doc.root.type, type, "%s: type %d, expected %d", hex, d->doc.root.type,
		     type);
	cr_assert_eq(d->doc.root.hdr, hdr, "%s: hdr %u, expected %u", hex, d->doc.root.hdr, hdr);
	return &d->doc.root;
}

static inline void expect_err(struct dc *d, const char *what, enum mpfs_codec_err code,
			      uint64_t off)
{
	cr_assert_eq(d->rc, code, "%s: expected %s, got %s (%s)", what, mpfs_codec_strerror(code),
		     mpfs_codec_strerror(d->rc), d->err.msg);
	cr_assert_eq(d->err.code, code, "%s: err.code", what);
	cr_assert_eq(d->err.off, off, "%s: error offset %llu, expected %llu (%s)", what,
		     (unsigned long long)d->err.off, (unsigned long long)off, d->err.msg);
	cr_assert(d->err.msg[0] != '\0', "%s: empty error message", what);
	cr_assert(strchr(d->err.msg, '\n') == NULL, "%s: message is not one line", what);
	/* Nothing to release on failure. */
	cr_assert_null(d->doc.arena, "%s: arena left behind", what);
	cr_assert_null(d->doc.buf, "%s: doc.buf set", what);
}

static inline void err_hex(const char *hex, enum mpfs_codec_err code, uint64_t off)
{
	struct dc d;
	dc_hex(&d, hex);
	expect_err(&d, hex, code, off);
	dc_free(&d);
}

static inline void check_payload(const struct dc *d, const struct mpfs_val *v, const void *data,
				 size_t n)
{
	cr_assert_eq(v->len, n, "len %u, expected %zu", v->len, n);
	cr_assert_eq(v->end, v->off + v->hdr + n);
	cr_assert_eq(mpfs_val_data(&d->doc, v), d->buf + v->off + v->hdr);
	if (n)
		cr_assert(memcmp(mpfs_val_data(&d->doc, v), data, n) == 0, "payload differs");
}

static inline uint64_t bits(double f)
{
	uint64_t x;
	memcpy(&x, &f, 8);
	return x;
}

/* Decodes b (freed) while counting what mpfs_doc_init allocates. */
static inline void dc_tracked(struct dc *d, struct tb *b)
{
	d->buf = tu_dup(b->p, b->len);
	d->n = b->len;
	tb_free(b);
	tu_track_allocs();
	d->rc = mpfs_doc_init(&d->doc, d->buf, d->n, &d->err);
	tu_allocs.on = false;
}

#endif
