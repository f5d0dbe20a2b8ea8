/* codec/model.c on hand-built archives: scalars, text and raw bytes, lists,
 * weights and types, csr matrices, compact arrays anywhere, numpy scalars
 * and pickles, and a broken compact array refusing the archive. */
#include <criterion/criterion.h>
#include <inttypes.h>

#include "model_env.h"

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
