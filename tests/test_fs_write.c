/* fs/fs.c and fs/commit.c without FUSE: opening archives, writing, flushing
 * and releasing files as the kernel would, and new entries becoming new keys.
 * Every test works on a private copy of a fixture in a temporary directory,
 * and checks the archive file itself by decoding it again (mpfs_doc_init) or
 * with a fresh view. */
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

/* The codec's long-number over-read (test_encode_json.c,
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
