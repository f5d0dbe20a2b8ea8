/* codec/decode.c on real archives: every fixture and every prefix of one,
 * the bad fixtures, out of memory at every allocation, and a leaf array's
 * walk inside a buffer rewritten in place. */
#define TU_WRAP_ALLOCS
#include "decode_env.h"

/* ---- real archives --------------------------------------------------------- */

Test(codec_decode, fixtures_decode)
{
	for (size_t i = 0; i < TU_NGOOD; i++) {
		struct dc d;
		size_t n;
		uint8_t *p = tu_fixture(tu_good_fixtures[i], &n);
		dc_bytes(&d, p, n);
		free(p);
		expect_ok(&d, tu_good_fixtures[i]);
		cr_assert_eq(d.doc.root.type, MPFS_MAP, "%s", tu_good_fixtures[i]);
		dc_free(&d);
	}
}

/* Every proper prefix of every real archive is refused as truncated (the
 * empty one as empty), with an offset inside it, and never crashes: each
 * prefix is its own heap block, so reading past it is caught by ASan. */
Test(codec_decode, every_prefix_of_fixtures_is_truncated, .timeout = 60)
{
	for (size_t i = 0; i < TU_NGOOD; i++) {
		size_t n;
		uint8_t *p = tu_fixture(tu_good_fixtures[i], &n);
		for (size_t k = 0; k < n; k++) {
			struct dc d;
			char what[64];
			dc_bytes(&d, p, k);
			snprintf(what, sizeof(what), "%s[0..%zu)", tu_good_fixtures[i], k);
			cr_assert_eq(d.rc, k ? MPFS_E_TRUNCATED : MPFS_E_EMPTY, "%s: %s", what,
				     mpfs_codec_strerror(d.rc));
			cr_assert_leq(d.err.off, k, "%s: offset %llu", what,
				      (unsigned long long)d.err.off);
			cr_assert(d.err.msg[0], "%s: no message", what);
			cr_assert_null(d.doc.arena);
			dc_free(&d);
		}
		free(p);
	}
}

Test(codec_decode, bad_fixtures_that_are_bad_msgpack)
{
	static const struct {
		const char *name;
		enum mpfs_codec_err code;
		uint64_t off;
	} cases[] = {
		{"bad_empty.mpk", MPFS_E_EMPTY, 0},
		{"bad_huge_array_len.mpk", MPFS_E_TRUNCATED, 12},
		{"bad_huge_map_len.mpk", MPFS_E_TRUNCATED, 0},
		{"bad_huge_str_len.mpk", MPFS_E_TRUNCATED, 3},
		{"bad_reserved_c1.mpk", MPFS_E_RESERVED, 3},
		{"bad_deep_nesting.mpk", MPFS_E_DEPTH, MPFS_MAX_DEPTH},
		{"bad_trailing_bytes.mpk", MPFS_E_TRAILING, 5581},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dc d;
		struct tb b = {0};
		size_t n;
		uint8_t *p = tu_fixture(cases[i].name, &n);
		tb_put(&b, p, n);
		free(p);
		dc_tracked(&d, &b);
		expect_err(&d, cases[i].name, cases[i].code, cases[i].off);
		cr_assert_lt(tu_allocs.total, 64 * n + (1 << 20), "%s: %zu bytes allocated",
			     cases[i].name, tu_allocs.total);
		dc_free(&d);
	}
	/* The truncated archive fails somewhere inside. */
	struct dc d;
	size_t n;
	uint8_t *p = tu_fixture("bad_truncated.mpk", &n);
	dc_bytes(&d, p, n);
	free(p);
	cr_assert_eq(d.rc, MPFS_E_TRUNCATED);
	cr_assert_lt(d.err.off, n);
	dc_free(&d);
}

/* Each allocation of mpfs_doc_init fails in turn: the call then fails with
 * MPFS_E_NOMEM and frees what it had (LeakSanitizer checks), until every
 * allocation succeeds. Rendering into a strbuf runs out of memory as a
 * sticky flag. (mpfs_model_init: see test_model_rejects.c.) */
Test(codec_decode, out_of_memory_at_every_allocation, .timeout = 60)
{
	static const char *const names[] = {"edge_values.mpk", "mlp_seed.mpk", "tfidf_compact.mpk"};
	for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
		size_t n;
		uint8_t *p = tu_fixture(names[f], &n);
		for (size_t k = 1;; k++) {
			struct mpfs_doc doc;
			struct mpfs_error err;
			enum mpfs_codec_err rc;

			cr_assert_lt(k, 100000, "%s: never succeeds", names[f]);
			tu_track_allocs();
			tu_allocs.fail_at = k;
			rc = mpfs_doc_init(&doc, p, n, &err);
			tu_allocs.on = false;
			if (rc == MPFS_OK) {
				cr_assert_lt(tu_allocs.calls, k, "%s: allocation %zu failed unseen",
					     names[f], k);
				mpfs_doc_destroy(&doc);
				break;
			}
			cr_assert_eq(rc, MPFS_E_NOMEM, "%s, allocation %zu failing: %s", names[f],
				     k, err.msg);
			cr_assert(err.msg[0]);
			cr_assert_lt(err.off, n);
			cr_assert_null(doc.arena);
		}
		free(p);
	}

	struct mpfs_doc doc;
	struct mpfs_error err;
	struct mpfs_strbuf out;
	static const uint8_t list[] = {0x93, 0xa1, 0x61, 0x01, 0xc0};
	cr_assert_eq(mpfs_doc_init(&doc, list, sizeof(list), &err), MPFS_OK);
	for (size_t k = 1; k < 4; k++) {
		mpfs_strbuf_init(&out);
		tu_track_allocs();
		tu_allocs.fail_at = k;
		mpfs_json_render(&doc, &doc.root, &out);
		tu_allocs.on = false;
		if (tu_allocs.calls >= k)
			cr_assert(out.oom, "allocation %zu failed, but oom is not set", k);
		mpfs_strbuf_destroy(&out);
	}
	mpfs_doc_destroy(&doc);
}

/* Issue 7, item 11: leaf arrays are walked again from the buffer (a mapping
 * of the archive) after decoding, and someone may rewrite the archive in
 * place. An element that now claims 2 GiB made the walk read far past the
 * buffer (AddressSanitizer: heap-buffer-overflow here). A walk is bounded by
 * the end it is given, or by the mpfs_scalar_bound scope. */
Test(codec_decode, scalar_walk_stays_inside_a_rewritten_buffer)
{
	struct dc d;
	struct mpfs_val e;

	dc_hex(&d, "93 a1 61 a3 62 63 64 cb 3f f0 00 00 00 00 00 00");
	uint64_t first = d.doc.root.off + d.doc.root.hdr;
	/* The second element becomes a str32 of 2 GiB (same size, in place). */
	memcpy(d.buf + 3, "\xdb\x7f\xff\xff", 4);
	uint64_t off = mpfs_scalar_next(d.buf, d.n, first, &e);
	cr_assert_eq(e.type, MPFS_STR);
	cr_assert_eq(off, 3);
	off = mpfs_scalar_next(d.buf, d.n, off, &e);
	cr_assert_eq(e.type, MPFS_NIL, "what does not fit is a nil");
	cr_assert_eq(e.off, d.n);
	cr_assert_eq(off, d.n, "and the walk ends");
	off = mpfs_scalar_next(d.buf, d.n, off, &e);
	cr_assert_eq(off, d.n);
	cr_assert_eq(e.type, MPFS_NIL);

	/* Callers that give no end: bounded inside a scope. */
	struct mpfs_scalar_bound outer;
	mpfs_scalar_bound(d.buf, d.n, &outer);
	off = first;
	for (int i = 0; i < 3; i++)
		off = mpfs_scalar_at(d.buf, off, &e);
	mpfs_scalar_unbound(&outer);
	cr_assert_eq(off, d.n);
	cr_assert_eq(e.type, MPFS_NIL);

	/* A header cut by the end, and a container where a scalar was. */
	memcpy(d.buf + 3, "\xa3\x62\x63\x64", 4);
	off = mpfs_scalar_next(d.buf, d.n - 1, 7, &e);
	cr_assert_eq(e.type, MPFS_NIL, "float64 header cut by the end");
	cr_assert_eq(off, d.n - 1);
	d.buf[7] = 0x91;
	off = mpfs_scalar_next(d.buf, d.n, 7, &e);
	cr_assert_eq(e.type, MPFS_NIL, "a list is not a scalar");
	dc_free(&d);
}
