/* fs/ without FUSE: arrays as .npy files (whole and partial writes, raw
 * mounts), and archives written by msgpack-numpy (numpy scalars, pickles).
 * Every test works on a private copy of a fixture in a temporary directory,
 * and checks the archive file itself by decoding it again or with a fresh
 * view. */
#include "fs_env.h"

/* ---- arrays ---------------------------------------------------------------------------------- */

Test(fs_arrays, whole_npy_replaces_a_nested_array)
{
	struct env e;
	struct arc a;
	double v[6] = {1, 2, 3, 4, 5, 6.5};
	struct mpfs_array na = f8_array(2, 2, 3), got;
	size_t n;
	uint8_t *file = npy_file(&na, v, &n);

	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(put_file(&e, "/weights/coef_.npy", file, n, false), 0, "%s", last_log);
	arc_load(&a, e.archive);
	const struct mpfs_val *c = arc_must(&a, "weights/coef_");
	cr_assert_eq(c->type, MPFS_ARRAY, "still nested lists");
	cr_assert(mpfs_array_nested(c, &got));
	cr_assert_eq(got.ndim, 2);
	cr_assert_eq(got.shape[0], 2);
	cr_assert_eq(got.shape[1], 3);
	double back[6];
	mpfs_array_fill(&a.doc, &got, (uint8_t *)back);
	cr_assert(memcmp(back, v, sizeof(v)) == 0);
	arc_free(&a);
	size_t len;
	char *s = fs_cat(&e, "/weights/coef_.npy", &len);
	cr_assert_eq(len, n);
	cr_assert(memcmp(s, file, n) == 0, "reads back as written");
	free(s);

	/* complex cannot be nested lists: refused, sticky */
	struct mpfs_array cx = {
		.descr = "<c16", .itemsize = 16, .ndim = 1, .count = 1, .nbytes = 16};
	cx.shape[0] = 1;
	size_t cn;
	uint8_t *cfile = npy_file(&cx, v, &cn);
	arc_load(&a, e.archive);
	uint64_t fh = fs_open(&e, "/weights/coef_.npy", O_WRONLY | O_TRUNC, false);
	fs_write(&e, fh, cfile, cn, 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), -EINVAL);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), -EINVAL);
	fs_release(&e, fh);
	arc_unchanged(&a, e.archive, "c16 into nested");
	/* a broken header: refused */
	file[3] = 'X';
	cr_assert_eq(put_file(&e, "/weights/coef_.npy", file, n, false), -EINVAL);
	file[3] = 'M';
	/* a size that does not match */
	cr_assert_eq(put_file(&e, "/weights/coef_.npy", file, n - 1, false), -EINVAL);
	arc_unchanged(&a, e.archive, "bad npy");
	arc_free(&a);
	free(cfile);
	free(file);
	env_close(&e);
}

/* A compact map keeps its key spellings and order. */
Test(fs_arrays, whole_npy_into_a_compact_map)
{
	struct env e;
	struct arc a, b;
	double v[3] = {-1, 0, 1};
	struct mpfs_array na = f8_array(1, 3, 0), got;
	struct mpfs_error err;
	size_t n;
	uint8_t *file = npy_file(&na, v, &n);

	env_open(&e, "logreg_compact.mpk");
	arc_load(&a, e.archive);
	cr_assert_eq(put_file(&e, "/weights/coef_.npy", file, n, false), 0, "%s", last_log);
	arc_load(&b, e.archive);
	const struct mpfs_val *o = arc_must(&a, "weights/coef_"),
			      *c = arc_must(&b, "weights/coef_");
	cr_assert_eq(c->type, MPFS_MAP);
	cr_assert_eq(c->len, o->len);
	for (uint32_t i = 0; i < o->len; i++) {
		const struct mpfs_val *ko = &o->items[2 * i], *kc = &c->items[2 * i];
		cr_assert(ko->end - ko->off == kc->end - kc->off &&
				  !memcmp(a.buf + ko->off, b.buf + kc->off, ko->end - ko->off),
			  "key %u spelled differently", i);
	}
	cr_assert_eq(mpfs_array_compact(&b.doc, c, &got, &err), MPFS_OK, "%s", err.msg);
	cr_assert_str_eq(got.descr, "<f8");
	cr_assert_eq(got.ndim, 1);
	cr_assert_eq(got.shape[0], 3);
	cr_assert(memcmp(b.buf + got.data_off, v, sizeof(v)) == 0);
	arc_free(&b);
	arc_free(&a);
	free(file);
	env_close(&e);
}

/* dd conv=notrunc / np.memmap: a few bytes inside the data. */
Test(fs_arrays, partial_write_inside_an_npy)
{
	static const char *const fixtures[] = {"logreg_seed.mpk", "logreg_compact.mpk"};
	for (size_t f = 0; f < 2; f++) {
		struct env e;
		struct arc a, b;
		struct mpfs_array before, after;
		struct mpfs_error err;

		env_open(&e, fixtures[f]);
		arc_load(&a, e.archive);
		uint64_t fh = fs_open(&e, "/weights/coef_.npy", O_RDWR, false);
		uint8_t pre[10];
		cr_assert_eq(mpfs_fs_read(e.fs, fh, (char *)pre, 10, 0), 10);
		size_t hdr = 10 + (pre[8] | (size_t)pre[9] << 8);
		double x = 42.0;
		fs_write(&e, fh, &x, 8, hdr + 8); /* element [0][1] */
		cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0, "%s: %s", fixtures[f], last_log);
		fs_release(&e, fh);
		arc_load(&b, e.archive);
		const struct mpfs_val *o = arc_must(&a, "weights/coef_"),
				      *c = arc_must(&b, "weights/coef_");
		if (f == 0) {
			cr_assert(mpfs_array_nested(o, &before) && mpfs_array_nested(c, &after));
		} else {
			cr_assert_eq(mpfs_array_compact(&a.doc, o, &before, &err), MPFS_OK);
			cr_assert_eq(mpfs_array_compact(&b.doc, c, &after, &err), MPFS_OK);
		}
		cr_assert_eq(after.nbytes, before.nbytes);
		double *x0 = malloc(before.nbytes), *x1 = malloc(after.nbytes);
		if (f == 0) {
			mpfs_array_fill(&a.doc, &before, (uint8_t *)x0);
			mpfs_array_fill(&b.doc, &after, (uint8_t *)x1);
		} else {
			memcpy(x0, a.buf + before.data_off, before.nbytes);
			memcpy(x1, b.buf + after.data_off, after.nbytes);
		}
		for (size_t i = 0; i < before.count; i++)
			cr_assert_eq(x1[i], i == 1 ? 42.0 : x0[i], "%s: element %zu", fixtures[f],
				     i);
		free(x0);
		free(x1);
		arc_free(&b);
		arc_free(&a);
		env_close(&e);
	}
}

Test(fs_arrays, raw_mount)
{
	struct env e;
	struct arc a;

	env_open_opts(&e, "logreg_compact.mpk", false, true, 0644);
	arc_load(&a, e.archive);
	struct stat st;
	cr_assert_eq(getattr(&e, "/weights/coef_.bin", &st), 0);
	cr_assert_eq(st.st_size, 48);
	double v[7] = {6, 5, 4, 3, 2, 1, 0};
	cr_assert_eq(put_file(&e, "/weights/coef_.bin", v, 40, false), -EINVAL);
	cr_assert_eq(put_file(&e, "/weights/coef_.bin", v, 56, false), -EINVAL);
	arc_unchanged(&a, e.archive, "raw size");
	cr_assert_eq(put_file(&e, "/weights/coef_.bin", v, 48, false), 0);
	arc_free(&a);
	arc_load(&a, e.archive);
	struct mpfs_array got;
	struct mpfs_error err;
	cr_assert_eq(mpfs_array_compact(&a.doc, arc_must(&a, "weights/coef_"), &got, &err),
		     MPFS_OK);
	cr_assert(memcmp(a.buf + got.data_off, v, 48) == 0);
	/* a new NAME.bin has no dtype or shape */
	cr_assert_eq(put_file(&e, "/weights/new.bin", v, 48, true), -EINVAL);
	cr_assert(strstr(last_log, "new.bin"), "%s", last_log);
	arc_free(&a);
	env_close(&e);
}

/* ---- archives written by msgpack-numpy (issue 11) -------------------------------------- */

#define PEER "peers/msgpack_numpy_logreg.mpk"

/* A numpy scalar is a text file; a write keeps its dtype where the value
 * fits, else the MsgPack rules for numbers pick a wider one. */
Test(fs_peer, numpy_scalars_are_text_and_keep_their_dtype)
{
	struct env e;
	struct arc before, a;
	char dtype[16];
	long n;

	env_open(&e, PEER);
	arc_load(&before, e.archive);
	expect_cat(&e, "/xtra/zoo/u8_scalar", "200\n");
	expect_cat(&e, "/xtra/zoo/f32_scalar", "0.5\n");
	expect_cat(&e, "/xtra/zoo/bool_scalar", "true\n");
	n = mpfs_fs_getxattr(e.fs, "/xtra/zoo/u8_scalar", "user.mpfs.dtype", dtype, sizeof(dtype));
	cr_assert_eq(n, 3);
	cr_assert(memcmp(dtype, "|u1", 3) == 0);
	cr_assert_eq(mpfs_fs_getxattr(e.fs, "/xtra/zoo/u8_scalar", "user.mpfs.shape", dtype,
				      sizeof(dtype)),
		     -ENODATA);

	cr_assert_eq(echo_to(&e, "/xtra/zoo/u8_scalar", "201\n", false), 0, "%s", last_log);
	expect_cat(&e, "/xtra/zoo/u8_scalar", "201\n");
	arc_load(&a, e.archive);
	const struct mpfs_val *m = arc_must(&a, "xtra/zoo/u8_scalar");
	const struct mpfs_val *old = arc_must(&before, "xtra/zoo/u8_scalar");
	cr_assert_eq(m->end - m->off, old->end - old->off, "the map changed size");
	cr_assert(mpfs_val_is(&a.doc, mpfs_map_get(&a.doc, m, "type"), "|u1"));
	arc_free(&a);

	cr_assert_eq(echo_to(&e, "/xtra/zoo/u8_scalar", "300\n", false), 0, "%s", last_log);
	expect_cat(&e, "/xtra/zoo/u8_scalar", "300\n");
	n = mpfs_fs_getxattr(e.fs, "/xtra/zoo/u8_scalar", "user.mpfs.dtype", dtype, sizeof(dtype));
	cr_assert(n == 3 && memcmp(dtype, "<u2", 3) == 0, "300 in a uint8: %.*s", (int)n, dtype);

	cr_assert_eq(echo_to(&e, "/xtra/zoo/f32_scalar", "0.1\n", false), 0, "%s", last_log);
	expect_cat(&e, "/xtra/zoo/f32_scalar", "0.1\n");
	n = mpfs_fs_getxattr(e.fs, "/xtra/zoo/f32_scalar", "user.mpfs.dtype", dtype, sizeof(dtype));
	cr_assert(n == 3 && memcmp(dtype, "<f8", 3) == 0);

	/* not JSON: refused, nothing changes */
	arc_load(&a, e.archive);
	cr_assert_eq(echo_to(&e, "/xtra/zoo/i64_scalar", "minus five\n", false), -EINVAL);
	arc_unchanged(&a, e.archive, "refused scalar");
	expect_cat(&e, "/xtra/zoo/i64_scalar", "-5\n");
	arc_free(&a);
	arc_free(&before);
	env_close(&e);
}

/* An object array is NAME.pickle: its bytes as stored, read-only. */
Test(fs_peer, pickles_are_read_only_raw_files)
{
	struct env e;
	struct arc a;
	struct stat st;
	char enc[16];
	uint64_t fh = 0;
	size_t n;

	env_open(&e, PEER);
	arc_load(&a, e.archive);
	const struct mpfs_val *m = arc_must(&a, "xtra/feature_names_in_");
	const struct mpfs_val *data = mpfs_map_get(&a.doc, m, "data");
	char *got = fs_cat(&e, "/xtra/feature_names_in_.pickle", &n);
	cr_assert_eq(n, data->len);
	cr_assert(memcmp(got, mpfs_val_data(&a.doc, data), n) == 0, "not the bytes as stored");
	free(got);
	cr_assert_eq(getattr(&e, "/xtra/feature_names_in_.pickle", &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0444);
	cr_assert_eq(st.st_size, (off_t)data->len);
	cr_assert_eq(mpfs_fs_getxattr(e.fs, "/xtra/feature_names_in_.pickle", "user.mpfs.encoding",
				      enc, sizeof(enc)),
		     6);
	cr_assert(memcmp(enc, "pickle", 6) == 0);
	cr_assert_eq(getattr(&e, "/xtra/feature_names_in_", NULL), -ENOENT);

	static const int flags[] = {O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_APPEND};
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		cr_assert_eq(mpfs_fs_open_file(e.fs, "/xtra/feature_names_in_.pickle", flags[i],
					       false, &fh),
			     -EPERM, "flags %#x", flags[i]);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/xtra/feature_names_in_.pickle", 0, 0), -EPERM);
	cr_assert_eq(
		mpfs_fs_open_file(e.fs, "/xtra/feature_names_in_.pickle", O_RDONLY, false, &fh), 0);
	fs_release(&e, fh);
	arc_unchanged(&a, e.archive, "writes to a pickle");
	arc_free(&a);
	env_close(&e);
}

Test(fs_peer, rm_removes_a_pickle)
{
	struct env e;
	struct arc a;

	env_open(&e, PEER);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/xtra/feature_names_in_.pickle"), 0);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_index(&a, "xtra", "feature_names_in_"), -1);
	cr_assert_not_null(arc_get(&a, "xtra/n_features_in_"));
	arc_free(&a);
	cr_assert_eq(listed(&e, "/xtra", "feature_names_in_.pickle"), 0);
	env_close(&e);
}

/* NAME.npy written beside NAME.pickle replaces the pickled value: one key,
 * now a string array. */
Test(fs_peer, npy_beside_a_pickle_replaces_it)
{
	struct env e;
	struct arc a;
	struct mpfs_array na = {
		.descr = "<U4", .itemsize = 16, .ndim = 1, .count = 2, .nbytes = 32};
	uint32_t chars[8] = {'a', 'b', 0, 0, 'c', 'd', 'e', 'f'}, dup = 0;
	struct mpfs_array got;
	struct mpfs_error err;
	size_t n;

	na.shape[0] = 2;
	uint8_t *file = npy_file(&na, chars, &n);
	env_open(&e, PEER);
	cr_assert_eq(put_file(&e, "/xtra/feature_names_in_.npy", file, n, true), 0, "%s", last_log);
	arc_load(&a, e.archive);
	const struct mpfs_val *x = arc_must(&a, "xtra");
	for (uint32_t i = 0; i < x->len; i++)
		dup += mpfs_val_is(&a.doc, &x->items[2 * i], "feature_names_in_");
	cr_assert_eq(dup, 1, "the key is there %u times", dup);
	const struct mpfs_val *m = arc_must(&a, "xtra/feature_names_in_");
	cr_assert_eq(mpfs_array_compact(&a.doc, m, &got, &err), MPFS_OK, "%s", err.msg);
	cr_assert_str_eq(got.descr, "<U4");
	/* keys as msgpack-numpy writes them (its decode looks for b'nd') */
	cr_assert_eq(m->len, 5);
	for (uint32_t i = 0; i < m->len; i++)
		cr_assert_eq(m->items[2 * i].type, MPFS_BIN, "key %u is no bin", i);
	cr_assert(memcmp(a.buf + got.data_off, chars, 32) == 0);
	arc_free(&a);
	cr_assert_eq(listed(&e, "/xtra", "feature_names_in_.pickle"), 0);
	cr_assert_eq(listed(&e, "/xtra", "feature_names_in_.npy"), 1);
	size_t len;
	char *back = fs_cat(&e, "/xtra/feature_names_in_.npy", &len);
	cr_assert_eq(len, n);
	cr_assert(memcmp(back, file, n) == 0);
	free(back);
	free(file);
	env_close(&e);
}

/* numpy.save of a string array over one replaces it (a longer one too). */
Test(fs_peer, string_array_replaced_by_npy)
{
	struct env e;
	struct arc a;
	struct mpfs_array na = {
		.descr = "<U12", .itemsize = 48, .ndim = 1, .count = 1, .nbytes = 48};
	uint32_t chars[12] = {'x', 'y', 'z'};
	struct mpfs_array got;
	struct mpfs_error err;
	size_t n;

	na.shape[0] = 1;
	uint8_t *file = npy_file(&na, chars, &n);
	env_open(&e, PEER);
	cr_assert_eq(put_file(&e, "/xtra/classes_.npy", file, n, false), 0, "%s", last_log);
	arc_load(&a, e.archive);
	const struct mpfs_val *m = arc_must(&a, "xtra/classes_");
	cr_assert_eq(mpfs_array_compact(&a.doc, m, &got, &err), MPFS_OK, "%s", err.msg);
	cr_assert_str_eq(got.descr, "<U12");
	cr_assert_eq(got.shape[0], 1);
	/* msgpack-numpy's keys as written: bin, with kind */
	cr_assert_eq(m->items[0].type, MPFS_BIN);
	cr_assert_not_null(mpfs_map_get(&a.doc, m, "kind"));
	arc_free(&a);
	free(file);
	env_close(&e);
}
