/* codec/model.c refusing what it must: the bad fixtures, every truncated
 * archive, a root that is no map, every allocation failing in turn, and a
 * mutation smoke test (refused with a message, or a consistent tree). */
#define TU_WRAP_ALLOCS /* linked with --wrap=malloc,... (tests/meson.build) */
#include <criterion/criterion.h>
#include <inttypes.h>

#include "model_env.h"

/* ---- refusals ------------------------------------------------------------------ */

Test(codec_model, bad_fixtures_are_refused_with_offsets)
{
	static const struct {
		const char *name;
		enum mpfs_codec_err code;
	} cases[] = {
		{"bad_compact_bad_dtype.mpk", MPFS_E_DTYPE},
		{"bad_compact_data_too_short.mpk", MPFS_E_ARRAY},
		{"bad_compact_negative_shape.mpk", MPFS_E_ARRAY},
		{"bad_compact_shape_overflow.mpk", MPFS_E_ARRAY},
		{"bad_deep_nesting.mpk", MPFS_E_DEPTH},
		{"bad_empty.mpk", MPFS_E_EMPTY},
		{"bad_huge_array_len.mpk", MPFS_E_TRUNCATED},
		{"bad_huge_map_len.mpk", MPFS_E_TRUNCATED},
		{"bad_huge_str_len.mpk", MPFS_E_TRUNCATED},
		{"bad_not_a_map.mpk", MPFS_E_NOT_MAP},
		{"bad_reserved_c1.mpk", MPFS_E_RESERVED},
		{"bad_trailing_bytes.mpk", MPFS_E_TRAILING},
		{"bad_truncated.mpk", MPFS_E_TRUNCATED},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mdl d;
		size_t n;
		uint8_t *p = tu_fixture(cases[i].name, &n);
		mdl_bytes(&d, p, n);
		free(p);
		cr_assert_eq(d.rc, cases[i].code, "%s: %s, expected %s (%s)", cases[i].name,
			     mpfs_codec_strerror(d.rc), mpfs_codec_strerror(cases[i].code),
			     d.err.msg);
		cr_assert_eq(d.err.code, d.rc);
		cr_assert(d.err.msg[0], "%s: empty message", cases[i].name);
		cr_assert_null(strchr(d.err.msg, '\n'), "%s: not one line", cases[i].name);
		if (n)
			cr_assert_lt(d.err.off, n, "%s: offset %" PRIu64 " not inside the file",
				     cases[i].name, d.err.off);
		else
			cr_assert_eq(d.err.off, 0);
		mdl_free(&d);
	}
}

/* Every bad_*.mpk in the fixtures directory (also ones added later) is
 * refused, except bad_key_traversal.mpk, which is valid. */
Test(codec_model, every_bad_fixture_is_refused)
{
	const char *dir = getenv("MPFS_FIXTURES");
	char *cmd;
	FILE *ls;
	char name[256];
	int seen = 0;

	cr_assert(dir);
	cr_assert(asprintf(&cmd, "ls '%s'", dir) > 0);
	ls = popen(cmd, "r");
	cr_assert_not_null(ls);
	while (fgets(name, sizeof(name), ls)) {
		name[strcspn(name, "\n")] = '\0';
		size_t len = strlen(name);
		if (strncmp(name, "bad_", 4) || len < 4 || strcmp(name + len - 4, ".mpk"))
			continue;
		struct mdl d;
		size_t n;
		uint8_t *p = tu_fixture(name, &n);
		mdl_bytes(&d, p, n);
		free(p);
		seen++;
		if (!strcmp(name, "bad_key_traversal.mpk")) {
			cr_assert_eq(d.rc, MPFS_OK, "%s: %s", name, d.err.msg);
		} else {
			cr_assert_neq(d.rc, MPFS_OK, "%s was accepted", name);
			cr_assert(d.err.msg[0], "%s: empty message", name);
			cr_assert(n ? d.err.off < n : d.err.off == 0, "%s: offset %" PRIu64, name,
				  d.err.off);
		}
		mdl_free(&d);
	}
	pclose(ls);
	free(cmd);
	cr_assert_geq(seen, 14, "only %d bad fixtures found", seen);
}

Test(codec_model, every_prefix_of_fixtures_is_refused, .timeout = 60)
{
	for (size_t i = 0; i < TU_NGOOD; i++) {
		size_t n;
		uint8_t *p = tu_fixture(tu_good_fixtures[i], &n);
		for (size_t k = 0; k < n; k++) {
			struct mdl d;
			mdl_bytes(&d, p, k);
			cr_assert_eq(d.rc, k ? MPFS_E_TRUNCATED : MPFS_E_EMPTY, "%s[0..%zu): %s",
				     tu_good_fixtures[i], k, d.err.msg);
			cr_assert_leq(d.err.off, k);
			cr_assert(d.err.msg[0]);
			mdl_free(&d);
		}
		free(p);
	}
}

Test(codec_model, root_must_be_a_map)
{
	static const char *const cases[] = {"93 01 02 03", "01", "c0", "a3 61 62 63", "90"};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tb b = {0};
		struct mdl d;
		tb_hex(&b, cases[i]);
		mdl_bytes(&d, b.p, b.len);
		tb_free(&b);
		cr_assert_eq(d.rc, MPFS_E_NOT_MAP, "%s", cases[i]);
		cr_assert_eq(d.err.off, 0);
		cr_assert(d.err.msg[0]);
		mdl_free(&d);
	}
	/* An empty map is a fine (empty) model. */
	struct tb b = {0};
	struct mdl d;
	tb_hex(&b, "80");
	mdl_tb(&d, &b);
	cr_assert_eq(d.m.root.nchildren, 0);
	cr_assert_eq(d.m.nnodes, 1);
	mdl_free(&d);
}

/* ---- out of memory ------------------------------------------------------------- */

/* Each allocation of mpfs_model_init fails in turn: the call then fails
 * with MPFS_E_NOMEM and frees what it had, until every allocation succeeds.
 *
 * Defect: alloc_children() sets n->nchildren before its calloc succeeds, so
 * when that calloc fails, free_node() walks count children of a NULL array
 * (SEGV in free_node, model.c). */
Test(codec_model, out_of_memory_at_every_allocation, .timeout = 60)
{
	static const char *const names[] = {"edge_values.mpk", "mlp_seed.mpk", "tfidf_compact.mpk"};
	for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
		size_t n;
		uint8_t *p = tu_fixture(names[f], &n);
		for (size_t k = 1;; k++) {
			struct mpfs_model m;
			struct mpfs_error err;
			enum mpfs_codec_err rc;

			cr_assert_lt(k, 100000, "%s: never succeeds", names[f]);
			tu_track_allocs();
			tu_allocs.fail_at = k;
			rc = mpfs_model_init(&m, p, n, &err);
			tu_allocs.on = false;
			if (rc == MPFS_OK) {
				cr_assert_lt(tu_allocs.calls, k, "%s: allocation %zu failed unseen",
					     names[f], k);
				mpfs_model_destroy(&m);
				break;
			}
			cr_assert_eq(rc, MPFS_E_NOMEM, "%s, allocation %zu failing: %s", names[f],
				     k, err.msg);
			cr_assert(err.msg[0]);
		}
		free(p);
	}
}

/* ---- mutations ---------------------------------------------------------------- */

/* Walks a model as the view would: renders every text, fills every nested
 * array into a buffer of exactly its size. */
static void exercise(const struct mdl *d, const struct mpfs_node *n)
{
	if (n->kind == MPFS_N_TEXT) {
		struct mpfs_strbuf out;
		mpfs_strbuf_init(&out);
		mpfs_json_render(&d->m.doc, n->val, &out);
		cr_assert_not(out.oom);
		mpfs_strbuf_destroy(&out);
	} else if (n->kind == MPFS_N_ARRAY) {
		if (n->array->encoding == MPFS_ENC_NESTED) {
			uint8_t *out = malloc(n->array->nbytes ? n->array->nbytes : 1);
			mpfs_array_fill(&d->m.doc, n->array, out);
			free(out);
		} else {
			cr_assert_leq(n->array->data_off + n->array->nbytes, d->n);
		}
	} else if (n->kind == MPFS_N_BYTES) {
		cr_assert_leq(n->val->off + n->val->hdr + n->val->len, d->n);
	}
	for (uint32_t i = 0; i < n->nchildren; i++)
		exercise(d, &n->children[i]);
}

/* Every byte of three small archives replaced by awkward values: the result
 * is either refused with a message or a consistent tree that can be shown.
 * Never a crash, a leak or a read out of bounds (ASan). */
Test(codec_model, mutated_fixtures_never_crash, .timeout = 120)
{
	static const char *const names[] = {"logreg_seed.mpk", "logreg_compact.mpk",
					    "edge_values.mpk"};
	static const uint8_t subst[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
					0xc1, 0xc3, 0xc4, 0xc6, 0xc9, 0xca, 0xcb, 0xcf, 0xd3, 0xd4,
					0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
	int ok = 0, refused = 0;

	for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
		size_t n;
		uint8_t *orig = tu_fixture(names[f], &n);
		for (size_t i = 0; i < n; i++) {
			for (size_t s = 0; s < sizeof(subst) + 2; s++) {
				uint8_t c = s < sizeof(subst)
						    ? subst[s]
						    : (uint8_t)(orig[i] ^ (s & 1 ? 1 : 0x10));
				uint8_t *p = tu_dup(orig, n);
				struct mdl d;
				p[i] = c;
				mdl_bytes(&d, p, n);
				free(p);
				if (d.rc == MPFS_OK) {
					check_tree(&d);
					exercise(&d, &d.m.root);
					ok++;
				} else {
					cr_assert(d.err.msg[0], "%s[%zu]=%02x: no message",
						  names[f], i, c);
					cr_assert_leq(d.err.off, n);
					refused++;
				}
				mdl_free(&d);
			}
		}
		free(orig);
	}
	cr_assert_gt(ok, 0);
	cr_assert_gt(refused, 0);
}
