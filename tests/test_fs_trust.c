/* fs/ under the cases a skeptic tries (issue: every edit lands or fails
 * loudly): a reader beside a writer, names that look like scratch files,
 * descriptors across renames, failed commits, escaped names, the archive's
 * owner and attributes, hostile sizes, empty files at the last close. Each
 * test is the reproduction of a defect found in review, named after it. */
#include "fs_env.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/xattr.h>

/* ---- 1. a reader's close never commits a writer's buffer ---------------- */

Test(fs_trust, reader_close_does_not_commit_a_half_written_buffer)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(echo_to(&e, "/params/max_iter", "[5, 6, 7]\n", false), 0);
	arc_load(&a, e.archive);
	uint64_t w = fs_open(&e, "/params/max_iter", O_WRONLY | O_TRUNC, false);
	fs_puts(&e, w, "[1, 2,", 0);
	/* cat of the same file: open, read, flush, release */
	uint64_t r = fs_open(&e, "/params/max_iter", O_RDONLY, false);
	free(fh_read(&e, r, NULL));
	cr_assert_eq(mpfs_fs_flush(e.fs, r), 0, "a reader's flush reports nothing");
	fs_release(&e, r);
	arc_unchanged(&a, e.archive, "a reader closed");
	fs_puts(&e, w, " 3]\n", 6);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), 0);
	fs_release(&e, w);
	arc_free(&a);
	arc_load(&a, e.archive);
	const struct mpfs_val *v = arc_must(&a, "params/max_iter");
	cr_assert_eq(v->type, MPFS_ARRAY);
	expect_cat(&e, "/params/max_iter", "[1, 2, 3]\n");
	arc_free(&a);
	env_close(&e);
}

/* A refusal does not put the archive's value under the writer either. */
Test(fs_trust, refusal_keeps_the_writers_content)
{
	struct env e;

	env_open(&e, "logreg_seed.mpk");
	uint64_t w = fs_open(&e, "/params/max_iter", O_WRONLY | O_TRUNC, false);
	fs_puts(&e, w, "[1, 2,", 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), -EINVAL);
	fs_puts(&e, w, " 3]\n", 6);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), 0);
	fs_release(&e, w);
	expect_cat(&e, "/params/max_iter", "[1, 2, 3]\n");
	env_close(&e);
}

/* ---- 2. existing keys with scratch-looking names are values -------------- */

Test(fs_trust, existing_keys_that_look_like_scratch_names_commit)
{
	static const char *const names[] = {"sedentary", ".hidden", "notes.tmp", "x~",
					    "4913",	 "#a#",	    "b.swp"};
	const size_t n = sizeof(names) / sizeof(names[0]);
	struct tb b = {0};
	struct env e;
	struct arc a;
	char path[64];

	tb_map(&b, 1);
	tb_str(&b, "params");
	tb_map(&b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		tb_str(&b, names[i]);
		tb_uint(&b, 1);
	}
	env_open_bytes(&e, b.p, b.len);
	tb_free(&b);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/params/%s", names[i]);
		cr_assert_eq(echo_to(&e, path, "7\n", false), 0, "%s", path);
	}
	arc_load(&a, e.archive);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "params/%s", names[i]);
		cr_assert_eq(arc_must(&a, path)->u, 7, "%s was not committed", path);
	}
	arc_free(&a);
	/* and a rename onto one of them replaces it, like any value */
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/sedentary", "/params/x~", false), 0);
	arc_load(&a, e.archive);
	cr_assert_null(arc_get(&a, "params/sedentary"));
	cr_assert_eq(arc_must(&a, "params/x~")->u, 7);
	arc_free(&a);
	env_close(&e);
}

/* ---- 3. descriptors follow their file ---------------------------------- */

Test(fs_trust, writes_through_a_descriptor_opened_before_a_rename_land)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	uint64_t w = fs_open(&e, "/params/max_iter", O_WRONLY | O_TRUNC, false);
	fs_puts(&e, w, "7\n", 0);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/max_iter", "/params/beta", false), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), 0);
	fs_release(&e, w);
	arc_load(&a, e.archive);
	cr_assert_null(arc_get(&a, "params/max_iter"));
	cr_assert_eq(arc_must(&a, "params/beta")->u, 7);
	arc_free(&a);
	expect_cat(&e, "/params/beta", "7\n");
	env_close(&e);
}

Test(fs_trust, read_descriptors_follow_renames)
{
	struct env e;
	char buf[64];

	env_open(&e, "logreg_seed.mpk");
	uint64_t c = fs_open(&e, "/params/C", O_RDONLY, false);
	uint64_t t = fs_open(&e, "/params/tol", O_RDONLY, false);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/C", "/params/C2", false), 0);
	long n = mpfs_fs_read(e.fs, c, buf, sizeof(buf), 0);
	cr_assert_eq(n, 4, "pread after a->a2: %ld", n);
	cr_assert_eq(memcmp(buf, "0.5\n", 4), 0);
	/* b -> a: the old descriptor of a still reads a's content (a is gone) */
	uint64_t c2 = fs_open(&e, "/params/C2", O_RDONLY, false);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/tol", "/params/C2", false), 0);
	n = mpfs_fs_read(e.fs, c2, buf, sizeof(buf), 0);
	cr_assert_eq(n, 4, "the replaced file's descriptor: %ld", n);
	cr_assert_eq(memcmp(buf, "0.5\n", 4), 0);
	n = mpfs_fs_read(e.fs, t, buf, sizeof(buf), 0);
	cr_assert_eq(n, 7);
	cr_assert_eq(memcmp(buf, "0.0001\n", 7), 0, "tol's descriptor reads tol");
	fs_release(&e, c);
	fs_release(&e, c2);
	fs_release(&e, t);
	expect_cat(&e, "/params/C2", "0.0001\n");
	env_close(&e);
}

Test(fs_trust, an_unlinked_open_file_stays_readable)
{
	struct env e;
	char buf[16];

	env_open(&e, "logreg_seed.mpk");
	uint64_t r = fs_open(&e, "/params/C", O_RDONLY, false);
	cr_assert_eq(mpfs_fs_unlink(e.fs, "/params/C"), 0);
	cr_assert_eq(getattr(&e, "/params/C", NULL), -ENOENT);
	cr_assert_eq(mpfs_fs_read(e.fs, r, buf, sizeof(buf), 0), 4);
	fs_release(&e, r);
	env_close(&e);
}

/* ---- 4. a failed commit is not forgotten ------------------------------- */

Test(fs_trust, failed_commit_keeps_failing_with_the_real_errno)
{
	struct env e;
	struct arc a;
	struct rlimit lim;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
	struct rlimit small = {.rlim_cur = 64, .rlim_max = lim.rlim_max};
	uint64_t w = fs_open(&e, "/params/max_iter", O_WRONLY | O_TRUNC, false);
	fs_puts(&e, w, "7\n", 0);
	/* files cannot grow past 64 bytes: the temporary archive cannot be
	 * written (EFBIG is the errno the kernel gives) */
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), -EFBIG, "the real errno");
	cr_assert_eq(mpfs_fs_flush(e.fs, w), -EFBIG, "still failing");
	arc_unchanged(&a, e.archive, "failed commit");
	cr_assert_eq(stray_files(&e), 0, "no temporary file left");
	/* others read the archive; the writer its content */
	expect_cat(&e, "/params/max_iter", "100\n");
	char *s = fh_read(&e, w, NULL);
	cr_assert_str_eq(s, "7\n");
	free(s);
	/* space again: the next fsync commits the edit */
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	cr_assert_eq(mpfs_fs_flush(e.fs, w), 0);
	fs_release(&e, w);
	arc_free(&a);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params/max_iter")->u, 7);
	arc_free(&a);
	env_close(&e);
}

/* ---- 5. escaped names of existing keys are those keys ------------------- */

Test(fs_trust, escaped_name_of_an_existing_key_is_that_key)
{
	struct env e;
	struct arc a;
	uint64_t fh;

	env_open(&e, "logreg_seed.mpk");
	arc_load(&a, e.archive);
	uint32_t before = arc_must(&a, "params")->len;
	arc_free(&a);
	cr_assert_eq(echo_to(&e, "/params/%C", "5\n", true), 0);
	cr_assert_eq(mpfs_fs_open_file(e.fs, "/params/%C", O_WRONLY | O_CREAT | O_EXCL, true, &fh),
		     -EEXIST);
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/params/%C"), -EEXIST);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params")->len, before, "no second key C");
	cr_assert_eq(arc_must(&a, "params/C")->f, 5.0);
	arc_free(&a);
	/* a rename onto the escaped name replaces C */
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/tol", "/params/%C", false), 0);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params")->len, before - 1);
	cr_assert_eq(arc_must(&a, "params/C")->f, 0.0001);
	arc_free(&a);
	cr_assert_eq(listed(&e, "/params", "C"), 1);
	cr_assert_eq(listed(&e, "/params", "%C"), 0);
	env_close(&e);
}

/* ---- 6. the archive keeps its owner, mode and attributes ---------------- */

Test(fs_trust, commit_keeps_owner_group_mode_and_xattrs)
{
	struct env e;
	struct stat st;
	char val[16];

	env_open(&e, "logreg_seed.mpk");
	if (getuid() != 0 || setxattr(e.archive, "user.origin", "lab", 3, 0)) {
		env_close(&e);
		cr_skip_test("needs root and user xattrs on the temporary directory");
	}
	cr_assert_eq(chown(e.archive, 1000, 1000), 0);
	cr_assert_eq(chmod(e.archive, 0664), 0);
	/* the archive changed under the mount (by us): mount it again */
	mpfs_fs_close(e.fs);
	struct mpfs_fs_opts o = {.log = test_log};
	struct mpfs_error err;
	cr_assert_eq(mpfs_fs_open(&e.fs, e.archive, &o, &err), 0);
	cr_assert_eq(echo_to(&e, "/params/max_iter", "7\n", false), 0);
	cr_assert_eq(stat(e.archive, &st), 0);
	cr_assert_eq(st.st_uid, 1000);
	cr_assert_eq(st.st_gid, 1000);
	cr_assert_eq(st.st_mode & 07777, 0664);
	cr_assert_eq(getxattr(e.archive, "user.origin", val, sizeof(val)), 3);
	cr_assert_eq(memcmp(val, "lab", 3), 0);
	/* and the next commit is not taken for someone else's change */
	cr_assert_eq(echo_to(&e, "/params/max_iter", "8\n", false), 0);
	env_close(&e);
}

Test(fs_trust, long_archive_names_commit)
{
	struct env e;
	struct arc a;
	char *longer;
	char name[241];

	env_open(&e, "logreg_seed.mpk");
	mpfs_fs_close(e.fs);
	memset(name, 'm', 236);
	strcpy(name + 236, ".mpk");
	cr_assert(asprintf(&longer, "%s/%s", e.dir, name) > 0);
	cr_assert_eq(rename(e.archive, longer), 0);
	free(e.archive);
	e.archive = longer;
	struct mpfs_fs_opts o = {.log = test_log};
	struct mpfs_error err;
	cr_assert_eq(mpfs_fs_open(&e.fs, e.archive, &o, &err), 0);
	cr_assert_eq(echo_to(&e, "/params/max_iter", "7\n", false), 0, "log: %s", last_log);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params/max_iter")->u, 7);
	arc_free(&a);
	env_close(&e);
}

/* 11. A change in place at the same size (same mtime second or not) is
 * someone else's change. */
Test(fs_trust, change_in_place_at_the_same_size_is_stale)
{
	struct env e;
	size_t n;

	env_open(&e, "logreg_seed.mpk");
	uint8_t *p = tu_read_file(e.archive, &n);
	struct stat st;
	cr_assert_eq(stat(e.archive, &st), 0);
	int fd = open(e.archive, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, p, n, 0), (ssize_t)n); /* same bytes, new ctime */
	close(fd);
	struct timespec ts[2] = {st.st_atim, st.st_mtim};
	cr_assert_eq(utimensat(AT_FDCWD, e.archive, ts, 0), 0); /* mtime put back */
	cr_assert_eq(echo_to(&e, "/params/max_iter", "7\n", false), -ESTALE);
	free(p);
	env_close(&e);
}

/* ---- 8, 14. hostile sizes ---------------------------------------------- */

Test(fs_trust, huge_sizes_cost_no_memory_and_beyond_the_format_efbig)
{
	struct env e;
	struct stat st;

	env_open(&e, "logreg_seed.mpk");
	uint64_t fh = fs_open(&e, "/xtra/big", O_WRONLY | O_CREAT, true);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/xtra/big", fh, (uint64_t)2 << 30), 0);
	cr_assert_eq(getattr(&e, "/xtra/big", &st), 0);
	cr_assert_eq(st.st_size, (off_t)2 << 30);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/xtra/big", fh, 999999999999999ULL), -EFBIG);
	cr_assert_eq(mpfs_fs_write(e.fs, fh, "x", 1, (uint64_t)1 << 32), -EFBIG);
	cr_assert_eq(mpfs_fs_write(e.fs, fh, "x", 1, (uint64_t)2 << 30), 1);
	cr_assert_eq(getattr(&e, "/xtra/big", &st), 0);
	cr_assert_eq(st.st_size, ((off_t)2 << 30) + 1);
	char buf[8];
	cr_assert_eq(mpfs_fs_read(e.fs, fh, buf, 2, ((uint64_t)2 << 30) - 1), 2);
	cr_assert_eq(buf[0], 0);
	cr_assert_eq(buf[1], 'x');
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/xtra/big", fh, 0), 0);
	fs_release(&e, fh);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/params/C", 0, (uint64_t)5 << 30), -EFBIG);
	env_close(&e);
}

/* ---- 15, 16. renames of new files and of directories ------------------- */

Test(fs_trust, a_new_empty_file_renames)
{
	struct env e;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	uint64_t fh = fs_open(&e, "/xtra/new", O_WRONLY | O_CREAT, true);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/xtra/new", "/xtra/moved", false), 0);
	cr_assert_eq(getattr(&e, "/xtra/new", NULL), -ENOENT);
	cr_assert_eq(getattr(&e, "/xtra/moved", NULL), 0);
	fs_puts(&e, fh, "12\n", 0);
	fs_release(&e, fh);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "xtra/moved")->u, 12);
	cr_assert_null(arc_get(&a, "xtra/new"));
	arc_free(&a);
	env_close(&e);
}

Test(fs_trust, rename_over_a_directory_holding_a_new_file_is_enotempty)
{
	struct env e;

	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/xtra/a"), 0);
	cr_assert_eq(mpfs_fs_mkdir(e.fs, "/xtra/b"), 0);
	uint64_t fh = fs_open(&e, "/xtra/b/pending", O_WRONLY | O_CREAT, true);
	fs_release(&e, fh);
	cr_assert_eq(mpfs_fs_rmdir(e.fs, "/xtra/b"), -ENOTEMPTY);
	cr_assert_eq(mpfs_fs_rename(e.fs, "/xtra/a", "/xtra/b", false), -ENOTEMPTY);
	cr_assert_eq(getattr(&e, "/xtra/b/pending", NULL), 0);
	cr_assert_eq(getattr(&e, "/xtra/a", NULL), 0);
	env_close(&e);
}

/* ---- 17. O_TRUNC then close --------------------------------------------- */

Test(fs_trust, o_trunc_then_close_empties_strings_and_bins_not_numbers)
{
	struct tb b = {0};
	struct env e;
	struct arc a;

	tb_map(&b, 3);
	tb_str(&b, "s");
	tb_str(&b, "text");
	tb_str(&b, "b");
	tb_bin(&b, "\x01\x02", 2);
	tb_str(&b, "n");
	tb_uint(&b, 42);
	env_open_bytes(&e, b.p, b.len);
	tb_free(&b);
	for (const char *const *p = (const char *const[]){"/s", "/b", "/n", NULL}; *p; p++) {
		uint64_t fh = fs_open(&e, *p, O_WRONLY | O_TRUNC, false);
		cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
		fs_release(&e, fh);
	}
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "s")->type, MPFS_STR);
	cr_assert_eq(arc_must(&a, "s")->len, 0);
	cr_assert_eq(arc_must(&a, "b")->type, MPFS_BIN);
	cr_assert_eq(arc_must(&a, "b")->len, 0);
	cr_assert_eq(arc_must(&a, "n")->u, 42);
	arc_free(&a);
	cr_assert(strstr(last_log, "/n"), "the kept number is logged: %s", last_log);
	expect_cat(&e, "/s", "\"\"\n");
	env_close(&e);
}

/* ---- 18. sizes across truncates and reopens ----------------------------- */

Test(fs_trust, sizes_across_truncates_and_reopens)
{
	struct env e;
	struct stat st;
	static char buf[300000];

	env_open(&e, "logreg_seed.mpk");
	memset(buf, 'a', sizeof(buf));
	uint64_t fh = fs_open(&e, "/xtra/.scratch", O_RDWR | O_CREAT, true);
	fs_write(&e, fh, buf, sizeof(buf), 0);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/xtra/.scratch", fh, 0x3e945), 0);
	fs_release(&e, fh);
	for (int i = 0; i < 5; i++) {
		fh = fs_open(&e, "/xtra/.scratch", O_RDWR, false);
		cr_assert_eq(getattr(&e, "/xtra/.scratch", &st), 0);
		cr_assert_eq(st.st_size, 0x3e945, "reopen %d: size %#lx", i, (long)st.st_size);
		size_t n;
		char *s = fh_read(&e, fh, &n);
		cr_assert_eq(n, 0x3e945);
		free(s);
		fs_release(&e, fh);
	}
	/* grow after a shrink: the cut part reads as zeros */
	fh = fs_open(&e, "/xtra/.scratch", O_RDWR, false);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/xtra/.scratch", fh, 10), 0);
	cr_assert_eq(mpfs_fs_truncate(e.fs, "/xtra/.scratch", fh, 200000), 0);
	size_t n;
	char *s = fh_read(&e, fh, &n);
	cr_assert_eq(n, 200000);
	for (size_t i = 10; i < n; i++)
		cr_assert_eq(s[i], 0, "byte %zu", i);
	free(s);
	fs_release(&e, fh);
	env_close(&e);
}

/* ---- big content lives on disk, not in memory --------------------------- */

Test(fs_trust, big_new_content_commits_from_disk)
{
	struct env e;
	struct arc a;
	static char buf[1 << 20];

	env_open(&e, "logreg_seed.mpk");
	uint64_t fh = fs_open(&e, "/xtra/long", O_WRONLY | O_CREAT, true);
	memset(buf, 'z', sizeof(buf));
	for (uint64_t off = 0; off < 48u << 20; off += sizeof(buf))
		fs_write(&e, fh, buf, sizeof(buf), off);
	fs_write(&e, fh, "\"", 1, 0);
	fs_write(&e, fh, "\"", 1, 48u << 20);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0, "log: %s", last_log);
	fs_release(&e, fh);
	arc_load(&a, e.archive);
	const struct mpfs_val *v = arc_must(&a, "xtra/long");
	cr_assert_eq(v->type, MPFS_STR);
	cr_assert_eq(v->len, (48u << 20) - 1);
	arc_free(&a);
	env_close(&e);
}

/* A new file created at the name of an entry hidden by a backup rename is
 * an empty new file until it holds something; the hidden value stays
 * hidden, and goes with the next commit. */
Test(fs_trust, new_file_over_a_hidden_entry_is_empty_until_written)
{
	struct env e;
	struct stat st;
	struct arc a;

	env_open(&e, "logreg_seed.mpk");
	cr_assert_eq(mpfs_fs_rename(e.fs, "/params/tol", "/params/tol.tmp", false), 0);
	uint64_t fh = fs_open(&e, "/params/tol", O_WRONLY | O_CREAT | O_EXCL, true);
	cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0);
	fs_release(&e, fh);
	cr_assert_eq(getattr(&e, "/params/tol", &st), 0);
	cr_assert_eq(st.st_size, 0);
	cr_assert_eq(listed(&e, "/params", "tol"), 1);
	cr_assert_eq(echo_to(&e, "/params/C", "2\n", false), 0);
	arc_load(&a, e.archive);
	cr_assert_null(arc_get(&a, "params/tol"), "the hidden value went with the commit");
	arc_free(&a);
	cr_assert_eq(getattr(&e, "/params/tol", &st), 0);
	cr_assert_eq(st.st_size, 0);
	cr_assert_eq(echo_to(&e, "/params/tol", "0.5\n", false), 0);
	arc_load(&a, e.archive);
	cr_assert_eq(arc_must(&a, "params/tol")->f, 0.5);
	arc_free(&a);
	env_close(&e);
}

/* ---- 19. a big array edited in place ------------------------------------ */

/* Writes in place to a compact array too big to hold in memory commit only
 * what they changed: the chunks never written are copied from the old
 * archive (the commit's pieces of it), those written from the content, a
 * cut-and-regrown tail reads as zeros; every other byte of the archive
 * stays. Twice: the second edit's base is the first commit's archive. */
Test(fs_trust, big_array_edited_in_place_commits_exactly_the_writes)
{
	const size_t n = (12u << 20) / 8;
	double *w = malloc(n * 8);
	struct env e;
	struct stat st;
	struct arc a, before;

	for (size_t i = 0; i < n; i++)
		w[i] = (double)i * 0.5; /* the array's values, as env_open_big writes them */
	uint64_t hdr = env_open_big(&e, n);
	cr_assert_eq(getattr(&e, "/xtra/big.npy", &st), 0);

	for (int round = 0; round < 2; round++) {
		const double one = -1.0 - round, two[2] = {7.25, 8.5};
		const uint64_t cut = (uint64_t)st.st_size - 100000;
		arc_load(&before, e.archive);
		uint64_t fh = fs_open(&e, "/xtra/big.npy", O_RDWR, false);
		fs_write(&e, fh, &one, 8, hdr);			     /* in the header's chunk */
		fs_write(&e, fh, two, 16, (1u << 16) * 37 - 8);	     /* across a chunk edge */
		fs_write(&e, fh, &one, 8, (uint64_t)st.st_size - 8); /* the last element */
		cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, fh, cut), 0);
		cr_assert_eq(mpfs_fs_truncate(e.fs, NULL, fh, (uint64_t)st.st_size), 0);
		fs_write(&e, fh, &one, 8, (uint64_t)st.st_size - 8);
		cr_assert_eq(mpfs_fs_flush(e.fs, fh), 0, "log: %s", last_log);
		fs_release(&e, fh);

		memcpy(&w[0], &one, 8);
		memcpy((char *)w + (1u << 16) * 37 - 8 - hdr, two, 16);
		memset((char *)w + (cut - hdr), 0, (size_t)(st.st_size - cut));
		memcpy(&w[n - 1], &one, 8);
		arc_load(&a, e.archive);
		const struct mpfs_val *d = arc_must(&a, "xtra/big/data"),
				      *d0 = arc_must(&before, "xtra/big/data");
		cr_assert_eq(a.n, before.n, "the archive keeps its length");
		cr_assert_eq(d->off, d0->off);
		cr_assert(memcmp(a.buf, before.buf, d->off + d->hdr) == 0, "bytes before the data");
		cr_assert(memcmp(a.buf + d->end, before.buf + d->end, a.n - d->end) == 0,
			  "bytes after the data");
		cr_assert(memcmp(a.buf + d->off + d->hdr, w, n * 8) == 0, "the data: the writes");
		cr_assert(mpfs_val_is(&a.doc, arc_must(&a, "after"), "kept"));
		arc_free(&a);
		arc_free(&before);
	}
	cr_assert_eq(stray_files(&e), 0);
	free(w);
	env_close(&e);
}
