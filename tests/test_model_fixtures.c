/* codec/model.c on the real fixtures: every one a consistent tree, how the
 * values of each are classified (directories, text, arrays, raw bytes), and
 * the archives written by msgpack-numpy itself. */
#include <criterion/criterion.h>
#include <inttypes.h>

#include "model_env.h"

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
