/* codec/encode.c running out of memory: each allocation of a JSON, array
 * or document encoding fails in turn, and the encoding says so, never
 * producing a wrong value. */
#define TU_WRAP_ALLOCS /* linked with --wrap=malloc,... (tests/meson.build) */
#include "encode_env.h"

/* ---- running out of memory ------------------------------------------------------------------- */

/* mpfs_encode_array in encode_oom needs the nested old array too. */
TestSuite(encode_oom, .init = nested_setup, .fini = nested_teardown);

/* A write callback that allocates nothing (allocations are being counted). */
static uint8_t sink[1 << 16];
static size_t sink_len;

static int sink_write(void *ctx, const void *p, size_t n)
{
	(void)ctx;
	cr_assert_leq(sink_len + n, sizeof(sink));
	memcpy(sink + sink_len, p, n);
	sink_len += n;
	return 0;
}

/* Each allocation fails in turn: mpfs_encode_json then says MPFS_E_NOMEM
 * (or out.oom is set), never a wrong value. */
static void json_oom(const char *text)
{
	struct tu_doc d;
	tu_doc_hex(&d, "c0");
	size_t len = strlen(text);
	char *t = (char *)tu_dup(text, len);
	struct mpfs_strbuf good;
	struct mpfs_error err;

	mpfs_strbuf_init(&good);
	cr_assert_eq(mpfs_encode_json(&d.doc, NULL, t, len, &good, &err), MPFS_OK);
	for (size_t k = 1;; k++) {
		struct mpfs_strbuf out;
		enum mpfs_codec_err rc;

		cr_assert_lt(k, 10000);
		mpfs_strbuf_init(&out);
		tu_track_allocs();
		tu_allocs.fail_at = k;
		rc = mpfs_encode_json(&d.doc, NULL, t, len, &out, &err);
		tu_allocs.on = false;
		if (tu_allocs.calls < k) { /* nothing failed */
			cr_assert_eq(rc, MPFS_OK);
			mpfs_strbuf_destroy(&out);
			break;
		}
		cr_assert(rc == MPFS_E_NOMEM || out.oom,
			  "'%s', allocation %zu failing: %d, produced [%s] instead of [%s]", text,
			  k, rc, hexs(out.p, out.len), hexs(good.p, good.len));
		mpfs_strbuf_destroy(&out);
	}
	mpfs_strbuf_destroy(&good);
	free(t);
	tu_doc_free(&d);
}

Test(encode_oom, json_without_strings)
{
	json_oom("[1, [2.5, [true, null]], {}, [[[[]]]]]");
	json_oom("not json at all, a string");
}

/* The decoded text of a JSON string (or object key) goes to a buffer of its
 * own whose failure is not looked at: with that allocation failing, the
 * string comes out empty (or cut) and the call still returns MPFS_OK, so a
 * commit would store "" for "abc". */
Test(encode_oom, json_strings)
{
	json_oom("\"abc\"");
	json_oom("{\"key\": \"value\"}");
}

Test(encode_oom, arrays_and_documents)
{
	struct tu_doc d;
	tu_doc_fixture(&d, "edge_values.mpk");
	struct mpfs_array old, a = arr("<i4", 2, SHAPE(3, 2)), a8 = arr("<i8", 2, SHAPE(3, 2));
	struct mpfs_error err;
	static const int32_t v[6] = {1, 2, 3, 4, 5, 6};
	static const int64_t v8[6] = {1, 2, 3, 4, 5, 6}; /* nested lists read back int64 */
	cr_assert_eq(mpfs_array_compact(&d.doc, get(&d, "weights/i32"), &old, &err), MPFS_OK);

	for (int which = 0; which < 3; which++)
		for (size_t k = 1;; k++) {
			struct mpfs_strbuf out;
			cr_assert_lt(k, 1000);
			mpfs_strbuf_init(&out);
			tu_track_allocs();
			tu_allocs.fail_at = k;
			enum mpfs_codec_err rc = mpfs_encode_array(
				which == 2 ? &nested_doc.doc : &d.doc,
				which == 0   ? &old
				: which == 1 ? NULL
					     : &nested_old,
				which == 2 ? &a8 : &a,
				which == 2 ? (const void *)v8 : (const void *)v, &out, &err);
			tu_allocs.on = false;
			bool failed = tu_allocs.calls >= k;
			/* before: MPFS_OK with out.oom set, so a commit would store
			 * a cut array */
			cr_assert(!failed || (rc == MPFS_E_NOMEM && err.code == MPFS_E_NOMEM &&
					      out.len == 0),
				  "encoding %d, allocation %zu failing: %d, %zu bytes out", which,
				  k, rc, out.len);
			cr_assert(failed || rc == MPFS_OK, "encoding %d: %s", which, err.msg);
			mpfs_strbuf_destroy(&out);
			if (!failed)
				break;
		}

	/* the re-encoded header of a map whose count changes */
	struct mpfs_edit ed = {.op = MPFS_EDIT_DELETE, .target = get(&d, "params"), .index = 0};
	sink_len = 0;
	tu_track_allocs();
	tu_allocs.fail_at = 1;
	int rc = mpfs_encode_doc(&d.doc, &ed, 1, sink_write, NULL);
	tu_allocs.on = false;
	cr_assert_eq(tu_allocs.calls, 1);
	cr_assert_eq(rc, -1, "out of memory not reported");
	sink_len = 0;
	cr_assert_eq(mpfs_encode_doc(&d.doc, &ed, 1, sink_write, NULL), 0);
	cr_assert_eq(sink_len,
		     d.n - (get(&d, "params")->items[2].off - get(&d, "params")->items[0].off));
	tu_doc_free(&d);
}
