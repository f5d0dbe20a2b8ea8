/* fs/fs.c and fs/commit.c without FUSE: opening files, writing, flushing
 * and releasing them as the kernel would, directory operations, scratch
 * files, refusals, read-only mounts, archives changed behind the mount's
 * back, and leftovers of killed commits. Every test works on a private copy
 * of a fixture in a temporary directory, and checks the archive file itself
 * by decoding it again (mpfs_doc_init) or with a fresh view. */
#include "fs_env.h"

/* ---- opening ------------------------------------------------------------------------------ */

Test(fs_open, errors_and_a_good_archive)
{
	char *dir = tu_temp_dir(), *path;
	struct mpfs_fs *fs = NULL;
	struct mpfs_fs_opts o = {.log = test_log};
	struct mpfs_error err;
	size_t n;
	uint8_t *p;

	cr_assert(asprintf(&path, "%s/missing.mpk", dir) > 0);
	err.msg[0] = '\0';
	cr_assert_eq(mpfs_fs_open(&fs, path, &o, &err), -ENOENT);
	cr_assert(err.msg[0]);
	free(path);

	cr_assert(asprintf(&path, "%s/bad.mpk", dir) > 0);
	p = tu_fixture("bad_truncated.mpk", &n);
	tu_write_file(path, p, n);
	free(p);
	err.msg[0] = '\0';
	cr_assert_eq(mpfs_fs_open(&fs, path, &o, &err), -EINVAL);
	cr_assert(strstr(err.msg, "truncated"), "%s", err.msg);
	free(path);

	/* a relative path works too: the fs keeps the absolute one */
	cr_assert(asprintf(&path, "%s/a.mpk", dir) > 0);
	p = tu_fixture("logreg_seed.mpk", &n);
	tu_write_file(path, p, n);
	free(p);
	char *cwd = getcwd(NULL, 0);
	cr_assert_eq(chdir(dir), 0);
	cr_assert_eq(mpfs_fs_open(&fs, "a.mpk", &o, &err), 0, "%s", err.msg);
	cr_assert_eq(chdir(cwd), 0);
	free(cwd);
	cr_assert_not(mpfs_fs_readonly(fs));
	struct stat st;
	cr_assert_eq(mpfs_fs_getattr(fs, "/", &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(mpfs_fs_getattr(fs, "/params/C", &st), 0);
	cr_assert(S_ISREG(st.st_mode) && (st.st_mode & S_IWUSR));
	cr_assert_eq(st.st_size, 4);
	cr_assert_eq(mpfs_fs_getattr(fs, "/nothing", &st), -ENOENT);
	cr_assert_eq(mpfs_fs_getattr(fs, "/params/C/x", &st), -ENOTDIR);
	uint64_t fh;
	cr_assert_eq(mpfs_fs_open_file(fs, "/nothing", O_RDONLY, false, &fh), -ENOENT);
	cr_assert_eq(mpfs_fs_open_file(fs, "/params", O_WRONLY, false, &fh), -EISDIR);
	cr_assert_eq(mpfs_fs_open_file(fs, "/params/C", O_WRONLY | O_CREAT | O_EXCL, true, &fh),
		     -EEXIST);
	mpfs_fs_close(fs);
	free(path);
	tu_rm_rf(dir);
	free(dir);
}

/* ---- writing and committing ----------------------------------------------------------------- */

Test(fs_write, flush_commits_the_edit)
{
	struct env e;
	struct arc a, b;

	env_open_opts(&e, "logreg_seed.mpk", false, false, 0640);
	arc_load(&a, e.archive);
	const struct mpfs_val *c = arc_must(&a, "params/C");
	cr_assert_eq(c->tag, 0xcb);

	cr_assert_eq(echo_to(&e, "/params/C", "0.25\n", false), 0);
	arc_load(&b, e.archive);
	/* only the value's bytes changed */
	cr_assert_eq(b.n, a.n);
	cr_assert(memcmp(b.buf, a.buf, c->off) == 0);
	cr_assert(memcmp(b.buf + c->end, a.buf + c->end, a.n - c->end) == 0);
	cr_assert_eq(arc_must(&b, "params/C")->tag, 0xcb);
	cr_assert_eq(arc_must(&b, "params/C")->f, 0.25);
	cr_assert_neq(b.st.st_ino, a.st.st_ino, "committed by renaming a new file over");
	cr_assert_eq(b.st.st_mode & 07777, 0640, "permission bits kept: %o", b.st.st_mode & 07777);
	arc_free(&b);
	expect_cat(&e, "/params/C", "0.25\n");
	char *fresh = view_cat(e.archive, "/params/C", false);
	cr_assert_str_eq(fresh, "0.25\n");
	free(fresh);

	/* the next edit starts from the new archive */
	cr_assert_eq(echo_to(&e, "/params/max_iter", "300\n", false), 0);
	arc_load(&b, e.archive);
	cr_assert_eq(arc_must(&b, "params/C")->f, 0.25);
	const struct mpfs_val *m = arc_must(&b, "params/max_iter");
	cr_assert_eq(m->tag, 0xcd, "300 after a fixint: %#x", m->tag);
	cr_assert_eq(m->u, 300);
	arc_free(&b);
	struct stat st;
	cr_assert_eq(getattr(&e, "/params/max_iter", &st), 0);
	cr_assert_eq(st.st_size, 4);
	cr_assert_eq(stray_files(&e), 0, "a temporary file was left beside the archive");
	cr_assert_eq(nlogs, 0, "logged: %s", last_log);
	arc_free(&a);
	env_close(&e);
}

Test(fs_write, widths_and_kinds_kept)
{
	struct env e;
	struct arc a;

	env_open(&e, "edge_values.mpk");
	cr_assert_eq(echo_to(&e, "/params/f32", "0.5\n", false), 0);
	cr_assert_eq(echo_to(&e, "/params/u64max", "7\n", false), 0);
	cr_assert_eq(echo_to(&e, "/params/i64min", "-7\n", false), 0);
	cr_assert_eq(echo_to(&e, "/params/text", "plain words\n", false), 0);
	cr_assert_eq(echo_to(&e, "/params/lst", "[1, \"two\", {\"x\": null}]\n", false), 0);
	cr_assert_eq(echo_to(&e, "/params/none", "\"now a string\"", false), 0);
	arc_load(&a, e.archive);
	/* a float64 (holding a float32's value) stays float64 */
	cr_assert_eq(arc_must(&a, "params/f32")->tag, 0xcb);
	cr_assert_eq(arc_must(&a, "params/f32")->f, 0.5);
	cr_assert_eq(arc_must(&a, "params/u64max")->tag, 0xcf);
	cr_assert_eq(arc_must(&a, "params/u64max")->u, 7);
	cr_assert_eq(arc_must(&a, "params/i64min")->tag, 0xd3);
	cr_assert_eq(arc_must(&a, "params/i64min")->i, -7);
	cr_assert(mpfs_val_is(&a.doc, arc_must(&a, "params/text"), "plain words"));
	cr_assert(mpfs_val_is(&a.doc, arc_must(&a, "params/none"), "now a string"));
	arc_free(&a);
	/* a list holding a map is a directory now */
	struct stat st;
	cr_assert_eq(getattr(&e, "/params/lst", &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	expect_cat(&e, "/params/lst/1", "\"two\"\n");

	/* raw bytes: a bin stays a bin */
	uint64_t fh = fs_open(&e, "/blob", O_WRONLY | O_TRUNC, false);
	fs_write(&e, fh, "\x00\xff\x00", 3, 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_release(&e, fh);
	arc_load(&a, e.archive);
	const struct mpfs_val *blob = arc_must(&a, "blob");
	cr_assert_eq(blob->type, MPFS_BIN);
	cr_assert_eq(blob->len, 3);
	cr_assert(memcmp(mpfs_val_data(&a.doc, blob), "\x00\xff\x00", 3) == 0);
	arc_free(&a);
	env_close(&e);
}

/* O_TRUNC and a flush of the still-empty file commit nothing; a file
 * closed empty keeps the stored value. */
Test(fs_write, truncated_and_empty_commits_nothing)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	uint64_t fh = fs_open(&e, "/params/C", O_WRONLY | O_TRUNC, false);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	struct stat st;
	cr_assert_eq(getattr(&e, "/params/C", &st), 0);
	cr_assert_eq(st.st_size, 0, "empty while open");
	fs_release(&e, fh);
	arc_unchanged(&a, e.archive, "O_TRUNC, flush, release");
	expect_cat(&e, "/params/C", "0.5\n");

	/* truncate(2) to 0 of a closed file, and through a handle */
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/params/C", 0, 0), 0);
	fh = fs_open(&e, "/params/C", O_RDWR, false);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/params/C", fh, 0), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_release(&e, fh);
	arc_unchanged(&a, e.archive, "truncate to 0");
	expect_cat(&e, "/params/C", "0.5\n");

	/* a number has no empty value: each of those closes said so */
	cr_assert_eq(nlogs, 3, "logged %d: %s", nlogs, last_log);
	cr_assert(strstr(last_log, "/params/C") && strstr(last_log, "kept"), "log: %s", last_log);
	log_reset();
	/* an open for writing without changes commits nothing either */
	fh = fs_open(&e, "/params/C", O_RDWR, false);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_release(&e, fh);
	arc_unchanged(&a, e.archive, "no change");
	cr_assert_eq(nlogs, 0, "logged: %s", last_log);
	arc_free(&a);
	env_close(&e);
}

/* Writes through a shared mapping arrive after the flush: committed at
 * release. */
Test(fs_write, late_writes_commit_at_release)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	uint64_t fh = fs_open(&e, "/params/max_iter", O_RDWR, false);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_puts(&e, fh, "2", 0); /* "100\n" -> "200\n" */
	fs_release(&e, fh);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params/max_iter")->u, 200);
	arc_free(&a);
	expect_cat(&e, "/params/max_iter", "200\n");

	/* fsync, then late writes, then release */
	fh = fs_open(&e, "/params/max_iter", O_RDWR, false);
	fs_puts(&e, fh, "3", 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_puts(&e, fh, "4", 0);
	fs_release(&e, fh);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params/max_iter")->u, 400);
	arc_free(&a);
	env_close(&e);
}

/* Refused content: -EINVAL, archive untouched, the file reads back as
 * stored, and the refusal sticks until new data is written. */
Test(fs_write, refusal_is_sticky_until_a_new_write)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	uint64_t fh = fs_open(&e, "/params/max_iter", O_WRONLY | O_TRUNC, false);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_puts(&e, fh, "abc\n", 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), -EINVAL);
	arc_unchanged(&a, e.archive, "refused");
	cr_assert_geq(nlogs, 1);
	cr_assert(strstr(last_log, "/params/max_iter") && strstr(last_log, "refused"), "log: %s",
		  last_log);
	/* the writer's content stays as written; others read the archive */
	char *s = fh_read(&e, fh, NULL);
	cr_assert_str_eq(s, "abc\n", "reads back '%s' after the refusal", s);
	free(s);
	expect_cat(&e, "/params/max_iter", "100\n");
	struct stat st;
	cr_assert_eq(getattr(&e, "/params/max_iter", &st), 0);
	cr_assert_eq(st.st_size, 4);
	/* numpy's second close (or fsync) without new writes: still refused */
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), -EINVAL);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), -EINVAL);
	arc_unchanged(&a, e.archive, "refused again");
	/* a new write clears it: "55\n" over "100\n" gives "55\n\n" */
	fs_puts(&e, fh, "55\n", 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_release(&e, fh);
	arc_free(&a);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params/max_iter")->u, 55);
	arc_free(&a);

	/* refused, then released: nothing committed, stored value shown */
	arc_load(&a, e.archive);
	fh = fs_open(&e, "/params/dual", O_WRONLY | O_TRUNC, false);
	fs_puts(&e, fh, "maybe\n", 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), -EINVAL);
	fs_release(&e, fh);
	arc_unchanged(&a, e.archive, "bool refused");
	expect_cat(&e, "/params/dual", "false\n");
	/* a truncation also clears a refusal (the next flush of the empty
	 * file then refuses nothing) */
	fh = fs_open(&e, "/params/dual", O_WRONLY | O_TRUNC, false);
	fs_puts(&e, fh, "maybe\n", 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), -EINVAL);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/params/dual", fh, 0), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_puts(&e, fh, "true", 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_release(&e, fh);
	arc_free(&a);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params/dual")->b, true);
	arc_free(&a);

	/* a string takes text that is not JSON */
	cr_assert_eq(echo_to(&e, "/params/solver", "sag\n", false), 0);
	expect_cat(&e, "/params/solver", "\"sag\"\n");
	env_close(&e);
}

/* A JSON value nested deeper than the archive decoder's limit parses, but
 * the archive it would make does not decode: the commit is refused with
 * EINVAL, like any content that cannot be stored, and nothing changes. */
Test(fs_write, too_deep_for_the_archive)
{
	struct env e;
	struct arc a;
	char text[2 * MPFS_MAX_DEPTH + 1];

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	memset(text, '[', MPFS_MAX_DEPTH - 1);
	memset(text + MPFS_MAX_DEPTH - 1, ']', MPFS_MAX_DEPTH - 1);
	text[2 * MPFS_MAX_DEPTH - 2] = '\0';
	int rc = echo_to(&e, "/params/C", text, false);
	cr_assert_eq(rc, -EINVAL, "%d", rc);
	arc_unchanged(&a, e.archive, "too deep");
	expect_cat(&e, "/params/C", "0.5\n");
	cr_assert_eq(stray_files(&e), 0);
	arc_free(&a);
	env_close(&e);
}

/* The codec's long-number over-read (test_encode.c,
 * long_number_at_end_of_text) seen through a file: 80 digits written, the
 * file cut to 70, flushed. The number read is the 80 digits still in the
 * buffer beyond the content. */
Test(fs_write, long_number_cut_by_truncate)
{
	struct env e;
	struct arc a;
	char digits[81];

	memset(digits, '1', 80);
	digits[80] = '\0';
	env_open(&e, "logreg_seed.mpk");
	uint64_t fh = fs_open(&e, "/params/C", O_RDWR | O_TRUNC, false);
	fs_puts(&e, fh, digits, 0);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/params/C", fh, 70), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_release(&e, fh);
	arc_load(&a, e.archive);
	double f = arc_must(&a, "params/C")->f;
	cr_assert(f > 1.1e69 && f < 1.2e69, "70 ones read as %g", f);
	arc_free(&a);
	env_close(&e);
}

Test(fs_write, truncate_by_path_commits_the_cut)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	/* "0.0001\n" cut to "0.0" */
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/params/tol", 0, 3), 0);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params/tol")->f, 0.0);
	cr_assert_eq(arc_must(&a, "params/tol")->tag, 0xcb);
	/* "false\n" cut to "fa": refused, unchanged */
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/params/dual", 0, 2), -EINVAL);
	arc_unchanged(&a, e.archive, "cut bool");
	expect_cat(&e, "/params/dual", "false\n");
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/params", 0, 2), -EISDIR);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/nothing", 0, 2), -ENOENT);
	arc_free(&a);
	env_close(&e);
}

/* ---- arrays ---------------------------------------------------------------------------------- */

/* An NPY v1 file of a (data: nbytes bytes); free(). */
static uint8_t *npy_file(const struct mpfs_array *a, const void *data, size_t *len)
{
	char h[MPFS_NPY_HEADER_MAX];
	size_t hn = mpfs_npy_header(a, h);
	uint8_t *p = malloc(hn + a->nbytes + 1);
	memcpy(p, h, hn);
	memcpy(p + hn, data, a->nbytes);
	*len = hn + a->nbytes;
	return p;
}

static struct mpfs_array f8_array(unsigned ndim, uint64_t d0, uint64_t d1)
{
	struct mpfs_array a = {.descr = "<f8", .itemsize = 8, .ndim = (uint8_t)ndim};
	a.shape[0] = d0;
	a.shape[1] = d1;
	a.count = ndim == 1 ? d0 : d0 * d1;
	a.nbytes = 8 * a.count;
	return a;
}

/* Writes a whole file: open O_TRUNC, write, flush (returned), release. */
static int put_file(struct env *e, const char *path, const void *p, size_t n, bool create)
{
	uint64_t fh = fs_open(e, path, O_WRONLY | O_TRUNC | (create ? O_CREAT : 0), create);
	fs_write(e, fh, p, n, 0);
	int rc = mpfs_fs_flush(e->fs, fh);
	fs_release(e, fh);
	return rc;
}

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

/* ---- new entries --------------------------------------------------------------------------------
 */

Test(fs_new, new_files_become_new_keys)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(echo_to(&e, "/params/brand_new", "[1, 2]\n", true), 0);
	cr_assert_eq(echo_to(&e, "/params/words", "hello world\n", true), 0);
	/* at the top level */
	cr_assert_eq(echo_to(&e, "/top", "true", true), 0);
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/topdir"), 0);
	/* a decimal name in a map of integer keys is an integer key */
	cr_assert_eq(echo_to(&e, "/params/class_weight/2", "3.0\n", true), 0);
	/* an escaped name is decoded; %#JSON is a key of another type */
	cr_assert_eq(echo_to(&e, "/xtra/%a%2Fb", "1", true), 0);
	cr_assert_eq(echo_to(&e, "/xtra/%#-5", "2", true), 0);
	arc_load(&a, e.archive);
	const struct mpfs_val *p = arc_must(&a, "params");
	cr_assert(mpfs_val_is(&a.doc, &p->items[2 * (p->len - 2)], "brand_new"));
	cr_assert(mpfs_val_is(&a.doc, &p->items[2 * (p->len - 1)], "words"));
	cr_assert(mpfs_val_is(&a.doc, arc_must(&a, "params/words"), "hello world"));
	cr_assert_eq(arc_must(&a, "params/brand_new")->type, MPFS_ARRAY);
	cr_assert_eq(arc_index(&a, "", "top"), (int)a.doc.root.len - 2);
	cr_assert_eq(arc_must(&a, "top")->b, true);
	cr_assert_eq(arc_must(&a, "topdir")->type, MPFS_MAP);
	const struct mpfs_val *cw = arc_must(&a, "params/class_weight");
	cr_assert_eq(cw->len, 3);
	cr_assert_eq(cw->items[4].type, MPFS_UINT, "key 2 is an integer");
	cr_assert_eq(cw->items[4].u, 2);
	cr_assert_eq(cw->items[5].f, 3.0);
	const struct mpfs_val *x = arc_must(&a, "xtra");
	cr_assert(mpfs_val_is(&a.doc, &x->items[2 * (x->len - 2)], "a/b"));
	cr_assert_eq(x->items[2 * (x->len - 1)].type, MPFS_INT);
	cr_assert_eq(x->items[2 * (x->len - 1)].i, -5);
	arc_free(&a);
	expect_cat(&e, "/params/class_weight/2", "3.0\n");
	expect_cat(&e, "/xtra/%a%2Fb", "1\n");
	/* a shortened name cannot be created */
	uint64_t fh = fs_open(&e, "/xtra/%~3~abc", O_WRONLY | O_CREAT, true);
	fs_puts(&e, fh, "1", 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), -EINVAL);
	fs_release(&e, fh);
	env_close(&e);
}

/* In an archive of nested-list arrays (seed style), a new array under
 * weights is one too; elsewhere only a compact map reads back as an array. */
Test(fs_new, new_npy_in_a_seed_archive_is_a_nested_list)
{
	struct env e;
	struct arc a;
	double v[4] = {1, 0, 0, 1.5};
	struct mpfs_array na = f8_array(2, 2, 2);
	size_t n;
	uint8_t *file = npy_file(&na, v, &n);

	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(put_file(&e, "/weights/eye.npy", file, n, true), 0, "%s", last_log);
	cr_assert_eq(put_file(&e, "/xtra/eye.npy", file, n, true), 0, "%s", last_log);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "xtra/eye")->type, MPFS_MAP);
	const struct mpfs_val *l = arc_must(&a, "weights/eye");
	cr_assert_eq(l->type, MPFS_ARRAY);
	cr_assert_eq(l->len, 2);
	cr_assert_eq(l->items[1].type, MPFS_ARRAY);
	struct mpfs_val x;
	mpfs_scalar_at(a.buf, l->items[1].off + l->items[1].hdr, &x); /* row 1, col 0 */
	cr_assert_eq(x.type, MPFS_FLOAT);
	cr_assert_eq(x.f, 0.0);
	arc_free(&a);
	char enc[16];
	cr_assert_eq(
		mpfs_fs_getxattr(e.fs, "/weights/eye.npy", "user.mpfs.encoding", enc, sizeof(enc)),
		6);
	cr_assert(memcmp(enc, "nested", 6) == 0);
	free(file);
	env_close(&e);
}

/* In an archive with compact arrays, a new array is a compact map. */
Test(fs_new, new_npy_is_a_compact_array)
{
	struct env e;
	struct arc a;
	double v[4] = {1, 0, 0, 1};
	struct mpfs_array na = f8_array(2, 2, 2), got;
	struct mpfs_error err;
	size_t n;
	uint8_t *file = npy_file(&na, v, &n);

	env_open(&e, "logreg_compact.mpk");
	cr_assert_eq(put_file(&e, "/xtra/eye.npy", file, n, true), 0, "%s", last_log);
	arc_load(&a, e.archive);
	const struct mpfs_val *m = arc_must(&a, "xtra/eye");
	cr_assert_eq(m->type, MPFS_MAP);
	static const char *const keys[] = {"nd", "type", "kind", "shape", "data"};
	cr_assert_eq(m->len, 5);
	/* the archive's compact arrays have bin keys, as msgpack-numpy writes
	 * them (its decode finds no other): so does the new one */
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(m->items[2 * i].type, MPFS_BIN);
		cr_assert(mpfs_val_is(&a.doc, &m->items[2 * i], keys[i]));
	}
	cr_assert_eq(mpfs_array_compact(&a.doc, m, &got, &err), MPFS_OK, "%s", err.msg);
	cr_assert(memcmp(a.buf + got.data_off, v, sizeof(v)) == 0);
	arc_free(&a);
	char shape[32];
	cr_assert_eq(
		mpfs_fs_getxattr(e.fs, "/xtra/eye.npy", "user.mpfs.shape", shape, sizeof(shape)),
		3);
	cr_assert(memcmp(shape, "2,2", 3) == 0);
	/* a broken one is refused and stays listed, empty */
	file[0] = 0;
	cr_assert_eq(put_file(&e, "/xtra/bad.npy", file, n, true), -EINVAL);
	cr_assert_eq(listed(&e, "/xtra", "bad.npy"), 1);
	struct stat st;
	cr_assert_eq(getattr(&e, "/xtra/bad.npy", &st), 0);
	cr_assert_eq(st.st_size, 0);
	free(file);
	env_close(&e);
}

/* ---- scratch files
 * -------------------------------------------------------------------------------- */

Test(fs_scratch, names)
{
	static const struct {
		const char *name;
		bool scratch;
	} cases[] = {
		{".x", true},	       {"x~", true},	     {"#x#", true},
		{"a.swp", true},       {"a.swx", true},	     {"a.swpx", true},
		{"a.tmp", true},       {"4913", true},	     {"sedAb12Z9", true},
		{"sed123456", true},   {"sedabcdef", true},  {".", true},
		{"~", true},	       {".vimrc", true},     {"x.swp~", true},
		{"#", false},	       {"##", false},	     {"#x", false},
		{"x#", false},	       {"sedAb12", false},   {"sed-1234x", false},
		{"sedAb12Z9x", false}, {"sedAb_12Z", false}, {"xsedAb12Z", false},
		{"normal", false},     {"", false},	     {"49130", false},
		{"4913.5", false},     {".swp", true},	     {"swp", false},
		{"a.SWP", false},      {"a.swpy", false},    {"a.tmpx", false},
		{"tmp", false},	       {"C", false},	     {"0.npy", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(mpfs_fs_is_scratch(cases[i].name), cases[i].scratch, "'%s': %s",
			     cases[i].name, cases[i].scratch ? "scratch" : "not scratch");
}

/* Scratch files live in memory: listed once, readable, never in the
 * archive. */
Test(fs_scratch, never_reach_the_archive)
{
	static const char *const names[] = {".C.swp", "C~",    "#C#",	  "4913",     "sedAb12Z9",
					    "x.tmp",  "C.swx", ".C.swpx", ".C.XyZ123"};
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/params/%s", names[i]);
		cr_assert_eq(echo_to(&e, path, "1\n", true), 0, "%s", path);
		/* reopened and written again */
		uint64_t fh = fs_open(&e, path, O_RDWR, false);
		fs_puts(&e, fh, "2", 0);
		cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
		fs_release(&e, fh);
		struct stat st;
		cr_assert_eq(getattr(&e, path, &st), 0, "%s", path);
		cr_assert(S_ISREG(st.st_mode));
		cr_assert_eq(st.st_size, 2);
		expect_cat(&e, path, "2\n");
		cr_assert_eq(listed(&e, "/params", names[i]), 1, "%s", names[i]);
	}
	arc_unchanged(&a, e.archive, "scratch files");
	cr_assert_eq(stray_files(&e), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/params/%s", names[i]);
		cr_assert_eq(mpfs_fs_unlink(e.fs, path), 0, "%s", path);
		cr_assert_eq(getattr(&e, path, NULL), -ENOENT);
		cr_assert_eq(listed(&e, "/params", names[i]), 0);
	}
	arc_unchanged(&a, e.archive, "scratch files removed");
	/* "sed" and seven: a real name */
	cr_assert_eq(echo_to(&e, "/params/sedAb12", "1\n", true), 0);
	arc_free(&a);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params/sedAb12")->u, 1);
	arc_free(&a);
	env_close(&e);
}

/* sed -i: a scratch file renamed over the real one commits its content in
 * place; onto a new name it adds a key. */
Test(fs_scratch, rename_onto_a_real_name_commits)
{
	struct env e;
	struct arc a, b;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	int idx = arc_index(&a, "params", "C");
	cr_assert_eq(echo_to(&e, "/params/sedAb12Z9", "0.75\n", true), 0);
	arc_unchanged(&a, e.archive, "before the rename");
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/sedAb12Z9", "/params/C", false), 0, "%s",
		     last_log);
	arc_load(&b, e.archive);
	cr_assert_eq(arc_must(&b, "params/C")->f, 0.75);
	cr_assert_eq(arc_index(&b, "params", "C"), idx, "position kept");
	cr_assert_eq(arc_must(&b, "params")->len, arc_must(&a, "params")->len);
	arc_free(&b);
	cr_assert_eq(listed(&e, "/params", "sedAb12Z9"), 0);
	cr_assert_eq(getattr(&e, "/params/sedAb12Z9", NULL), -ENOENT);
	cr_assert_eq(listed(&e, "/params", "C"), 1);
	expect_cat(&e, "/params/C", "0.75\n");

	/* rsync's temporary onto a new name */
	cr_assert_eq(echo_to(&e, "/xtra/.extra.Ab12Cd", "\"x\"", true), 0);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/xtra/.extra.Ab12Cd", "/xtra/extra", false), 0);
	arc_load(&b, e.archive);
	cr_assert(mpfs_val_is(&b.doc, arc_must(&b, "xtra/extra"), "x"));
	cr_assert_eq(arc_index(&b, "xtra", "extra"), (int)arc_must(&b, "xtra")->len - 1);
	arc_free(&b);
	arc_free(&a);

	/* refused content: EINVAL, nothing changes, the scratch file stays */
	arc_load(&a, e.archive);
	cr_assert_eq(echo_to(&e, "/params/sed000000", "maybe\n", true), 0);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/sed000000", "/params/dual", false), -EINVAL);
	arc_unchanged(&a, e.archive, "refused rename");
	cr_assert_eq(listed(&e, "/params", "sed000000"), 1);
	/* an empty one too */
	uint64_t fh = fs_open(&e, "/params/.empty.swp", O_WRONLY | O_CREAT, true);
	fs_release(&e, fh);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/.empty.swp", "/params/C", false), -EINVAL);
	arc_unchanged(&a, e.archive, "empty rename");
	expect_cat(&e, "/params/C", "0.75\n");
	/* scratch to scratch just moves */
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/sed000000", "/params/x~", false), 0);
	cr_assert_eq(listed(&e, "/params", "x~"), 1);
	cr_assert_eq(listed(&e, "/params", "sed000000"), 0);
	expect_cat(&e, "/params/x~", "maybe\n");
	arc_unchanged(&a, e.archive, "scratch to scratch");
	arc_free(&a);
	env_close(&e);
}

/* Backup-rename (vim backupcopy=no, Emacs): the file goes to a scratch
 * name and its entry is hidden, not deleted; a new file of the old name
 * replaces the value in place. */
Test(fs_scratch, backup_rename_replaces_in_place)
{
	struct env e;
	struct arc a, b;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	int idx = arc_index(&a, "params", "max_iter");
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/max_iter", "/params/max_iter~", false), 0);
	arc_unchanged(&a, e.archive, "hidden, not yet deleted");
	cr_assert_eq(getattr(&e, "/params/max_iter", NULL), -ENOENT);
	cr_assert_eq(listed(&e, "/params", "max_iter"), 0);
	cr_assert_eq(listed(&e, "/params", "max_iter~"), 1);
	expect_cat(&e, "/params/max_iter~", "100\n");
	uint64_t fh;
	cr_assert_eq(mpfs_fs_open_file(e.fs, "/params/max_iter", O_RDONLY, false, &fh), -ENOENT);
	/* the new file of the old name */
	cr_assert_eq(echo_to(&e, "/params/max_iter", "7\n", true), 0);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/params/max_iter~"), 0);
	arc_load(&b, e.archive);
	cr_assert_eq(arc_index(&b, "params", "max_iter"), idx, "position kept");
	cr_assert_eq(arc_must(&b, "params/max_iter")->u, 7);
	cr_assert_eq(arc_must(&b, "params")->len, arc_must(&a, "params")->len);
	arc_free(&b);
	cr_assert_eq(listed(&e, "/params", "max_iter"), 1);
	cr_assert_eq(listed(&e, "/params", "max_iter~"), 0);
	arc_free(&a);

	/* renamed back: nothing changes at all */
	arc_load(&a, e.archive);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/C", "/params/C~", false), 0);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/C~", "/params/C", false), 0);
	arc_unchanged(&a, e.archive, "C moved away and back");
	expect_cat(&e, "/params/C", "0.5\n");
	cr_assert_eq(listed(&e, "/params", "C~"), 0);

	/* rewriting the same value writes nothing either */
	cr_assert_eq(echo_to(&e, "/params/C", "0.5\n", false), 0);
	arc_unchanged(&a, e.archive, "same value");
	arc_free(&a);

	/* a directory cannot go to memory */
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/class_weight", "/params/.cw", false), -EXDEV);
	env_close(&e);
}

/* A hidden entry that nothing replaced goes with the next commit, or when
 * the mount ends. */
Test(fs_scratch, hidden_entries_go_later)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/tol", "/params/tol~", false), 0);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/xtra/n_features_in_", "/xtra/.n.swp", false), 0);
	arc_load(&a, e.archive);
	cr_assert_not_null(arc_get(&a, "params/tol"));
	arc_free(&a);
	cr_assert_eq(echo_to(&e, "/params/max_iter", "5\n", false), 0);
	arc_load(&a, e.archive);
	cr_assert_null(arc_get(&a, "params/tol"), "a hidden entry outlived a commit");
	cr_assert_null(arc_get(&a, "xtra/n_features_in_"));
	cr_assert_eq(arc_must(&a, "params/max_iter")->u, 5);
	arc_free(&a);
	expect_cat(&e, "/params/tol~", "0.0001\n");

	/* at the end of the mount */
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/C", "/params/#C#", false), 0);
	mpfs_fs_finish(e.fs);
	arc_load(&a, e.archive);
	cr_assert_null(arc_get(&a, "params/C"));
	arc_free(&a);
	env_close(&e);
}

/* A hidden entry inside a directory that is then moved to another map
 * comes back there: the move inserts the map's old bytes, so the delete of
 * the hidden entry does not reach them. */
Test(fs_scratch, hidden_entry_stays_gone_when_its_directory_moves)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(
		mpfs_fs_rename(e.fs, "/params/class_weight/0", "/params/class_weight/0~", false),
		0);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/class_weight", "/xtra/cw", false), 0);
	cr_assert_eq(getattr(&e, "/xtra/cw/0", NULL), -ENOENT, "the moved-away file is back");
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "xtra/cw")->len, 1);
	arc_free(&a);
	env_close(&e);
}

/* A scratch file inside a directory that is renamed should move with it
 * (vim's .NAME.swp beside a file in a directory that `mv` renames). It
 * stays under the old path instead: the new directory does not list it,
 * and it is still found under a directory that no longer exists. */
Test(fs_scratch, follows_its_directory_when_renamed)
{
	struct env e;
	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(echo_to(&e, "/params/class_weight/.0.swp", "x", true), 0);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/class_weight", "/params/cw", false), 0);
	cr_assert_eq(getattr(&e, "/params/cw/.0.swp", NULL), 0, "not under the new name");
	cr_assert_eq(listed(&e, "/params/cw", ".0.swp"), 1);
	cr_assert_eq(getattr(&e, "/params/class_weight/.0.swp", NULL), -ENOENT,
		     "still under the old name");
	env_close(&e);
}

/* ---- renaming, removing, directories ------------------------------------------------------------
 */

Test(fs_names, rename_within_a_directory_keeps_the_position)
{
	struct env e;
	struct arc a, b;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	int idx = arc_index(&a, "params", "C");
	const struct mpfs_val *c = arc_must(&a, "params/C");
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/C", "/params/Cee", false), 0);
	arc_load(&b, e.archive);
	cr_assert_eq(arc_index(&b, "params", "Cee"), idx);
	cr_assert_eq(arc_index(&b, "params", "C"), -1);
	const struct mpfs_val *d = arc_must(&b, "params/Cee");
	cr_assert(c->end - c->off == d->end - d->off &&
		  !memcmp(a.buf + c->off, b.buf + d->off, c->end - c->off));
	cr_assert_eq(b.n, a.n + 2);
	arc_free(&b);
	cr_assert_eq(getattr(&e, "/params/C", NULL), -ENOENT);
	expect_cat(&e, "/params/Cee", "0.5\n");

	/* an integer key stays an integer */
	cr_assert_eq(
		mpfs_fs_rename(e.fs, "/params/class_weight/0", "/params/class_weight/7", false), 0);
	arc_load(&b, e.archive);
	const struct mpfs_val *cw = arc_must(&b, "params/class_weight");
	cr_assert_eq(cw->items[0].type, MPFS_UINT);
	cr_assert_eq(cw->items[0].u, 7);
	arc_free(&b);

	/* a directory */
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/class_weight", "/params/cw", false), 0);
	arc_load(&b, e.archive);
	cr_assert_eq(arc_index(&b, "params", "cw"), arc_index(&a, "params", "class_weight"));
	arc_free(&b);
	expect_cat(&e, "/params/cw/7", "1.0\n");

	/* onto itself: nothing to do */
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/tol", "/params/tol", false), 0);
	arc_free(&a);
	env_close(&e);
}

Test(fs_names, rename_over_an_existing_entry)
{
	struct env e;
	struct arc a, b;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/C", "/params/tol", true), -EEXIST);
	arc_unchanged(&a, e.archive, "noreplace");
	int idx = arc_index(&a, "params", "tol");
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/C", "/params/tol", false), 0);
	arc_load(&b, e.archive);
	cr_assert_eq(arc_index(&b, "params", "C"), -1);
	/* C came before tol: tol moves up one */
	cr_assert_lt(arc_index(&a, "params", "C"), idx);
	cr_assert_eq(arc_index(&b, "params", "tol"), idx - 1);
	cr_assert_eq(arc_must(&b, "params/tol")->f, 0.5);
	cr_assert_eq(arc_must(&b, "params")->len, arc_must(&a, "params")->len - 1);
	arc_free(&b);
	/* file over directory and back */
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/tol", "/params/class_weight", false), -EISDIR);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/class_weight", "/params/tol", false), -ENOTDIR);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/nothing", "/params/x", false), -ENOENT);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/tol", "/nodir/x", false), -ENOENT);
	arc_free(&a);
	env_close(&e);
}

Test(fs_names, rename_across_directories)
{
	struct env e;
	struct arc a, b;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/tol", "/xtra/tol", false), 0);
	arc_load(&b, e.archive);
	cr_assert_eq(arc_index(&b, "params", "tol"), -1);
	cr_assert_eq(arc_index(&b, "xtra", "tol"), (int)arc_must(&b, "xtra")->len - 1);
	cr_assert_eq(arc_must(&b, "xtra/tol")->f, 0.0001);
	cr_assert_eq(b.n, a.n);
	arc_free(&b);
	expect_cat(&e, "/xtra/tol", "0.0001\n");
	cr_assert_eq(getattr(&e, "/params/tol", NULL), -ENOENT);

	/* a directory, and into a directory made here */
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/xtra/sub"), 0);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/class_weight", "/xtra/sub/cw", false), 0);
	arc_load(&b, e.archive);
	cr_assert_null(arc_get(&b, "params/class_weight"));
	cr_assert_eq(arc_must(&b, "xtra/sub/cw")->len, 2);
	arc_free(&b);
	expect_cat(&e, "/xtra/sub/cw/1", "2.5\n");
	/* a nested array moved out of weights is a plain list there (xtra's
	 * types do not name it): its key loses the suffix, it shows as text */
	cr_assert_eq(mpfs_fs_rename(e.fs, "/weights/coef_.npy", "/xtra/coef_.npy", false), 0);
	arc_load(&b, e.archive);
	cr_assert_not_null(arc_get(&b, "xtra/coef_"));
	cr_assert_null(arc_get(&b, "weights/coef_"));
	arc_free(&b);
	struct stat st;
	cr_assert_eq(getattr(&e, "/xtra/coef_", &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	arc_free(&a);
	env_close(&e);

	/* a compact array is an array anywhere: it keeps its encoding */
	env_open(&e, "logreg_compact.mpk");
	arc_load(&a, e.archive);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/weights/coef_.npy", "/xtra/coef_.npy", false), 0);
	char enc[16] = {0};
	cr_assert_eq(mpfs_fs_getxattr(e.fs, "/xtra/coef_.npy", "user.mpfs.encoding", enc, 15), 7);
	cr_assert_str_eq(enc, "compact");
	arc_load(&b, e.archive);
	const struct mpfs_val *o = arc_must(&a, "weights/coef_"), *c = arc_must(&b, "xtra/coef_");
	cr_assert(o->end - o->off == c->end - c->off &&
			  !memcmp(a.buf + o->off, b.buf + c->off, o->end - o->off),
		  "moved byte for byte");
	arc_free(&b);
	arc_free(&a);
	env_close(&e);
}

Test(fs_names, unlink)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/params/C"), 0);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_index(&a, "params", "C"), -1);
	arc_free(&a);
	cr_assert_eq(getattr(&e, "/params/C", NULL), -ENOENT);
	cr_assert_eq(listed(&e, "/params", "C"), 0);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/params/C"), -ENOENT);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/params"), -EISDIR);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/weights/coef_.npy"), 0);
	arc_load(&a, e.archive);
	cr_assert_null(arc_get(&a, "weights/coef_"));
	arc_free(&a);
	/* a file open for writing, then removed: its later flush commits nothing */
	uint64_t fh = fs_open(&e, "/params/tol", O_WRONLY | O_TRUNC, false);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/params/tol"), 0);
	fs_puts(&e, fh, "1\n", 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_release(&e, fh);
	arc_load(&a, e.archive);
	cr_assert_null(arc_get(&a, "params/tol"));
	arc_free(&a);
	env_close(&e);
}

/* In a list directory an element can go (later ones move down). */
Test(fs_names, unlink_in_a_list_directory)
{
	struct env e;
	struct arc a;
	char shape[32] = {0};

	env_open(&e, "mlp_seed.mpk");
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/weights/coefs_/1.npy"), 0);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "weights/coefs_")->len, 2);
	arc_free(&a);
	cr_assert_gt(mpfs_fs_getxattr(e.fs, "/weights/coefs_/1.npy", "user.mpfs.shape", shape, 31),
		     0);
	cr_assert_str_eq(shape, "8,3");
	cr_assert_eq(getattr(&e, "/weights/coefs_/2.npy", NULL), -ENOENT);
	env_close(&e);
}

Test(fs_names, mkdir_and_rmdir)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/params/newdir"), 0);
	arc_load(&a, e.archive);
	const struct mpfs_val *d = arc_must(&a, "params/newdir");
	cr_assert_eq(d->type, MPFS_MAP);
	cr_assert_eq(d->len, 0);
	cr_assert_eq(arc_index(&a, "params", "newdir"), (int)arc_must(&a, "params")->len - 1);
	arc_free(&a);
	struct stat st;
	cr_assert_eq(getattr(&e, "/params/newdir", &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(listed(&e, "/params", "newdir"), 1);
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/params/newdir"), -EEXIST);
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/params/C"), -EEXIST);
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/nodir/x"), -ENOENT);
	/* the scratch rule is for files only */
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/params/.d"), 0);
	arc_load(&a, e.archive);
	cr_assert_not_null(arc_get(&a, "params/.d"));
	arc_free(&a);
	/* a file in the new directory */
	cr_assert_eq(echo_to(&e, "/params/newdir/k", "1", true), 0);
	cr_assert_eq(mpfs_fs_rmdir(e.fs, "/params/newdir"), -ENOTEMPTY);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/params/newdir/k"), 0);
	/* a pending file (created, no content yet) also keeps it non-empty */
	uint64_t fh = fs_open(&e, "/params/newdir/pending", O_WRONLY | O_CREAT, true);
	fs_release(&e, fh);
	cr_assert_eq(mpfs_fs_rmdir(e.fs, "/params/newdir"), -ENOTEMPTY);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/params/newdir/pending"), 0);
	cr_assert_eq(mpfs_fs_rmdir(e.fs, "/params/newdir"), 0);
	arc_load(&a, e.archive);
	cr_assert_null(arc_get(&a, "params/newdir"));
	arc_free(&a);
	cr_assert_eq(getattr(&e, "/params/newdir", NULL), -ENOENT);
	cr_assert_eq(mpfs_fs_rmdir(e.fs, "/params/class_weight"), -ENOTEMPTY);
	cr_assert_eq(mpfs_fs_rmdir(e.fs, "/params/C"), -ENOTDIR);
	cr_assert_eq(mpfs_fs_rmdir(e.fs, "/params/newdir"), -ENOENT);
	env_close(&e);
}

/* List and csr_matrix directories have fixed members. */
Test(fs_names, eperm_in_list_and_csr_directories)
{
	struct env e;
	struct arc a;

	env_open(&e, "mlp_seed.mpk");
	arc_load(&a, e.archive);
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/weights/coefs_/x"), -EPERM);
	uint64_t fh;
	cr_assert_eq(mpfs_fs_open_file(e.fs, "/weights/coefs_/x", O_WRONLY | O_CREAT, true, &fh),
		     -EPERM); /* refused at creation */
	/* scratch files may live anywhere */
	cr_assert_eq(echo_to(&e, "/weights/coefs_/.x.swp", "junk", true), 0);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/weights/coefs_/0.npy", "/weights/coefs_/5.npy", false),
		     -EPERM);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/weights/coefs_/0.npy", "/weights/w0.npy", false),
		     -EPERM);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/xtra/classes_.npy", "/weights/coefs_/3.npy", false),
		     -EPERM);
	arc_unchanged(&a, e.archive, "list directory");
	cr_assert_eq(listed(&e, "/weights/coefs_", "x"), 0);
	cr_assert_eq(listed(&e, "/weights/coefs_", ".x.swp"), 1);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/weights/coefs_/.x.swp"), 0);
	arc_free(&a);
	env_close(&e);

	env_open(&e, "tfidf_seed.mpk");
	arc_load(&a, e.archive);
	const char *csr = "/transformer/xtra/_idf_diag";
	char path[128];
	snprintf(path, sizeof(path), "%s/data.npy", csr);
	cr_assert_eq(mpfs_fs_unlink(e.fs, path), -EPERM);
	/* nor moved away to a scratch name (a delete put off) */
	char scratch[128];
	snprintf(scratch, sizeof(scratch), "%s/data.npy~", csr);
	cr_assert_eq(mpfs_fs_rename(e.fs, path, scratch, false), -EPERM);
	snprintf(path, sizeof(path), "%s/x", csr);
	cr_assert_eq(mpfs_fs_mkdir(e.fs, path), -EPERM);
	cr_assert_eq(mpfs_fs_open_file(e.fs, path, O_WRONLY | O_CREAT, true, &fh), -EPERM);
	char from[128];
	snprintf(from, sizeof(from), "%s/shape", csr);
	snprintf(path, sizeof(path), "%s/shape2", csr);
	cr_assert_eq(mpfs_fs_rename(e.fs, from, path, false), -EPERM);
	snprintf(path, sizeof(path), "%s/norm", csr);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/norm", path, false), -EPERM);
	arc_unchanged(&a, e.archive, "csr directory");
	/* members are edited in place: the same data written back */
	snprintf(path, sizeof(path), "%s/data.npy", csr);
	size_t n;
	char *data = fs_cat(&e, path, &n);
	cr_assert_eq(put_file(&e, path, data, n, false), 0, "%s", last_log);
	free(data);
	arc_free(&a);
	env_close(&e);
}

/* ---- read-only
 * ------------------------------------------------------------------------------------ */

Test(fs_ro, every_change_is_erofs)
{
	struct env e;
	struct arc a;
	uint64_t fh;

	env_open_opts(&e, "logreg_seed.mpk", true, false, 0644);
	arc_load(&a, e.archive);
	cr_assert(mpfs_fs_readonly(e.fs));
	cr_assert_eq(mpfs_fs_open_file(e.fs, "/params/C", O_WRONLY, false, &fh), -EROFS);
	cr_assert_eq(mpfs_fs_open_file(e.fs, "/params/C", O_RDWR, false, &fh), -EROFS);
	cr_assert_eq(mpfs_fs_open_file(e.fs, "/params/C", O_RDONLY | O_TRUNC, false, &fh), -EROFS);
	cr_assert_eq(mpfs_fs_open_file(e.fs, "/params/new", O_WRONLY | O_CREAT, true, &fh), -EROFS);
	cr_assert_eq(mpfs_fs_open_file(e.fs, "/params/.x.swp", O_WRONLY | O_CREAT, true, &fh),
		     -EROFS);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/params/C", 0, 1), -EROFS);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/params/C"), -EROFS);
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/params/d"), -EROFS);
	cr_assert_eq(mpfs_fs_rmdir(e.fs, "/params/class_weight"), -EROFS);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/C", "/params/D", false), -EROFS);
	/* reading works, and nothing shows as writable */
	expect_cat(&e, "/params/C", "0.5\n");
	struct stat st;
	cr_assert_eq(getattr(&e, "/params/C", &st), 0);
	cr_assert_eq(st.st_mode & 0222, 0, "mode %o", st.st_mode);
	cr_assert_eq(getattr(&e, "/params", &st), 0);
	cr_assert_eq(st.st_mode & 0222, 0, "mode %o", st.st_mode);
	arc_unchanged(&a, e.archive, "read-only");
	arc_free(&a);
	env_close(&e);
}

/* ---- the archive changed behind our back
 * ------------------------------------------------------------ */

/* Replaces the archive with a modified copy, as another program would
 * (write a new file, rename it over). Returns the new bytes. */
static struct arc replace_behind(struct env *e)
{
	struct arc a;
	char *tmp;
	size_t n;
	uint8_t *p = tu_read_file(e->archive, &n);
	arc_load(&a, e->archive);
	const struct mpfs_val *m = arc_must(&a, "params/max_iter");
	cr_assert_eq(m->tag, 0x64);
	p[m->off] = 0x65; /* max_iter 101 */
	arc_free(&a);
	cr_assert(asprintf(&tmp, "%s/other", e->dir) > 0);
	tu_write_file(tmp, p, n);
	cr_assert_eq(rename(tmp, e->archive), 0);
	free(tmp);
	free(p);
	arc_load(&a, e->archive);
	return a;
}

Test(fs_stale, replaced_archive_is_not_overwritten)
{
	struct env e;

	env_open(&e, "logreg_seed.mpk");
	uint64_t fh = fs_open(&e, "/params/C", O_WRONLY | O_TRUNC, false);
	fs_puts(&e, fh, "0.25\n", 0);
	struct arc theirs = replace_behind(&e);

	cr_assert_eq(mpfs_fs_flush(e.fs, fh), -ESTALE);
	arc_unchanged(&theirs, e.archive, "their archive");
	cr_assert(strstr(last_log, "changed on disk"), "log: %s", last_log);
	/* the writer keeps what it wrote; everyone else reads the archive */
	char *s = fh_read(&e, fh, NULL);
	cr_assert_str_eq(s, "0.25\n", "reads '%s' after ESTALE", s);
	free(s);
	expect_cat(&e, "/params/C", "0.5\n");
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), -ESTALE, "a failed commit keeps failing");
	fs_release(&e, fh);
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/params/d"), -ESTALE);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/params/C"), -ESTALE);
	cr_assert_eq(mpfs_fs_rmdir(e.fs, "/params/class_weight"), -ENOTEMPTY);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/C", "/params/D", false), -ESTALE);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/params/tol", 0, 3), -ESTALE);
	cr_assert_eq(echo_to(&e, "/params/new", "1", true), -ESTALE);
	/* scratch files need no commit */
	cr_assert_eq(echo_to(&e, "/params/.x.swp", "1", true), 0);
	arc_unchanged(&theirs, e.archive, "their archive, after all that");
	cr_assert_eq(stray_files(&e), 0);
	arc_free(&theirs);
	env_close(&e);
}

Test(fs_stale, touched_archive_is_not_overwritten)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	cr_assert_eq(utimensat(AT_FDCWD, e.archive, ts, 0), 0);
	cr_assert_eq(echo_to(&e, "/params/C", "0.25\n", false), -ESTALE);
	cr_assert_eq(stat(e.archive, &a.st), 0);
	arc_unchanged(&a, e.archive, "touched archive");
	arc_free(&a);
	env_close(&e);
}

/* ---- leftovers of killed commits
 * ----------------------------------------------------------------------- */

static pid_t dead_pid(void)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(0);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void touch(const char *dir, const char *name)
{
	char *path;
	cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	tu_write_file(path, "x", 1);
	free(path);
}

static bool exists(const char *dir, const char *name)
{
	char *path;
	struct stat st;
	cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	bool r = stat(path, &st) == 0;
	free(path);
	return r;
}

Test(fs_cleanup, removes_leftovers_of_dead_pids_only)
{
	char *dir = tu_temp_dir(), *archive, dead[64], live[64], names[8][80];
	size_t n;
	uint8_t *p = tu_fixture("logreg_seed.mpk", &n);
	pid_t gone = dead_pid();

	cr_assert(asprintf(&archive, "%s/a.mpk", dir) > 0);
	tu_write_file(archive, p, n);
	free(p);
	snprintf(dead, sizeof(dead), ".a.mpk.mpfs-%ld-Ab12Cd", (long)gone);
	snprintf(live, sizeof(live), ".a.mpk.mpfs-%ld-Ab12Cd", (long)getpid());
	/* names that are not leftovers of this archive */
	snprintf(names[0], 80, ".a.mpk.mpfs-%ld-Ab12C", (long)gone);
	snprintf(names[1], 80, ".a.mpk.mpfs-%ld-Ab12Cde", (long)gone);
	snprintf(names[2], 80, ".b.mpk.mpfs-%ld-Ab12Cd", (long)gone);
	snprintf(names[3], 80, ".a.mpk.mpfs-%ldx-Ab12Cd", (long)gone);
	snprintf(names[4], 80, ".a.mpk.mpfs--%ld-Ab12Cd", (long)gone);
	snprintf(names[5], 80, ".a.mpk.mpfs-x-Ab12Cd");
	snprintf(names[6], 80, "a.mpk.mpfs-%ld-Ab12Cd", (long)gone);
	snprintf(names[7], 80, ".a.mpk.mpfs-1-Ab12Cd"); /* init: alive */
	touch(dir, dead);
	touch(dir, live);
	for (int i = 0; i < 8; i++)
		touch(dir, names[i]);

	log_reset();
	cr_assert_eq(mpfs_commit_cleanup(archive, test_log), 1);
	cr_assert_eq(nlogs, 1);
	cr_assert(strstr(last_log, dead), "log: %s", last_log);
	cr_assert_not(exists(dir, dead));
	cr_assert(exists(dir, live));
	for (int i = 0; i < 8; i++)
		cr_assert(exists(dir, names[i]), "%s was removed", names[i]);
	cr_assert(exists(dir, "a.mpk"));
	cr_assert_eq(mpfs_commit_cleanup(archive, test_log), 0);

	/* a writable mount cleans up as it opens; a read-only one does not */
	struct mpfs_fs *fs;
	struct mpfs_error err;
	struct mpfs_fs_opts ro = {.ro = true, .log = test_log}, rw = {.log = test_log};
	touch(dir, dead);
	cr_assert_eq(mpfs_fs_open(&fs, archive, &ro, &err), 0, "%s", err.msg);
	mpfs_fs_close(fs);
	cr_assert(exists(dir, dead));
	log_reset();
	cr_assert_eq(mpfs_fs_open(&fs, archive, &rw, &err), 0, "%s", err.msg);
	cr_assert_not(exists(dir, dead));
	cr_assert(exists(dir, live));
	cr_assert_eq(nlogs, 1);
	mpfs_fs_close(fs);
	free(archive);
	tu_rm_rf(dir);
	free(dir);
}

/* ---- listing
 * ---------------------------------------------------------------------------------------------- */

Test(fs_readdir, pending_files_are_listed_once)
{
	struct env e;
	struct stat st;

	env_open(&e, "logreg_seed.mpk");
	/* created, empty: pending */
	uint64_t fh = fs_open(&e, "/params/newf", O_WRONLY | O_CREAT, true);
	cr_assert_eq(listed(&e, "/params", "newf"), 1);
	cr_assert_eq(getattr(&e, "/params/newf", &st), 0);
	cr_assert_eq(st.st_size, 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_release(&e, fh);
	cr_assert_eq(listed(&e, "/params", "newf"), 1, "a new empty file stays");
	/* with content: committed, in the archive and still open */
	fh = fs_open(&e, "/params/newf", O_WRONLY, false);
	fs_puts(&e, fh, "1\n", 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	cr_assert_eq(listed(&e, "/params", "newf"), 1);
	fs_release(&e, fh);
	cr_assert_eq(listed(&e, "/params", "newf"), 1);
	expect_cat(&e, "/params/newf", "1\n");
	/* an archive file open with O_TRUNC */
	fh = fs_open(&e, "/params/C", O_WRONLY | O_TRUNC, false);
	cr_assert_eq(listed(&e, "/params", "C"), 1);
	fs_release(&e, fh);
	cr_assert_eq(listed(&e, "/params", "C"), 1);
	/* pending files of other directories are not listed here */
	fh = fs_open(&e, "/xtra/other", O_WRONLY | O_CREAT, true);
	fs_release(&e, fh);
	cr_assert_eq(listed(&e, "/params", "other"), 0);
	cr_assert_eq(listed(&e, "/xtra", "other"), 1);
	cr_assert_eq(listed(&e, "/", "other"), 0);
	/* readdir of a file, of nothing */
	cr_assert_eq(mpfs_fs_readdir(e.fs, "/params/C", fill, &(struct tb){0}), -ENOTDIR);
	cr_assert_eq(mpfs_fs_readdir(e.fs, "/nothing", fill, &(struct tb){0}), -ENOENT);
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

/* Reads [off, off+size) of fh through mpfs_fs_read_spans, as mount/ops.c
 * hands it to the kernel: the memory span, then the archive's descriptor. */
static long span_read(struct env *e, uint64_t fh, char *buf, size_t size, uint64_t off)
{
	char hdr[MPFS_SPAN_HDR_MAX];
	struct mpfs_span sp[2];
	size_t got = 0;
	int n = mpfs_fs_read_spans(e->fs, fh, size, off, hdr, sp);

	if (n < 0)
		return n;
	cr_assert_leq(n, 2);
	for (int i = 0; i < n; i++) {
		if (sp[i].mem) {
			cr_assert_eq(i, 0, "memory comes first");
			memcpy(buf + got, sp[i].mem, sp[i].len);
		} else {
			cr_assert_eq(pread(sp[i].fd, buf + got, sp[i].len, (off_t)sp[i].off),
				     (ssize_t)sp[i].len);
		}
		got += sp[i].len;
	}
	return (long)got;
}

Test(fs_spans, compact_arrays_are_served_from_the_archive_descriptor)
{
	struct env e;
	char a[4096], b[4096];
	struct stat st;

	env_open(&e, "logreg_compact.mpk");
	cr_assert_eq(mpfs_fs_getattr(e.fs, "/weights/coef_.npy", &st), 0);
	uint64_t fh = fs_open(&e, "/weights/coef_.npy", O_RDONLY, false);
	/* every way a read can fall: in the header, across it, in the data,
	 * across the end, past it */
	static const uint64_t offs[] = {0, 5, 100, 127, 128, 129, 1000};
	static const size_t sizes[] = {1, 10, 128, 200, 4096};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		for (size_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			long n = mpfs_fs_read(e.fs, fh, a, sizes[j], offs[i]);
			cr_assert_eq(span_read(&e, fh, b, sizes[j], offs[i]), n, "at %" PRIu64,
				     offs[i]);
			cr_assert_eq(memcmp(a, b, (size_t)n), 0, "at %" PRIu64, offs[i]);
		}
	cr_assert_eq(span_read(&e, fh, b, 10, (uint64_t)st.st_size), 0);
	/* A commit of another file: the descriptor handed out stays usable
	 * until release, and reads go on from the new archive. */
	char hdr[MPFS_SPAN_HDR_MAX];
	struct mpfs_span sp[2];
	int n = mpfs_fs_read_spans(e.fs, fh, 8, (uint64_t)st.st_size - 8, hdr, sp);
	cr_assert_eq(n, 1);
	int old_fd = sp[0].fd;
	uint64_t w = fs_open(&e, "/params/C", O_WRONLY | O_TRUNC, false);
	fs_write(&e, w, "7.5\n", 4, 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), 0, "%s", last_log);
	fs_release(&e, w);
	cr_assert_eq(fcntl(old_fd, F_GETFD) >= 0, true, "the old descriptor is still open");
	long got = mpfs_fs_read(e.fs, fh, a, sizeof(a), 0);
	cr_assert_eq(span_read(&e, fh, b, sizeof(b), 0), got);
	cr_assert_eq(memcmp(a, b, (size_t)got), 0);
	/* Cut short underneath: EIO, never a fault. */
	cr_assert_eq(truncate(e.archive, 100), 0);
	cr_assert_eq(mpfs_fs_read_spans(e.fs, fh, 10, 130, hdr, sp), -EIO);
	cr_assert_eq(mpfs_fs_read(e.fs, fh, a, 10, 130), -EIO);
	fs_release(&e, fh);
	env_close(&e);
}

Test(fs_spans, made_and_edited_content_is_copied)
{
	struct env e;
	char hdr[MPFS_SPAN_HDR_MAX];
	struct mpfs_span sp[2];

	env_open(&e, "logreg_seed.mpk"); /* nested lists: made, not served */
	uint64_t fh = fs_open(&e, "/weights/coef_.npy", O_RDONLY, false);
	cr_assert_eq(mpfs_fs_read_spans(e.fs, fh, 10, 130, hdr, sp), -EAGAIN);
	fs_release(&e, fh);
	fh = fs_open(&e, "/params/C", O_RDONLY, false); /* text */
	cr_assert_eq(mpfs_fs_read_spans(e.fs, fh, 10, 0, hdr, sp), -EAGAIN);
	fs_release(&e, fh);
	env_close(&e);

	env_open(&e, "logreg_compact.mpk");
	uint64_t w = fs_open(&e, "/weights/coef_.npy", O_RDWR, false);
	fh = fs_open(&e, "/weights/coef_.npy", O_RDONLY, false);
	cr_assert_geq(mpfs_fs_read_spans(e.fs, fh, 10, 130, hdr, sp), 1);
	double x = 42.0;
	fs_write(&e, w, &x, 8, 136);
	/* pending content: its writer and, once dirty, everyone read memory */
	cr_assert_eq(mpfs_fs_read_spans(e.fs, w, 10, 130, hdr, sp), -EAGAIN);
	cr_assert_eq(mpfs_fs_read_spans(e.fs, fh, 10, 130, hdr, sp), -EAGAIN);
	fs_release(&e, fh);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), 0, "%s", last_log);
	fs_release(&e, w);
	env_close(&e);
}

/* ---- read-only mounts: listing from a position, reading by path ------------------------ */

struct from_ctx {
	char names[64][256];
	struct stat st[64];
	uint64_t next[64];
	int n, stop_after;
};

static int fill_from(void *ctx, const char *name, const struct stat *st, uint64_t next)
{
	struct from_ctx *c = ctx;

	if (c->n == c->stop_after)
		return 1; /* the reply is full: this entry is given again later */
	cr_assert_lt(c->n, 64);
	snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
	c->st[c->n] = *st;
	c->next[c->n++] = next;
	return 0;
}

struct whole_ctx {
	char names[64][256];
	int n;
};

static int fill_whole(void *ctx, const char *name, bool dir)
{
	struct whole_ctx *c = ctx;

	(void)dir;
	cr_assert_lt(c->n, 64);
	snprintf(c->names[c->n++], sizeof(c->names[0]), "%s", name);
	return 0;
}

Test(fs_ro, readdir_from_resumes_at_each_position_with_getattr_attributes)
{
	static const char *const dirs[] = {"/", "/params", "/weights", "/weights/coefs_", "/xtra"};
	struct env e;

	env_open_opts(&e, "mlp_compact.mpk", true, false, 0644);
	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		struct whole_ctx w = {0};
		struct from_ctx all = {.stop_after = -1};
		char path[600];
		struct stat st;

		cr_assert_eq(mpfs_fs_readdir(e.fs, dirs[d], fill_whole, &w), 0);
		cr_assert_eq(mpfs_fs_readdir_from(e.fs, dirs[d], 0, fill_from, &all), 0);
		cr_assert_eq(all.n, w.n, "%s", dirs[d]);
		for (int i = 0; i < all.n; i++) {
			cr_assert_str_eq(all.names[i], w.names[i]);
			cr_assert_eq(all.next[i], (uint64_t)i + 1);
			snprintf(path, sizeof(path), "%s/%s", strcmp(dirs[d], "/") ? dirs[d] : "",
				 all.names[i]);
			cr_assert_eq(mpfs_fs_getattr(e.fs, path, &st), 0, "%s", path);
			cr_assert_eq(memcmp(&st, &all.st[i], sizeof(st)), 0, "%s: attributes",
				     path);
			cr_assert_eq(st.st_mode & 0222, 0, "%s: read-only", path);
		}
		/* In pieces of one or two entries, as READDIRs resume. */
		for (int piece = 1; piece <= 2; piece++) {
			uint64_t pos = 0;
			int got = 0;
			for (;;) {
				struct from_ctx c = {.stop_after = piece};
				cr_assert_eq(
					mpfs_fs_readdir_from(e.fs, dirs[d], pos, fill_from, &c), 0);
				if (c.n == 0)
					break;
				for (int i = 0; i < c.n; i++)
					cr_assert_str_eq(c.names[i], w.names[got + i]);
				got += c.n;
				pos = c.next[c.n - 1];
			}
			cr_assert_eq(got, w.n, "%s in pieces of %d", dirs[d], piece);
		}
		/* Past the end: nothing. */
		struct from_ctx past = {.stop_after = -1};
		cr_assert_eq(
			mpfs_fs_readdir_from(e.fs, dirs[d], (uint64_t)w.n + 5, fill_from, &past),
			0);
		cr_assert_eq(past.n, 0);
	}
	struct from_ctx c = {.stop_after = -1};
	cr_assert_eq(mpfs_fs_readdir_from(e.fs, "/params/alpha", 0, fill_from, &c), -ENOTDIR);
	cr_assert_eq(mpfs_fs_readdir_from(e.fs, "/nothing", 0, fill_from, &c), -ENOENT);
	env_close(&e);
}

/* Reads [off, off+size) of path through mpfs_fs_read_spans_path. */
static long span_read_path(struct env *e, const char *path, char *buf, size_t size, uint64_t off)
{
	char hdr[MPFS_SPAN_HDR_MAX];
	struct mpfs_span sp[2];
	size_t got = 0;
	int n = mpfs_fs_read_spans_path(e->fs, path, size, off, hdr, sp);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (sp[i].mem)
			memcpy(buf + got, sp[i].mem, sp[i].len);
		else
			cr_assert_eq(pread(sp[i].fd, buf + got, sp[i].len, (off_t)sp[i].off),
				     (ssize_t)sp[i].len);
		got += sp[i].len;
	}
	return (long)got;
}

Test(fs_ro, reads_by_path_match_reads_by_handle)
{
	static const char *const files[] = {"/weights/coefs_/0.npy", "/params/alpha", "/class_name",
					    "/params/hidden_layer_sizes"};
	static const uint64_t offs[] = {0, 1, 100, 127, 128, 129, 1000, 5000};
	static const size_t sizes[] = {1, 10, 128, 200, 4096, 8192};
	char a[8192], b[8192];
	struct env e;

	env_open_opts(&e, "mlp_compact.mpk", true, false, 0644);
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		uint64_t fh = fs_open(&e, files[f], O_RDONLY, false);
		for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
			for (size_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
				long n = mpfs_fs_read(e.fs, fh, a, sizes[j], offs[i]);
				cr_assert_geq(n, 0);
				cr_assert_eq(
					mpfs_fs_read_path(e.fs, files[f], b, sizes[j], offs[i]), n,
					"%s", files[f]);
				cr_assert_eq(memcmp(a, b, (size_t)n), 0);
				long s = span_read_path(&e, files[f], b, sizes[j], offs[i]);
				if (s == -EAGAIN)
					continue; /* made content: read_path serves it */
				cr_assert_eq(s, n, "%s spans", files[f]);
				cr_assert_eq(memcmp(a, b, (size_t)n), 0);
			}
		fs_release(&e, fh);
	}
	cr_assert_eq(mpfs_fs_read_path(e.fs, "/params", a, 10, 0), -EISDIR);
	cr_assert_eq(mpfs_fs_read_path(e.fs, "/nothing", a, 10, 0), -ENOENT);
	cr_assert_eq(mpfs_fs_read_pipe_path(e.fs, "/params/alpha", 10, 0, -1), -EAGAIN);
	/* Cut short underneath: EIO, never a fault. */
	cr_assert_eq(truncate(e.archive, 100), 0);
	cr_assert_eq(mpfs_fs_read_path(e.fs, "/weights/coefs_/0.npy", a, 10, 130), -EIO);
	env_close(&e);
}

Test(fs_ro, reads_by_path_refused_on_read_write_mounts)
{
	char hdr[MPFS_SPAN_HDR_MAX], buf[16];
	struct mpfs_span sp[2];
	struct env e;

	env_open(&e, "mlp_compact.mpk");
	cr_assert_eq(mpfs_fs_read_path(e.fs, "/params/alpha", buf, sizeof(buf), 0), -EBADF);
	cr_assert_eq(mpfs_fs_read_spans_path(e.fs, "/weights/coefs_/0.npy", 16, 0, hdr, sp),
		     -EBADF);
	cr_assert_eq(mpfs_fs_read_pipe_path(e.fs, "/weights/coefs_/0.npy", 16, 0, -1), -EBADF);
	env_close(&e);
}
