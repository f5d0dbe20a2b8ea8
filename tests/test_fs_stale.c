/* fs/commit.c without FUSE: what other processes leave: an archive changed
 * behind the mount's back is not overwritten, and leftovers of killed commits
 * are removed (only those of dead processes). Every test works on a private
 * copy of a fixture in a temporary directory. */
#include "fs_env.h"

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
