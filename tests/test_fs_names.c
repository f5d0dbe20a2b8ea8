/* fs/ without FUSE: the names in the tree: scratch files, renaming,
 * removing, directories, and listing. Every test works on a private copy of a
 * fixture in a temporary directory, and checks the archive file itself by
 * decoding it again or with a fresh view. */
#include "fs_env.h"

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
