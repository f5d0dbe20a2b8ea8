/* codec/model.c: the work of classifying grows linearly with the archive,
 * and the index of the types map classifies as a scan would. */
#include <criterion/criterion.h>
#include <inttypes.h>

#include "model_env.h"

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
