/* codec/model.c: how values are classified (directories, text, arrays, raw
 * bytes), on the real fixtures and on hand-built archives; refusals of the
 * bad fixtures and of every truncated archive; and a mutation smoke test. */
#define TU_WRAP_ALLOCS /* linked with --wrap=malloc,... (tests/meson.build) */
#include <criterion/criterion.h>
#include <inttypes.h>

#include "codec/json.h"
#include "codec/model.h"
#include "testutil.h"

struct mdl {
	uint8_t *buf;
	size_t n;
	struct mpfs_model m;
	struct mpfs_error err;
	enum mpfs_codec_err rc;
};

static void mdl_bytes(struct mdl *d, const void *p, size_t n)
{
	d->buf = tu_dup(p, n);
	d->n = n;
	d->rc = mpfs_model_init(&d->m, d->buf, n, &d->err);
}

static void mdl_tb(struct mdl *d, struct tb *b)
{
	mdl_bytes(d, b->p, b->len);
	tb_free(b);
	cr_assert_eq(d->rc, MPFS_OK, "test archive refused: %s (at %" PRIu64 ")", d->err.msg,
		     d->err.off);
}

static void mdl_fixture(struct mdl *d, const char *name)
{
	size_t n;
	uint8_t *p = tu_fixture(name, &n);
	mdl_bytes(d, p, n);
	free(p);
	cr_assert_eq(d->rc, MPFS_OK, "%s refused: %s (at %" PRIu64 ")", name, d->err.msg,
		     d->err.off);
}

static void mdl_free(struct mdl *d)
{
	if (d->rc == MPFS_OK)
		mpfs_model_destroy(&d->m);
	free(d->buf);
}

/* The child of directory n called name: a string key, a label, an integer
 * key in decimal, or the index in a list. */
static const struct mpfs_node *child(const struct mdl *d, const struct mpfs_node *n,
				     const char *name)
{
	cr_assert(mpfs_node_is_dir(n), "looking for %s in a file", name);
	for (uint32_t i = 0; i < n->nchildren; i++) {
		const struct mpfs_node *c = &n->children[i];
		char num[32];
		if (n->kind == MPFS_N_LIST) {
			snprintf(num, sizeof(num), "%" PRIu32, i);
			if (!strcmp(num, name))
				return c;
			continue;
		}
		if (mpfs_node_label(c) && !strcmp(mpfs_node_label(c), name))
			return c;
		if (!c->key)
			continue;
		if (mpfs_val_is(&d->m.doc, c->key, name))
			return c;
		if (c->key->type == MPFS_UINT || c->key->type == MPFS_INT) {
			if (c->key->type == MPFS_UINT)
				snprintf(num, sizeof(num), "%" PRIu64, c->key->u);
			else
				snprintf(num, sizeof(num), "%" PRId64, c->key->i);
			if (!strcmp(num, name))
				return c;
		}
	}
	return NULL;
}

/* The node at a path like "weights/coefs_/0" ("" is the root). */
static const struct mpfs_node *at(const struct mdl *d, const char *path)
{
	const struct mpfs_node *n = &d->m.root;
	char buf[512], *save, *part;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		const struct mpfs_node *c = child(d, n, part);
		cr_assert_not_null(c, "no %s in %s", part, path);
		n = c;
	}
	return n;
}

static const char *const kind_names[] = {"MAP",	  "LIST",  "CSR",    "TEXT",
					 "ARRAY", "BYTES", "SCALAR", "PICKLE"};

static const struct mpfs_node *expect_kind(const struct mdl *d, const char *path,
					   enum mpfs_node_kind kind)
{
	const struct mpfs_node *n = at(d, path);
	cr_assert_eq(n->kind, kind, "%s is %s, expected %s", path, kind_names[n->kind],
		     kind_names[kind]);
	if (kind == MPFS_N_ARRAY) /* (a directory's children share the field) */
		cr_assert_not_null(n->array, "%s: array pointer", path);
	if (kind == MPFS_N_TEXT || kind == MPFS_N_BYTES)
		cr_assert_null(n->array, "%s: array pointer", path);
	return n;
}

/* path must be an array of dtype descr, shape ("2,3"), encoding. */
static void expect_array(const struct mdl *d, const char *path, const char *descr,
			 const char *shape, enum mpfs_encoding enc)
{
	const struct mpfs_node *n = expect_kind(d, path, MPFS_N_ARRAY);
	char s[MPFS_MAX_DIMS * 21];
	cr_assert_str_eq(n->array->descr, descr, "%s: dtype", path);
	mpfs_array_shape_str(n->array, s, sizeof(s));
	cr_assert_str_eq(s, shape, "%s: shape %s, expected %s", path, s, shape);
	cr_assert_eq(n->array->encoding, enc, "%s: encoding", path);
	if (enc == MPFS_ENC_COMPACT)
		cr_assert_leq(n->array->data_off + n->array->nbytes, d->n, "%s: data outside",
			      path);
}

/* Text that renders as json. */
static void expect_text(const struct mdl *d, const char *path, const char *json)
{
	const struct mpfs_node *n = expect_kind(d, path, MPFS_N_TEXT);
	struct mpfs_strbuf out;
	mpfs_strbuf_init(&out);
	mpfs_json_render(&d->m.doc, n->val, &out);
	cr_assert_str_eq(out.p, json, "%s: %s, expected %s", path, out.p, json);
	mpfs_strbuf_destroy(&out);
}

/* Ids are dense, the root is 0, every node is found by its id, and a
 * directory's entries have consecutive ids. Returns the number of nodes
 * under and including n. */
static uint32_t check_ids(const struct mdl *d, const struct mpfs_node *n, uint8_t *seen)
{
	uint32_t count = 1, id = mpfs_model_id(&d->m, n);
	cr_assert_lt(id, d->m.nnodes);
	cr_assert_eq(mpfs_model_node(&d->m, id), n, "node %u is not found by its id", id);
	cr_assert_not(seen[id], "id %u twice", id);
	seen[id] = 1;
	cr_assert_not_null(n->val);
	cr_assert(mpfs_node_is_dir(n) || n->nchildren == 0);
	if (n->kind == MPFS_N_MAP)
		cr_assert_eq(n->nchildren, n->val->len, "a map shows every key");
	if (n->kind == MPFS_N_LIST)
		cr_assert_eq(n->nchildren, n->val->len, "a list shows every element");
	for (uint32_t i = 0; i < n->nchildren; i++) {
		const struct mpfs_node *c = &n->children[i];
		if (n->kind == MPFS_N_MAP) {
			cr_assert_eq(c->key, &n->val->items[2 * i]);
			cr_assert_eq(c->val, &n->val->items[2 * i + 1]);
		}
		if (n->kind == MPFS_N_LIST)
			cr_assert_null(c->key);
		cr_assert_eq(mpfs_model_id(&d->m, c), mpfs_model_id(&d->m, n->children) + i);
		count += check_ids(d, c, seen);
	}
	return count;
}

static void check_tree(const struct mdl *d)
{
	uint8_t *seen = calloc(d->m.nnodes + 1, 1);
	cr_assert_eq(d->m.root.kind, MPFS_N_MAP, "the root is a directory");
	cr_assert_eq(d->m.root.val, &d->m.doc.root);
	cr_assert_null(d->m.root.key);
	cr_assert_eq(mpfs_model_id(&d->m, &d->m.root), 0);
	cr_assert_eq(check_ids(d, &d->m.root, seen), d->m.nnodes);
	free(seen);
}

/* ---- fixtures ------------------------------------------------------------------- */

Test(codec_model, every_fixture_is_a_consistent_tree)
{
	for (size_t i = 0; i < TU_NGOOD; i++) {
		struct mdl d;
		mdl_fixture(&d, tu_good_fixtures[i]);
		check_tree(&d);
		mdl_free(&d);
	}
	struct mdl d;
	mdl_fixture(&d, "bad_key_traversal.mpk");
	check_tree(&d);
	mdl_free(&d);
}

static void check_mlp(const char *name, enum mpfs_encoding enc)
{
	static const char *const coefs[] = {"20,16", "16,8", "8,3"};
	static const char *const icpts[] = {"16", "8", "3"};
	struct mdl d;

	mdl_fixture(&d, name);
	expect_text(&d, "class_name", "\"MLPClassifier\"");
	expect_kind(&d, "types", MPFS_N_MAP);
	expect_text(&d, "types/classes_", "\"ndarray\"");
	expect_kind(&d, "params", MPFS_N_MAP);
	expect_text(&d, "params/activation", "\"relu\"");
	expect_text(&d, "params/alpha", "0.0001");
	expect_text(&d, "params/epsilon", "1e-08");
	expect_text(&d, "params/hidden_layer_sizes", "[16, 8]"); /* a tuple: plain list */
	expect_text(&d, "params/early_stopping", "false");
	expect_text(&d, "params/max_iter", "30");
	expect_kind(&d, "xtra", MPFS_N_MAP);
	expect_array(&d, "xtra/classes_", "<i8", "3", enc); /* types says ndarray */
	expect_text(&d, "xtra/loss_", "1.0191297587314574");
	expect_kind(&d, "xtra/loss_curve_", MPFS_N_TEXT); /* a plain list of floats */
	expect_text(&d, "xtra/out_activation_", "\"softmax\"");
	expect_kind(&d, "weights", MPFS_N_MAP);
	/* coefs_: 2-D arrays of different shapes, so a list of arrays */
	const struct mpfs_node *c = expect_kind(&d, "weights/coefs_", MPFS_N_LIST);
	cr_assert_eq(c->nchildren, 3);
	const struct mpfs_node *ic = expect_kind(&d, "weights/intercepts_", MPFS_N_LIST);
	cr_assert_eq(ic->nchildren, 3);
	for (int i = 0; i < 3; i++) {
		char p[64];
		snprintf(p, sizeof(p), "weights/coefs_/%d", i);
		expect_array(&d, p, "<f8", coefs[i], enc);
		snprintf(p, sizeof(p), "weights/intercepts_/%d", i);
		expect_array(&d, p, "<f8", icpts[i], enc);
	}
	expect_text(&d, "label_binarizer_classes_", "[0, 1, 2]");
	mdl_free(&d);
}

Test(codec_model, mlp_seed)
{
	check_mlp("mlp_seed.mpk", MPFS_ENC_NESTED);
}

Test(codec_model, mlp_compact)
{
	check_mlp("mlp_compact.mpk", MPFS_ENC_COMPACT);
}

static void check_logreg(const char *name, enum mpfs_encoding enc)
{
	struct mdl d;

	mdl_fixture(&d, name);
	expect_text(&d, "class_name", "\"LogisticRegression\"");
	expect_text(&d, "params/C", "0.5");
	expect_text(&d, "params/tol", "0.0001");
	expect_text(&d, "params/l1_ratio", "null");
	expect_text(&d, "params/multi_class", "\"auto\"");
	/* class_weight keeps its integer keys */
	const struct mpfs_node *cw = expect_kind(&d, "params/class_weight", MPFS_N_MAP);
	cr_assert_eq(cw->nchildren, 2);
	cr_assert_eq(cw->children[0].key->type, MPFS_UINT);
	cr_assert_eq(cw->children[0].key->u, 0);
	cr_assert_eq(cw->children[1].key->u, 1);
	expect_text(&d, "params/class_weight/1", "2.5");
	expect_array(&d, "xtra/classes_", "<i8", "2", enc);
	expect_array(&d, "xtra/n_iter_", enc == MPFS_ENC_NESTED ? "<i8" : "<i4", "1", enc);
	expect_text(&d, "xtra/n_features_in_", "6");
	expect_array(&d, "weights/coef_", "<f8", "1,6", enc);
	expect_array(&d, "weights/intercept_", "<f8", "1", enc);
	mdl_free(&d);
}

Test(codec_model, logreg_seed)
{
	check_logreg("logreg_seed.mpk", MPFS_ENC_NESTED);
}

Test(codec_model, logreg_compact)
{
	check_logreg("logreg_compact.mpk", MPFS_ENC_COMPACT);
}

static void check_tfidf(const char *name, enum mpfs_encoding enc)
{
	struct mdl d;

	mdl_fixture(&d, name);
	expect_text(&d, "class_name", "\"TfidfVectorizer\"");
	expect_text(&d, "params/ngram_range", "[1, 1]");
	expect_text(&d, "params/token_pattern", "\"(?u)\\\\b\\\\w\\\\w+\\\\b\"");
	const struct mpfs_node *voc = expect_kind(&d, "xtra/vocabulary_", MPFS_N_MAP);
	cr_assert_eq(voc->nchildren, 380);
	expect_text(&d, "xtra/vocabulary_/w00377", "358");
	/* The nested model, with its own types naming _idf_diag csr_matrix. */
	expect_kind(&d, "transformer", MPFS_N_MAP);
	expect_text(&d, "transformer/class_name", "\"TfidfTransformer\"");
	expect_text(&d, "transformer/types/_idf_diag", "\"csr_matrix\"");
	const struct mpfs_node *csr = expect_kind(&d, "transformer/xtra/_idf_diag", MPFS_N_CSR);
	/* class_name, shape, data, indices, indptr, dtype: arg1 in its place */
	cr_assert_eq(csr->nchildren, 6);
	static const char *const order[] = {"class_name", "shape",  "data",
					    "indices",	  "indptr", "dtype"};
	for (int i = 0; i < 6; i++) {
		const struct mpfs_node *c = &csr->children[i];
		if (i >= 2 && i <= 4) {
			cr_assert_null(c->key);
			cr_assert_str_eq(mpfs_node_label(c), order[i]);
		} else {
			cr_assert_null(mpfs_node_label(c));
			cr_assert(mpfs_val_is(&d.m.doc, c->key, order[i]), "child %d", i);
		}
	}
	expect_text(&d, "transformer/xtra/_idf_diag/shape", "[380, 380]");
	expect_text(&d, "transformer/xtra/_idf_diag/dtype", "\"float64\"");
	expect_array(&d, "transformer/xtra/_idf_diag/data", "<f8", "380", enc);
	expect_array(&d, "transformer/xtra/_idf_diag/indices",
		     enc == MPFS_ENC_NESTED ? "<i8" : "<i4", "380", enc);
	expect_array(&d, "transformer/xtra/_idf_diag/indptr",
		     enc == MPFS_ENC_NESTED ? "<i8" : "<i4", "381", enc);
	expect_text(&d, "transformer/xtra/n_features_in_", "380");
	mdl_free(&d);
}

Test(codec_model, tfidf_seed)
{
	check_tfidf("tfidf_seed.mpk", MPFS_ENC_NESTED);
}

Test(codec_model, tfidf_compact)
{
	check_tfidf("tfidf_compact.mpk", MPFS_ENC_COMPACT);
}

Test(codec_model, edge_values)
{
	struct mdl d;

	mdl_fixture(&d, "edge_values.mpk");
	expect_text(&d, "class_name", "\"Edge\"");
	expect_text(&d, "params/f32", "0.10000000149011612");
	expect_text(&d, "params/nan", "NaN");
	expect_text(&d, "params/inf", "Infinity");
	expect_text(&d, "params/u64max", "18446744073709551615");
	expect_text(&d, "params/i64min", "-9223372036854775808");
	expect_text(&d, "params/none", "null");
	expect_text(&d, "params/yes", "true");
	expect_text(&d, "params/text", "\"h\xc3\xa9llo \\\"q\\\"\\n\"");
	expect_text(&d, "params/lst", "[1, \"two\", 3.5, null]");
	expect_text(&d, "params/tiny", "5e-324");
	expect_array(&d, "weights/empty", "<f8", "0", MPFS_ENC_COMPACT);
	expect_array(&d, "weights/i32", "<i4", "2,3", MPFS_ENC_COMPACT);
	expect_array(&d, "weights/u8", "|u1", "10", MPFS_ENC_COMPACT);
	expect_array(&d, "weights/scalar0d", "<f8", "", MPFS_ENC_COMPACT);
	const struct mpfs_node *blob = expect_kind(&d, "blob", MPFS_N_BYTES);
	cr_assert_eq(blob->val->type, MPFS_BIN);
	cr_assert_eq(blob->val->len, 6);
	cr_assert(memcmp(mpfs_val_data(&d.m.doc, blob->val), "\0\1\2raw", 6) == 0);
	mdl_free(&d);
}

Test(codec_model, key_traversal_decodes)
{
	struct mdl d;
	static const char *const keys[] = {"../../etc/passwd", "a/b", "..", ".", ""};

	mdl_fixture(&d, "bad_key_traversal.mpk");
	const struct mpfs_node *p = expect_kind(&d, "params", MPFS_N_MAP);
	cr_assert_eq(p->nchildren, 5);
	for (int i = 0; i < 5; i++) {
		cr_assert(mpfs_val_is(&d.m.doc, p->children[i].key, keys[i]), "key %d", i);
		cr_assert_eq(p->children[i].kind, MPFS_N_TEXT);
		cr_assert_eq(p->children[i].val->u, (uint64_t)i + 1);
	}
	mdl_free(&d);
}

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

/* ---- hand-built archives ------------------------------------------------------------- */

Test(codec_model, scalars_text_and_raw_bytes)
{
	struct tb b = {0};
	struct mdl d;

	tb_map(&b, 9);
	tb_str(&b, "s");
	tb_str(&b, "relu");
	tb_str(&b, "raw");
	tb_hex(&b, "a2 ff fe"); /* a str that is not UTF-8 */
	tb_str(&b, "bin");
	tb_bin(&b, "abc", 3); /* bin is raw, even when it is text */
	tb_str(&b, "ext");
	tb_ext(&b, 5, "xyz", 3);
	tb_str(&b, "ts");
	tb_hex(&b, "d6 ff 5a 4a f6 a5");
	tb_str(&b, "n");
	tb_nil(&b);
	tb_str(&b, "f");
	tb_f32(&b, 0.5f);
	tb_str(&b, "i");
	tb_int(&b, -7);
	tb_str(&b, "class_name");
	tb_bin(&b, "Model", 5);
	mdl_tb(&d, &b);
	check_tree(&d);
	expect_text(&d, "s", "\"relu\"");
	expect_kind(&d, "raw", MPFS_N_BYTES);
	expect_kind(&d, "bin", MPFS_N_BYTES);
	const struct mpfs_node *e = expect_kind(&d, "ext", MPFS_N_BYTES);
	cr_assert_eq(e->val->ext_type, 5);
	expect_kind(&d, "ts", MPFS_N_BYTES);
	expect_text(&d, "n", "null");
	expect_text(&d, "f", "0.5");
	expect_text(&d, "i", "-7");
	expect_kind(&d, "class_name", MPFS_N_BYTES);
	mdl_free(&d);
}

Test(codec_model, plain_lists_are_text)
{
	struct tb b = {0};
	struct mdl d;

	/* {"top": [1, 2], "params": {"hls": [16, 8], "grid": [[1, 2], [3, 4]],
	 *  "mixed": [1, "two", 3.5, null], "empty": []}} */
	tb_map(&b, 2);
	tb_str(&b, "top");
	tb_hex(&b, "92 01 02");
	tb_str(&b, "params");
	tb_map(&b, 4);
	tb_str(&b, "hls");
	tb_hex(&b, "92 10 08");
	tb_str(&b, "grid");
	tb_hex(&b, "92 92 01 02 92 03 04");
	tb_str(&b, "mixed");
	tb_hex(&b, "94 01 a3 74 77 6f cb 40 0c 00 00 00 00 00 00 c0");
	tb_str(&b, "empty");
	tb_hex(&b, "90");
	mdl_tb(&d, &b);
	check_tree(&d);
	expect_text(&d, "top", "[1, 2]");
	expect_text(&d, "params/hls", "[16, 8]");
	expect_text(&d, "params/grid", "[[1, 2], [3, 4]]");
	expect_text(&d, "params/mixed", "[1, \"two\", 3.5, null]");
	expect_text(&d, "params/empty", "[]");
	mdl_free(&d);
}

/* Lists holding maps, bins or exts are directories (a crash of 0.1.0 for
 * bins, exts and non-UTF-8 strs directly in a list of scalars). */
Test(codec_model, lists_holding_maps_bins_or_exts_are_directories)
{
	struct tb b = {0};
	struct mdl d;

	tb_map(&b, 5);
	tb_str(&b, "maps");
	tb_hex(&b, "92 81 a1 61 01 80");
	tb_str(&b, "bins");
	tb_hex(&b, "92 c4 02 61 62 01"); /* [b"ab", 1] */
	tb_str(&b, "exts");
	tb_hex(&b, "93 d4 01 00 c7 00 02 a1 78");
	tb_str(&b, "raws");
	tb_hex(&b, "92 a1 ff a1 61");
	tb_str(&b, "deep");
	tb_hex(&b, "92 91 c4 00 91 01");
	mdl_tb(&d, &b);
	check_tree(&d);
	expect_kind(&d, "maps", MPFS_N_LIST);
	expect_kind(&d, "maps/0", MPFS_N_MAP);
	expect_text(&d, "maps/0/a", "1");
	expect_kind(&d, "maps/1", MPFS_N_MAP);
	expect_kind(&d, "bins", MPFS_N_LIST);
	expect_kind(&d, "bins/0", MPFS_N_BYTES);
	expect_text(&d, "bins/1", "1");
	expect_kind(&d, "exts", MPFS_N_LIST);
	expect_kind(&d, "exts/0", MPFS_N_BYTES);
	expect_kind(&d, "exts/1", MPFS_N_BYTES);
	expect_text(&d, "exts/2", "\"x\"");
	expect_kind(&d, "raws", MPFS_N_LIST);
	expect_kind(&d, "raws/0", MPFS_N_BYTES);
	expect_text(&d, "raws/1", "\"a\"");
	expect_kind(&d, "deep", MPFS_N_LIST);
	expect_kind(&d, "deep/0", MPFS_N_LIST);
	expect_kind(&d, "deep/0/0", MPFS_N_BYTES);
	mdl_free(&d);
}

Test(codec_model, lists_under_weights_are_arrays)
{
	struct tb b = {0};
	struct mdl d;

	tb_map(&b, 1);
	tb_str(&b, "weights");
	tb_map(&b, 8);
	tb_str(&b, "w");
	tb_hex(&b, "92 92 01 02 92 03 04");
	tb_str(&b, "v");
	tb_hex(&b, "93 cb 3f f0 00 00 00 00 00 00 02 03");
	tb_str(&b, "coefs_"); /* different shapes: a list of arrays */
	tb_hex(&b, "92 91 92 01 02 92 91 03 91 04");
	tb_str(&b, "ragged"); /* [[1, 2], [3]]: two 1-D arrays */
	tb_hex(&b, "92 92 01 02 91 03");
	tb_str(&b, "names"); /* cannot be an array: text */
	tb_hex(&b, "92 a1 61 a1 62");
	tb_str(&b, "n");
	tb_uint(&b, 5);
	tb_str(&b, "layer"); /* any depth under weights */
	tb_hex(&b, "81 a1 77 92 c3 c2");
	tb_str(&b, "empty");
	tb_hex(&b, "90");
	mdl_tb(&d, &b);
	check_tree(&d);
	expect_array(&d, "weights/w", "<i8", "2,2", MPFS_ENC_NESTED);
	expect_array(&d, "weights/v", "<f8", "3", MPFS_ENC_NESTED);
	expect_kind(&d, "weights/coefs_", MPFS_N_LIST);
	expect_array(&d, "weights/coefs_/0", "<i8", "1,2", MPFS_ENC_NESTED);
	expect_array(&d, "weights/coefs_/1", "<i8", "2,1", MPFS_ENC_NESTED);
	expect_kind(&d, "weights/ragged", MPFS_N_LIST);
	expect_array(&d, "weights/ragged/0", "<i8", "2", MPFS_ENC_NESTED);
	expect_array(&d, "weights/ragged/1", "<i8", "1", MPFS_ENC_NESTED);
	expect_text(&d, "weights/names", "[\"a\", \"b\"]");
	expect_text(&d, "weights/n", "5");
	expect_kind(&d, "weights/layer", MPFS_N_MAP);
	expect_array(&d, "weights/layer/w", "|b1", "2", MPFS_ENC_NESTED);
	expect_array(&d, "weights/empty", "<f8", "0", MPFS_ENC_NESTED);
	mdl_free(&d);
}

Test(codec_model, types_ndarray_names_arrays_of_its_model)
{
	struct tb b = {0};
	struct mdl d;

	/* {"types": {"classes_": "ndarray", "t": "tuple"}, "classes_": [0, 1],
	 *  "xtra": {"classes_": [0, 1], "t": [1, 2], "deep": {"classes_": [2]}},
	 *  "params": {"other": [0, 1]},
	 *  "inner": {"class_name": "M", "xtra": {"classes_": [5]},
	 *            "weights": {"w": [1.0]}}} */
	tb_map(&b, 5);
	tb_str(&b, "types");
	tb_map(&b, 2);
	tb_str(&b, "classes_");
	tb_str(&b, "ndarray");
	tb_str(&b, "t");
	tb_str(&b, "tuple");
	tb_str(&b, "classes_");
	tb_hex(&b, "92 00 01");
	tb_str(&b, "xtra");
	tb_map(&b, 3);
	tb_str(&b, "classes_");
	tb_hex(&b, "92 00 01");
	tb_str(&b, "t");
	tb_hex(&b, "92 01 02");
	tb_str(&b, "deep");
	tb_map(&b, 1);
	tb_str(&b, "classes_");
	tb_hex(&b, "91 02");
	tb_str(&b, "params");
	tb_map(&b, 1);
	tb_str(&b, "other");
	tb_hex(&b, "92 00 01");
	tb_str(&b, "inner");
	tb_map(&b, 3);
	tb_str(&b, "class_name");
	tb_str(&b, "M");
	tb_str(&b, "xtra");
	tb_map(&b, 1);
	tb_str(&b, "classes_");
	tb_hex(&b, "91 05");
	tb_str(&b, "weights");
	tb_map(&b, 1);
	tb_str(&b, "w");
	tb_hex(&b, "91 cb 3f f0 00 00 00 00 00 00");
	mdl_tb(&d, &b);
	check_tree(&d);
	expect_array(&d, "classes_", "<i8", "2", MPFS_ENC_NESTED);
	expect_array(&d, "xtra/classes_", "<i8", "2", MPFS_ENC_NESTED);
	expect_array(&d, "xtra/deep/classes_", "<i8", "1", MPFS_ENC_NESTED);
	expect_text(&d, "xtra/t", "[1, 2]");
	expect_text(&d, "params/other", "[0, 1]");
	/* A nested model has its own types: the outer ones do not apply. */
	expect_kind(&d, "inner", MPFS_N_MAP);
	expect_text(&d, "inner/xtra/classes_", "[5]");
	expect_array(&d, "inner/weights/w", "<f8", "1", MPFS_ENC_NESTED);
	mdl_free(&d);
}

/* "weights" makes arrays only as a key of a model, not of any map. */
Test(codec_model, weights_key_of_a_plain_map)
{
	struct tb b = {0};
	struct mdl d;

	tb_map(&b, 1);
	tb_str(&b, "params");
	tb_map(&b, 1);
	tb_str(&b, "weights");
	tb_map(&b, 1);
	tb_str(&b, "w");
	tb_hex(&b, "92 01 02");
	mdl_tb(&d, &b);
	check_tree(&d);
	expect_text(&d, "params/weights/w", "[1, 2]");
	mdl_free(&d);
}

/* A csr_matrix by class_name or by the model's types; arg1's members are
 * shown as data, indices, indptr in arg1's place. */
static void csr_map(struct tb *b, bool class_name, bool compact_data)
{
	tb_map(b, class_name ? 4 : 3);
	if (class_name) {
		tb_str(b, "class_name");
		tb_str(b, "csr_matrix");
	}
	tb_str(b, "shape");
	tb_hex(b, "92 02 02");
	tb_str(b, "arg1");
	tb_arr(b, 3);
	if (compact_data) {
		double d[2] = {1.0, 2.0};
		tb_map(b, 5);
		tb_str(b, "nd");
		tb_bool(b, true);
		tb_str(b, "type");
		tb_str(b, "<f8");
		tb_str(b, "kind");
		tb_str(b, "");
		tb_str(b, "shape");
		tb_hex(b, "91 02");
		tb_str(b, "data");
		tb_bin(b, d, sizeof(d));
	} else {
		tb_hex(b, "92 cb 3f f0 00 00 00 00 00 00 cb 40 00 00 00 00 00 00 00");
	}
	tb_hex(b, "92 00 01");
	tb_hex(b, "93 00 01 02");
	tb_str(b, "dtype");
	tb_str(b, "float64");
}

Test(codec_model, csr_matrix)
{
	struct tb b = {0};
	struct mdl d;

	tb_map(&b, 4);
	tb_str(&b, "types");
	tb_map(&b, 1);
	tb_str(&b, "declared");
	tb_str(&b, "csr_matrix");
	tb_str(&b, "named");
	csr_map(&b, true, false);
	tb_str(&b, "declared");
	csr_map(&b, false, false);
	tb_str(&b, "compact");
	csr_map(&b, true, true);
	mdl_tb(&d, &b);
	check_tree(&d);

	const struct mpfs_node *n = expect_kind(&d, "named", MPFS_N_CSR);
	cr_assert_eq(n->nchildren, 6);
	cr_assert(mpfs_val_is(&d.m.doc, n->children[0].key, "class_name"));
	cr_assert(mpfs_val_is(&d.m.doc, n->children[1].key, "shape"));
	cr_assert_str_eq(mpfs_node_label(&n->children[2]), "data");
	cr_assert_str_eq(mpfs_node_label(&n->children[3]), "indices");
	cr_assert_str_eq(mpfs_node_label(&n->children[4]), "indptr");
	cr_assert(mpfs_val_is(&d.m.doc, n->children[5].key, "dtype"));
	expect_text(&d, "named/class_name", "\"csr_matrix\"");
	expect_text(&d, "named/shape", "[2, 2]");
	expect_array(&d, "named/data", "<f8", "2", MPFS_ENC_NESTED);
	expect_array(&d, "named/indices", "<i8", "2", MPFS_ENC_NESTED);
	expect_array(&d, "named/indptr", "<i8", "3", MPFS_ENC_NESTED);
	expect_text(&d, "named/dtype", "\"float64\"");

	n = expect_kind(&d, "declared", MPFS_N_CSR);
	cr_assert_eq(n->nchildren, 5);
	cr_assert_str_eq(mpfs_node_label(&n->children[1]), "data");
	expect_array(&d, "declared/indptr", "<i8", "3", MPFS_ENC_NESTED);

	expect_kind(&d, "compact", MPFS_N_CSR);
	expect_array(&d, "compact/data", "<f8", "2", MPFS_ENC_COMPACT);
	expect_array(&d, "compact/indices", "<i8", "2", MPFS_ENC_NESTED);
	mdl_free(&d);
}

Test(codec_model, not_a_csr_matrix)
{
	struct tb b = {0};
	struct mdl d;

	tb_map(&b, 3);
	tb_str(&b, "two_members"); /* arg1 must have exactly three */
	tb_map(&b, 3);
	tb_str(&b, "class_name");
	tb_str(&b, "csr_matrix");
	tb_str(&b, "shape");
	tb_hex(&b, "92 02 02");
	tb_str(&b, "arg1");
	tb_hex(&b, "92 92 01 02 92 00 01");
	tb_str(&b, "no_shape");
	tb_map(&b, 2);
	tb_str(&b, "class_name");
	tb_str(&b, "csr_matrix");
	tb_str(&b, "arg1");
	tb_hex(&b, "93 91 01 91 00 92 00 01");
	tb_str(&b, "undeclared"); /* no class_name, no types entry */
	tb_map(&b, 2);
	tb_str(&b, "shape");
	tb_hex(&b, "92 02 02");
	tb_str(&b, "arg1");
	tb_hex(&b, "93 91 01 91 00 92 00 01");
	mdl_tb(&d, &b);
	check_tree(&d);
	expect_kind(&d, "two_members", MPFS_N_MAP);
	expect_kind(&d, "no_shape", MPFS_N_MAP);
	expect_kind(&d, "undeclared", MPFS_N_MAP);
	expect_text(&d, "undeclared/arg1", "[[1], [0], [0, 1]]");
	mdl_free(&d);
}

/* Two arg1 keys crashed 0.1.0 (heap overflow, or a wild pointer when the
 * second was a scalar). Now the first is the matrix's. */
Test(codec_model, csr_matrix_with_two_arg1_keys)
{
	for (int second = 0; second < 3; second++) {
		struct tb b = {0};
		struct mdl d;

		tb_map(&b, 1);
		tb_str(&b, "m");
		tb_map(&b, 4);
		tb_str(&b, "class_name");
		tb_str(&b, "csr_matrix");
		tb_str(&b, "shape");
		tb_hex(&b, "92 01 01");
		tb_str(&b, "arg1");
		tb_hex(&b, "93 91 cb 3f f0 00 00 00 00 00 00 91 00 92 00 01");
		tb_str(&b, "arg1");
		if (second == 0)
			tb_uint(&b, 5);
		else if (second == 1)
			tb_hex(&b, "93 91 01 91 00 92 00 01");
		else
			tb_hex(&b, "93 80 80 80");
		mdl_tb(&d, &b);
		check_tree(&d);
		const struct mpfs_node *m = expect_kind(&d, "m", MPFS_N_CSR);
		cr_assert_eq(m->nchildren, 6);
		expect_array(&d, "m/data", "<f8", "1", MPFS_ENC_NESTED);
		cr_assert(mpfs_val_is(&d.m.doc, m->children[5].key, "arg1"));
		mdl_free(&d);
	}
}

Test(codec_model, compact_arrays_anywhere)
{
	struct tb b = {0};
	struct mdl d;
	uint8_t data[24] = {0};

	tb_map(&b, 2);
	tb_str(&b, "params");
	tb_map(&b, 1);
	tb_str(&b, "c");
	tb_map(&b, 4);
	tb_bin(&b, "nd", 2);
	tb_bool(&b, true);
	tb_bin(&b, "type", 4);
	tb_bin(&b, "<i4", 3);
	tb_bin(&b, "shape", 5);
	tb_hex(&b, "92 02 03");
	tb_bin(&b, "data", 4);
	tb_bin(&b, data, 24);
	tb_str(&b, "weights");
	tb_map(&b, 1);
	tb_str(&b, "list");
	tb_arr(&b, 2);
	for (int i = 0; i < 2; i++) {
		tb_map(&b, 4);
		tb_str(&b, "nd");
		tb_bool(&b, true);
		tb_str(&b, "type");
		tb_str(&b, "<f8");
		tb_str(&b, "shape");
		tb_hex(&b, i ? "91 01" : "92 01 01");
		tb_str(&b, "data");
		tb_bin(&b, data, 8);
	}
	mdl_tb(&d, &b);
	check_tree(&d);
	expect_array(&d, "params/c", "<i4", "2,3", MPFS_ENC_COMPACT);
	expect_kind(&d, "weights/list", MPFS_N_LIST);
	expect_array(&d, "weights/list/0", "<f8", "1,1", MPFS_ENC_COMPACT);
	expect_array(&d, "weights/list/1", "<f8", "1", MPFS_ENC_COMPACT);
	mdl_free(&d);
}

/* Only nd: true makes a compact array; a params map may have a key "nd". */
Test(codec_model, nd_that_is_not_true_is_a_plain_key)
{
	struct tb b = {0};
	struct mdl d;

	tb_map(&b, 2);
	tb_str(&b, "params");
	tb_map(&b, 2);
	tb_str(&b, "nd");
	tb_bool(&b, false);
	tb_str(&b, "type");
	tb_str(&b, "<f8");
	tb_str(&b, "xtra");
	tb_map(&b, 1);
	tb_str(&b, "nd");
	tb_uint(&b, 2);
	mdl_tb(&d, &b);
	check_tree(&d);
	expect_kind(&d, "params", MPFS_N_MAP);
	expect_text(&d, "params/nd", "false");
	expect_text(&d, "params/type", "\"<f8\"");
	expect_text(&d, "xtra/nd", "2");
	mdl_free(&d);
}

/* A broken compact array anywhere refuses the whole archive, at its offset. */
Test(codec_model, broken_compact_array_refuses_the_archive)
{
	struct tb b = {0};
	struct mdl d;
	uint64_t type_off;

	tb_map(&b, 1);
	tb_str(&b, "params");
	tb_map(&b, 1);
	tb_str(&b, "c");
	tb_map(&b, 4);
	tb_str(&b, "nd");
	tb_bool(&b, true);
	tb_str(&b, "type");
	type_off = b.len;
	tb_str(&b, "Z"); /* no dtype at all (strings are arrays now) */
	tb_str(&b, "shape");
	tb_hex(&b, "91 01");
	tb_str(&b, "data");
	tb_bin(&b, "12345678", 8);
	mdl_bytes(&d, b.p, b.len);
	tb_free(&b);
	cr_assert_eq(d.rc, MPFS_E_DTYPE, "%s", d.err.msg);
	cr_assert_eq(d.err.off, type_off);
	mdl_free(&d);
}

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

/* ---- work grows linearly with the archive ------------------------------------ */

/* The work (values visited and keys compared, mpfs_model.work) to classify
 * make(n)'s archive. */
static uint64_t work_for(void (*make)(struct tb *, uint32_t), uint32_t n)
{
	struct tb b = {0};
	struct mdl d;
	make(&b, n);
	mdl_tb(&d, &b);
	uint64_t work = d.m.work;
	mdl_free(&d);
	return work;
}

/* {"class_name": "M", "types": {k0: "int", ...}, "params": {k0: 0, ...}} */
static void make_types(struct tb *b, uint32_t n)
{
	char k[16];
	tb_map(b, 3);
	tb_str(b, "class_name");
	tb_str(b, "M");
	tb_str(b, "types");
	tb_map(b, n);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "k%u", i);
		tb_str(b, k);
		tb_str(b, i % 2 ? "int" : "ndarray");
	}
	tb_str(b, "params");
	tb_map(b, n);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "k%u", i);
		tb_str(b, k);
		tb_uint(b, i);
	}
}

/* {"class_name": "M", "m": {"class_name": "csr_matrix", e0: 0, ..., "shape",
 * "arg1" (last)}} */
static void make_csr(struct tb *b, uint32_t n)
{
	char k[16];
	tb_map(b, 2);
	tb_str(b, "class_name");
	tb_str(b, "M");
	tb_str(b, "m");
	tb_map(b, n + 3);
	tb_str(b, "class_name");
	tb_str(b, "csr_matrix");
	for (uint32_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "e%u", i);
		tb_str(b, k);
		tb_uint(b, i);
	}
	tb_str(b, "shape");
	tb_hex(b, "92 01 02");
	tb_str(b, "arg1");
	tb_hex(b, "93 91 cb 3f f0 00 00 00 00 00 00 91 01 92 00 01");
}

/* {"class_name": "M", "xtra": {"vocabulary_": {w0: 0, ...}, "l": [{}, ...]}} */
static void make_vocab(struct tb *b, uint32_t n)
{
	char k[16];
	tb_map(b, 3);
	tb_str(b, "class_name");
	tb_str(b, "M");
	tb_str(b, "types");
	tb_hex(b, "81 a4 6b 65 79 73 a7 6e 64 61 72 72 61 79"); /* {"keys": "ndarray"} */
	tb_str(b, "xtra");
	tb_map(b, 2);
	tb_str(b, "vocabulary_");
	tb_map(b, n);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "w%u", i);
		tb_str(b, k);
		tb_uint(b, i);
	}
	tb_str(b, "l");
	tb_arr(b, n);
	for (uint32_t i = 0; i < n; i++)
		tb_map(b, 0);
}

/* Issue 7, item 9: each key was looked up in the types map by a scan, and
 * arg1 in a csr map by a scan per key: 40k keys took 12 s to mount. 8 times
 * the keys must cost about 8 times the work (a little more for sorting),
 * never 64 times. */
Test(codec_model, classifying_work_grows_linearly)
{
	static const struct {
		const char *name;
		void (*make)(struct tb *, uint32_t);
	} shapes[] = {{"types", make_types}, {"csr", make_csr}, {"vocabulary", make_vocab}};

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		uint64_t small = work_for(shapes[s].make, 2000);
		uint64_t big = work_for(shapes[s].make, 16000);
		cr_assert_lt(big, 12 * small,
			     "%s: work %" PRIu64 " for 2k keys, %" PRIu64 " for 16k",
			     shapes[s].name, small, big);
		cr_assert_lt(big / 16000, 120, "%s: %" PRIu64 " units of work per key",
			     shapes[s].name, big / 16000);
	}
}

/* The classification of types-named keys is unchanged by the index: the
 * first of two equal keys counts, str and bin keys are the same key, and
 * integer keys match by value and sign. */
Test(codec_model, types_index_matches_like_a_scan)
{
	struct tb b = {0};
	struct mdl d;

	tb_map(&b, 3);
	tb_str(&b, "class_name");
	tb_str(&b, "M");
	tb_str(&b, "types");
	tb_map(&b, 6);
	tb_str(&b, "a"), tb_str(&b, "ndarray");
	tb_str(&b, "a"), tb_str(&b, "int"); /* a repeated key: the first counts */
	tb_bin(&b, "b", 1), tb_str(&b, "ndarray");
	tb_uint(&b, 7), tb_str(&b, "ndarray");
	tb_int(&b, -7), tb_str(&b, "int");
	tb_str(&b, "c"), tb_str(&b, "csr_matrix");
	tb_str(&b, "xtra");
	tb_map(&b, 6);
	tb_str(&b, "a"), tb_hex(&b, "92 01 02");
	tb_str(&b, "b"), tb_hex(&b, "92 01 02");
	tb_uint(&b, 7), tb_hex(&b, "92 01 02");
	tb_int(&b, -7), tb_hex(&b, "92 01 02");
	tb_str(&b, "7"), tb_hex(&b, "92 01 02");
	tb_str(&b, "c");
	tb_hex(&b, "82 a5 73 68 61 70 65 92 01 02 a4 61 72 67 31 93 91 01 91 00 92 00 01");
	mdl_tb(&d, &b);
	expect_array(&d, "xtra/a", "<i8", "2", MPFS_ENC_NESTED);
	expect_array(&d, "xtra/b", "<i8", "2", MPFS_ENC_NESTED);
	expect_array(&d, "xtra/7", "<i8", "2", MPFS_ENC_NESTED);
	expect_kind(&d, "xtra/-7", MPFS_N_TEXT);
	cr_assert_eq(d.m.root.children[2].children[4].kind, MPFS_N_TEXT, "str \"7\" is not 7");
	expect_kind(&d, "xtra/c", MPFS_N_CSR);
	mdl_free(&d);
}

/* ---- archives written by msgpack-numpy itself (issue 11) ---------------------------- */

Test(codec_model, msgpack_numpy_peer_fixture)
{
	struct mdl d;
	const struct mpfs_node *n;

	mdl_fixture(&d, "peers/msgpack_numpy_logreg.mpk");
	expect_array(&d, "xtra/classes_", "<U10", "3", MPFS_ENC_COMPACT);
	expect_array(&d, "xtra/zoo/bytes_arr", "|S2", "2", MPFS_ENC_COMPACT);
	expect_array(&d, "xtra/zoo/big_endian", ">f8", "5", MPFS_ENC_COMPACT);
	expect_array(&d, "xtra/zoo/f16", "<f2", "4", MPFS_ENC_COMPACT);
	expect_array(&d, "xtra/zoo/zero_d", "<f8", "", MPFS_ENC_COMPACT);
	expect_array(&d, "xtra/zoo/empty", "<f8", "0,4", MPFS_ENC_COMPACT);
	static const char *const scalars[][2] = {{"xtra/zoo/i64_scalar", "<i8"},
						 {"xtra/zoo/u8_scalar", "|u1"},
						 {"xtra/zoo/f32_scalar", "<f4"},
						 {"xtra/zoo/bool_scalar", "|b1"}};
	for (size_t i = 0; i < 4; i++) {
		n = expect_kind(&d, scalars[i][0], MPFS_N_SCALAR);
		cr_assert_not_null(n->array);
		cr_assert_str_eq(n->array->descr, scalars[i][1], "%s", scalars[i][0]);
		cr_assert_eq(n->array->ndim, 0);
	}
	n = expect_kind(&d, "xtra/feature_names_in_", MPFS_N_PICKLE);
	cr_assert_str_eq(n->array->descr, "|O");
	cr_assert_eq(n->array->nbytes, mpfs_map_get(&d.m.doc, n->val, "data")->len);
	/* msgpack-numpy writes Python's float64 as a plain float */
	expect_text(&d, "params/C", "0.75");
	mdl_free(&d);
}

/* {nd: false, ...} near misses stay maps; a complex scalar is a 0-d array;
 * a scalar or a pickle anywhere (params, a list) is classified the same. */
Test(codec_model, numpy_scalars_and_pickles_anywhere)
{
	struct tb b = {0};
	struct mdl d;

	tb_map(&b, 2);
	tb_str(&b, "params");
	tb_map(&b, 3);
	tb_str(&b, "s");
	tb_hex(&b, "83 a2 6e 64 c2 a4 74 79 70 65 a3 3c 69 32 a4 64 61 74 61 c4 02 05 00");
	tb_str(&b, "c");
	tb_hex(&b, "83 a2 6e 64 c2 a4 74 79 70 65 a3 3c 63 38 a4 64 61 74 61 c4 08 "
		   "00 00 80 3f 00 00 00 40");
	tb_str(&b, "near");
	tb_hex(&b, "83 a2 6e 64 c2 a4 74 79 70 65 a3 3c 69 32 a4 64 61 74 61 c4 01 05");
	tb_str(&b, "l");
	tb_arr(&b, 2);
	tb_hex(&b, "83 a2 6e 64 c2 a4 74 79 70 65 a3 7c 62 31 a4 64 61 74 61 c4 01 01");
	/* kind O with a type that is a list, as msgpack-numpy writes it */
	tb_hex(&b, "85 a2 6e 64 c3 a4 74 79 70 65 91 92 a0 a2 7c 4f a4 6b 69 6e 64 c4 01 4f "
		   "a5 73 68 61 70 65 91 02 a4 64 61 74 61 c4 02 80 2e");
	mdl_tb(&d, &b);
	expect_kind(&d, "params/s", MPFS_N_SCALAR);
	expect_array(&d, "params/c", "<c8", "", MPFS_ENC_COMPACT);
	expect_kind(&d, "params/near", MPFS_N_MAP);
	expect_kind(&d, "l", MPFS_N_LIST);
	expect_kind(&d, "l/0", MPFS_N_SCALAR);
	const struct mpfs_node *p = expect_kind(&d, "l/1", MPFS_N_PICKLE);
	cr_assert_eq(p->array->nbytes, 2);
	cr_assert_eq(p->array->shape[0], 2);
	mdl_free(&d);

	/* a pickle whose data is no bytes refuses the archive */
	tb_map(&b, 1);
	tb_str(&b, "x");
	tb_hex(&b, "83 a2 6e 64 c3 a4 6b 69 6e 64 a1 4f a4 64 61 74 61 05");
	mdl_bytes(&d, b.p, b.len);
	tb_free(&b);
	cr_assert_eq(d.rc, MPFS_E_ARRAY, "%s", d.err.msg);
	mdl_free(&d);
}
