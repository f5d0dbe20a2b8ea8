/* codec/encode.c: whole archives re-encoded with edits, copying what no
 * edit touches, and failing writes failing the encoding. Produced bytes are
 * checked exactly and decoded again with mpfs_doc_init. */
#include "encode_env.h"

/* ---- whole archives ------------------------------------------------------------------- */

static int tb_write(void *ctx, const void *p, size_t n)
{
	tb_put(ctx, p, n);
	return 0;
}

/* Encodes d with the edits; the output must decode (into *e if given). */
static void encode_doc(const struct tu_doc *d, const struct mpfs_edit *ed, size_t n, struct tb *out)
{
	memset(out, 0, sizeof(*out));
	cr_assert_eq(mpfs_encode_doc(&d->doc, ed, n, tb_write, out), 0);
}

/* out must be d's bytes with [off, end) replaced by the hex bytes. */
static void spliced(const struct tb *out, const struct tu_doc *d, uint64_t off, uint64_t end,
		    const char *hex, const char *what)
{
	struct tb w = {0};
	tb_put(&w, d->buf, off);
	tb_hex(&w, hex);
	tb_put(&w, d->buf + end, d->n - end);
	cr_assert(out->len == w.len && memcmp(out->p, w.p, w.len) == 0,
		  "%s: output differs from the input spliced at [%" PRIu64 ", %" PRIu64 ")", what,
		  off, end);
	tb_free(&w);
}

Test(encode_doc, no_edits_copies_every_fixture)
{
	for (size_t i = 0; i < TU_NGOOD; i++) {
		struct tu_doc d;
		struct tb out;
		tu_doc_fixture(&d, tu_good_fixtures[i]);
		encode_doc(&d, NULL, 0, &out);
		cr_assert(out.len == d.n && memcmp(out.p, d.buf, d.n) == 0,
			  "%s: not byte-identical", tu_good_fixtures[i]);
		tb_free(&out);
		tu_doc_free(&d);
	}
	/* odd widths: map16 of 1, array32 of 2, str32, bin32, uint64 of 1, float32 */
	struct tu_doc d;
	struct tb out;
	tu_doc_hex(&d, "de 00 01 db 00 00 00 01 6b dd 00 00 00 03 c6 00 00 00 01 ff "
		       "cf 00 00 00 00 00 00 00 01 ca 3f 80 00 00");
	encode_doc(&d, NULL, 0, &out);
	cr_assert(out.len == d.n && memcmp(out.p, d.buf, d.n) == 0);
	tb_free(&out);
	tu_doc_free(&d);
}

Test(encode_doc, replace_a_scalar)
{
	struct tu_doc d, e;
	struct tb out;
	const struct mpfs_val *v;

	tu_doc_fixture(&d, "edge_values.mpk");
	v = get(&d, "params/f32");
	struct mpfs_edit ed = {.op = MPFS_EDIT_REPLACE,
			       .target = v,
			       .bytes = (const uint8_t *)"\xca\x3f\x00\x00\x00",
			       .len = 5};
	encode_doc(&d, &ed, 1, &out);
	spliced(&out, &d, v->off, v->end, "ca 3f 00 00 00", "params/f32");
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_eq(get(&e, "params/f32")->f, 0.5);
	tu_doc_free(&e);
	tb_free(&out);

	/* by something longer: a list, and a map */
	v = get(&d, "params/none");
	ed = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
				.target = v,
				.bytes = (const uint8_t *)"\x81\xa1x\x92\x01\x02",
				.len = 6};
	encode_doc(&d, &ed, 1, &out);
	spliced(&out, &d, v->off, v->end, "81 a1 78 92 01 02", "params/none");
	tb_free(&out);

	/* two at once, in different maps */
	const struct mpfs_val *w = get(&d, "blob");
	struct mpfs_edit two[2] = {
		{.op = MPFS_EDIT_REPLACE,
		 .target = get(&d, "params/yes"),
		 .bytes = (const uint8_t *)"\xc2",
		 .len = 1},
		{.op = MPFS_EDIT_REPLACE,
		 .target = w,
		 .bytes = (const uint8_t *)"\xc4\x00",
		 .len = 2},
	};
	encode_doc(&d, two, 2, &out);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_eq(get(&e, "params/yes")->b, false);
	cr_assert_eq(get(&e, "blob")->len, 0);
	cr_assert_eq(out.len, d.n - 6);
	tu_doc_free(&e);
	tb_free(&out);

	/* the root itself */
	ed = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
				.target = &d.doc.root,
				.bytes = (const uint8_t *)"\x80",
				.len = 1};
	encode_doc(&d, &ed, 1, &out);
	expect_bytes(out.p, out.len, "80", "root");
	tb_free(&out);
	tu_doc_free(&d);
}

Test(encode_doc, delete_a_map_pair)
{
	struct tu_doc d, e;
	struct tb out;
	const struct mpfs_val *params;

	tu_doc_fixture(&d, "edge_values.mpk");
	params = get(&d, "params");
	cr_assert_eq(params->len, 10);
	/* "nan" is the second pair */
	struct mpfs_edit ed = {.op = MPFS_EDIT_DELETE, .target = params, .index = 1};
	encode_doc(&d, &ed, 1, &out);
	{
		struct tb w = {0};
		tb_put(&w, d.buf, params->off);
		tb_byte(&w, 0x89);
		tb_put(&w, d.buf + params->off + 1, params->items[2].off - params->off - 1);
		tb_put(&w, d.buf + params->items[4].off, d.n - params->items[4].off);
		cr_assert(out.len == w.len && memcmp(out.p, w.p, w.len) == 0, "delete params/nan");
		tb_free(&w);
	}
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_null(mpfs_map_get(&e.doc, get(&e, "params"), "nan"));
	cr_assert_eq(get(&e, "params")->len, 9);
	tu_doc_free(&e);
	tb_free(&out);

	/* the first and the last pair of the root, at once */
	struct mpfs_edit two[2] = {
		{.op = MPFS_EDIT_DELETE, .target = &d.doc.root, .index = 3},
		{.op = MPFS_EDIT_DELETE, .target = &d.doc.root, .index = 0},
	};
	encode_doc(&d, two, 2, &out);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_eq(e.doc.root.len, 2);
	cr_assert(mpfs_val_is(&e.doc, &e.doc.root.items[0], "params"));
	cr_assert(mpfs_val_is(&e.doc, &e.doc.root.items[2], "weights"));
	cr_assert_eq(out.len, d.n - (d.doc.root.items[2].off - d.doc.root.items[0].off) -
				      (d.doc.root.end - d.doc.root.items[6].off));
	tu_doc_free(&e);
	tb_free(&out);

	/* down to nothing */
	const struct mpfs_val *one = get(&d, "weights/u8");
	struct mpfs_edit five[5];
	for (uint32_t i = 0; i < 5; i++)
		five[i] = (struct mpfs_edit){.op = MPFS_EDIT_DELETE, .target = one, .index = i};
	encode_doc(&d, five, 5, &out);
	spliced(&out, &d, one->off, one->end, "80", "weights/u8 emptied");
	tb_free(&out);
	tu_doc_free(&d);
}

/* A materialised list (it holds containers or bins): its items can go. */
Test(encode_doc, delete_an_array_item)
{
	struct tu_doc d, e;
	struct tb out;
	/* {"l": [{"a": 1}, [1, 2], "x", bin 00], "k": 5} */
	tu_doc_hex(&d, "82 a1 6c 94 81 a1 61 01 92 01 02 a1 78 c4 01 00 a1 6b 05");
	const struct mpfs_val *l = get(&d, "l");
	cr_assert_not_null(l->items);
	struct mpfs_edit ed = {.op = MPFS_EDIT_DELETE, .target = l, .index = 1};
	encode_doc(&d, &ed, 1, &out);
	expect_bytes(out.p, out.len, "82 a1 6c 93 81 a1 61 01 a1 78 c4 01 00 a1 6b 05", "l[1]");
	tu_doc_bytes(&e, out.p, out.len);
	tu_doc_free(&e);
	tb_free(&out);

	/* a list of bins (a list directory) */
	tu_doc_free(&d);
	tu_doc_hex(&d, "81 a1 6c 93 c4 01 aa c4 01 bb c4 01 cc");
	l = get(&d, "l");
	cr_assert_not_null(l->items);
	ed = (struct mpfs_edit){.op = MPFS_EDIT_DELETE, .target = l, .index = 0};
	encode_doc(&d, &ed, 1, &out);
	expect_bytes(out.p, out.len, "81 a1 6c 92 c4 01 bb c4 01 cc", "bins[0]");
	tb_free(&out);

	/* array16 of 16 down to 15: the header is re-encoded, smallest form */
	tu_doc_free(&d);
	struct tb b = {0};
	tb_hex(&b, "81 a1 6c dc 00 10");
	for (int i = 0; i < 16; i++)
		tb_hex(&b, "91 00");
	tu_doc_tb(&d, &b);
	ed = (struct mpfs_edit){.op = MPFS_EDIT_DELETE, .target = get(&d, "l"), .index = 15};
	encode_doc(&d, &ed, 1, &out);
	cr_assert_eq(out.len, d.n - 2 - 2);
	cr_assert_eq(out.p[3], 0x9f);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_eq(get(&e, "l")->len, 15);
	tu_doc_free(&e);
	tb_free(&out);
	tu_doc_free(&d);
}

/* A leaf array (scalars only, not materialised by the decoder: items is
 * NULL) is copied whole: a DELETE on it is silently dropped and
 * mpfs_encode_doc still returns 0. Not reachable from fs/ today (a list of
 * numbers is a text file or an array there, never a list directory). */
Test(encode_doc, delete_an_item_of_a_leaf_array)
{
	struct tu_doc d;
	struct tb out;
	tu_doc_hex(&d, "81 a1 6c 93 01 02 03");
	const struct mpfs_val *l = get(&d, "l");
	struct mpfs_edit ed = {.op = MPFS_EDIT_DELETE, .target = l, .index = 1};
	encode_doc(&d, &ed, 1, &out);
	expect_bytes(out.p, out.len, "81 a1 6c 92 01 03", "[1, 2, 3] without [1]");
	tb_free(&out);
	tu_doc_free(&d);
}

Test(encode_doc, insert_into_a_map)
{
	struct tu_doc d, e;
	struct tb out;

	/* into {}, {"a": 1}, at the end; two inserts keep their order */
	tu_doc_hex(&d, "82 a1 65 80 a1 6d 81 a1 61 01");
	struct mpfs_edit ed[3] = {
		{.op = MPFS_EDIT_INSERT,
		 .target = get(&d, "e"),
		 .key = (const uint8_t *)"\xa1k",
		 .key_len = 2,
		 .bytes = (const uint8_t *)"\x07",
		 .len = 1},
		{.op = MPFS_EDIT_INSERT,
		 .target = get(&d, "m"),
		 .key = (const uint8_t *)"\x05",
		 .key_len = 1,
		 .bytes = (const uint8_t *)"\xc3",
		 .len = 1},
		{.op = MPFS_EDIT_INSERT,
		 .target = get(&d, "m"),
		 .key = (const uint8_t *)"\xa1z",
		 .key_len = 2,
		 .bytes = (const uint8_t *)"\x80",
		 .len = 1},
	};
	encode_doc(&d, ed, 3, &out);
	expect_bytes(out.p, out.len, "82 a1 65 81 a1 6b 07 a1 6d 83 a1 61 01 05 c3 a1 7a 80",
		     "inserts");
	tb_free(&out);
	tu_doc_free(&d);

	/* fixmap of 15 -> map16 of 16 */
	struct tb b = {0};
	tb_map(&b, 1);
	tb_str(&b, "m");
	tb_map(&b, 15);
	for (int i = 0; i < 15; i++) {
		char k[4];
		sprintf(k, "k%02d", i);
		tb_str(&b, k);
		tb_int(&b, i);
	}
	tu_doc_tb(&d, &b);
	const struct mpfs_val *m = get(&d, "m");
	cr_assert_eq(d.buf[m->off], 0x8f);
	struct mpfs_edit one = {.op = MPFS_EDIT_INSERT,
				.target = m,
				.key = (const uint8_t *)"\xa3new",
				.key_len = 4,
				.bytes = (const uint8_t *)"\xcc\xff",
				.len = 2};
	encode_doc(&d, &one, 1, &out);
	{
		struct tb w = {0};
		tb_put(&w, d.buf, m->off);
		tb_hex(&w, "de 00 10");
		tb_put(&w, d.buf + m->off + 1, m->end - m->off - 1);
		tb_hex(&w, "a3 6e 65 77 cc ff");
		cr_assert(out.len == w.len && memcmp(out.p, w.p, w.len) == 0,
			  "15 -> 16 pairs: [%s]", hexs(out.p + m->off, 8));
		tb_free(&w);
	}
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_eq(get(&e, "m")->len, 16);
	cr_assert_eq(get(&e, "m/new")->u, 255);
	cr_assert_eq(get(&e, "m/k14")->u, 14);
	tu_doc_free(&e);
	tb_free(&out);

	/* an insert and a delete in one map: count unchanged, header copied */
	struct mpfs_edit swap[2] = {
		{.op = MPFS_EDIT_DELETE, .target = m, .index = 0},
		one,
	};
	encode_doc(&d, swap, 2, &out);
	cr_assert_eq(out.p[m->off], 0x8f);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_null(mpfs_map_get(&e.doc, get(&e, "m"), "k00"));
	cr_assert_eq(get(&e, "m/new")->u, 255);
	tu_doc_free(&e);
	tb_free(&out);
	tu_doc_free(&d);
}

Test(encode_doc, replace_a_key)
{
	struct tu_doc d, e;
	struct tb out;
	const struct mpfs_val *params;

	tu_doc_fixture(&d, "edge_values.mpk");
	params = get(&d, "params");
	const struct mpfs_val *k = &params->items[0]; /* "f32" */
	cr_assert(mpfs_val_is(&d.doc, k, "f32"));
	struct mpfs_edit ed = {.op = MPFS_EDIT_REPLACE,
			       .target = k,
			       .bytes = (const uint8_t *)"\xa5"
							 "float",
			       .len = 6};
	encode_doc(&d, &ed, 1, &out);
	spliced(&out, &d, k->off, k->end, "a5 66 6c 6f 61 74", "key f32 -> float");
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert(mpfs_val_is(&e.doc, &get(&e, "params")->items[0], "float"));
	cr_assert_eq(get(&e, "params/float")->f, get(&d, "params/f32")->f);
	tu_doc_free(&e);
	tb_free(&out);

	/* a key by an integer, inside a compact map with bin keys */
	const struct mpfs_val *i32 = get(&d, "weights/i32");
	ed = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
				.target = &i32->items[4],
				.bytes = (const uint8_t *)"\x07",
				.len = 1};
	encode_doc(&d, &ed, 1, &out);
	spliced(&out, &d, i32->items[4].off, i32->items[4].end, "07", "key kind -> 7");
	tb_free(&out);

	/* rename a key and delete a sibling: position of the rest kept */
	struct mpfs_edit two[2] = {
		{.op = MPFS_EDIT_REPLACE,
		 .target = &params->items[2],
		 .bytes = (const uint8_t *)"\xa1n",
		 .len = 2},
		{.op = MPFS_EDIT_DELETE, .target = params, .index = 0},
	};
	encode_doc(&d, two, 2, &out);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert(mpfs_val_is(&e.doc, &get(&e, "params")->items[0], "n"));
	cr_assert(isnan(get(&e, "params/n")->f));
	tu_doc_free(&e);
	tb_free(&out);
	tu_doc_free(&d);
}

/* A move across maps, as fs does it: delete here, insert there with the
 * value's own bytes. */
Test(encode_doc, move_between_maps)
{
	struct tu_doc d, e;
	struct tb out;

	tu_doc_fixture(&d, "edge_values.mpk");
	const struct mpfs_val *params = get(&d, "params"), *v = get(&d, "params/text");
	const struct mpfs_val *weights = get(&d, "weights");
	struct mpfs_edit ed[2] = {
		{.op = MPFS_EDIT_DELETE, .target = params, .index = 7},
		{.op = MPFS_EDIT_INSERT,
		 .target = weights,
		 .key = (const uint8_t *)"\xa4text",
		 .key_len = 5,
		 .bytes = d.buf + v->off,
		 .len = v->end - v->off},
	};
	encode_doc(&d, ed, 2, &out);
	cr_assert_eq(out.len, d.n);
	tu_doc_bytes(&e, out.p, out.len);
	cr_assert_null(mpfs_map_get(&e.doc, get(&e, "params"), "text"));
	const struct mpfs_val *t = get(&e, "weights/text");
	cr_assert_eq(t->len, v->len);
	cr_assert(memcmp(e.buf + t->off, d.buf + v->off, v->end - v->off) == 0);
	cr_assert(mpfs_val_is(&e.doc, &get(&e, "weights")->items[8], "text"));
	tu_doc_free(&e);
	tb_free(&out);
	tu_doc_free(&d);
}

/* ---- write failures ------------------------------------------------------------------------ */

struct failing {
	size_t calls, fail_at; /* fail the fail_at-th call (1-based); 0: every one */
	size_t after;	       /* calls made after the failure */
	bool failed;
};

static int failing_write(void *ctx, const void *p, size_t n)
{
	struct failing *f = ctx;
	(void)p, (void)n;
	f->calls++;
	if (f->failed)
		f->after++;
	if (f->fail_at == 0 || f->calls == f->fail_at) {
		f->failed = true;
		return -1;
	}
	return 0;
}

Test(encode_doc, a_failing_write_fails_the_encoding)
{
	struct tu_doc d;
	tu_doc_fixture(&d, "edge_values.mpk");
	const struct mpfs_val *params = get(&d, "params");
	struct mpfs_edit ed[3] = {
		{.op = MPFS_EDIT_DELETE, .target = params, .index = 2},
		{.op = MPFS_EDIT_REPLACE,
		 .target = get(&d, "params/yes"),
		 .bytes = (const uint8_t *)"\xc2",
		 .len = 1},
		{.op = MPFS_EDIT_INSERT,
		 .target = get(&d, "weights"),
		 .key = (const uint8_t *)"\xa1k",
		 .key_len = 2,
		 .bytes = (const uint8_t *)"\x01",
		 .len = 1},
	};
	struct failing f = {0};

	/* every write fails */
	cr_assert_eq(mpfs_encode_doc(&d.doc, NULL, 0, failing_write, &f), -1);
	cr_assert_eq(f.calls, 1);
	f = (struct failing){0};
	cr_assert_eq(mpfs_encode_doc(&d.doc, ed, 3, failing_write, &f), -1);
	cr_assert_eq(f.calls, 1);

	/* count the writes of a good run, then fail each in turn */
	size_t total;
	f = (struct failing){.fail_at = SIZE_MAX};
	cr_assert_eq(mpfs_encode_doc(&d.doc, ed, 3, failing_write, &f), 0);
	total = f.calls;
	cr_assert_gt(total, 5);
	for (size_t k = 1; k <= total; k++) {
		f = (struct failing){.fail_at = k};
		cr_assert_eq(mpfs_encode_doc(&d.doc, ed, 3, failing_write, &f), -1,
			     "write %zu of %zu failing", k, total);
		cr_assert_eq(f.after, 0, "write %zu failed, %zu more writes followed", k, f.after);
	}
	tu_doc_free(&d);
}
