/* mpfs-tool's subcommands, run in-process as from the command line
 * (mpfs_tool_main), against private copies of the shared fixtures: what
 * each prints, its exit status, and what the archive file holds after, for
 * the refusals first. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#include "codec/value.h"
#include "testutil.h"
#include "tool/tool.h"

/* ---- running the tool ---- */

struct run {
	int rc;
	char *out, *err;
};

static char *slurp_fd(int fd)
{
	struct tb b = {0};
	char chunk[4096];
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		tb_put(&b, chunk, (size_t)n);
	tb_byte(&b, 0);
	close(fd);
	return (char *)b.p;
}

/* Runs mpfs-tool ARGS... (NULL-terminated) with stdin from in (or
 * /dev/null), capturing stdout and stderr. */
static struct run tool_in(const char *in, ...)
{
	char *argv[16] = {"mpfs-tool"}, tmpl_o[] = "/tmp/tool-out-XXXXXX",
	     tmpl_e[] = "/tmp/tool-err-XXXXXX";
	int argc = 1, o = mkstemp(tmpl_o), e = mkstemp(tmpl_e),
	    i = open(in ? in : "/dev/null", O_RDONLY);
	int so = dup(1), se = dup(2), si = dup(0);
	struct run r;
	va_list ap;

	cr_assert(o >= 0 && e >= 0 && i >= 0);
	unlink(tmpl_o);
	unlink(tmpl_e);
	va_start(ap, in);
	for (const char *a; (a = va_arg(ap, const char *));)
		argv[argc++] = (char *)a;
	va_end(ap);
	fflush(stdout);
	fflush(stderr);
	dup2(o, 1);
	dup2(e, 2);
	dup2(i, 0);
	r.rc = mpfs_tool_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	dup2(si, 0);
	close(so), close(se), close(si), close(i);
	r.out = slurp_fd(o);
	r.err = slurp_fd(e);
	return r;
}

#define tool(...) tool_in(NULL, __VA_ARGS__, NULL)

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* ---- a private copy of a fixture ---- */

struct copy {
	char *dir, *mpk;
	uint8_t *before;
	size_t n;
	struct stat st;
};

static void copy_open(struct copy *c, const char *fixture)
{
	c->dir = tu_temp_dir();
	cr_assert(asprintf(&c->mpk, "%s/m.mpk", c->dir) > 0);
	c->before = tu_fixture(fixture, &c->n);
	tu_write_file(c->mpk, c->before, c->n);
	cr_assert_eq(stat(c->mpk, &c->st), 0);
}

static void copy_close(struct copy *c)
{
	tu_rm_rf(c->dir);
	free(c->dir);
	free(c->mpk);
	free(c->before);
}

static char *sub(struct copy *c, const char *name)
{
	char *p;
	cr_assert(asprintf(&p, "%s/%s", c->dir, name) > 0);
	return p;
}

/* The archive holds its bytes and inode from before. */
static void untouched(struct copy *c, const char *what)
{
	struct stat st;
	size_t n;
	uint8_t *now = tu_read_file(c->mpk, &n);

	cr_assert_eq(stat(c->mpk, &st), 0);
	cr_assert(n == c->n && !memcmp(now, c->before, n), "%s: the archive changed", what);
	cr_assert_eq(st.st_ino, c->st.st_ino, "%s: the archive was replaced", what);
	free(now);
}

/* Nothing but the archive (and what the test made) is left beside it. */
static int files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static char *cat(struct copy *c, const char *path)
{
	struct run r = tool("cat", c->mpk, path);
	cr_assert_eq(r.rc, 0, "cat %s: %s", path, r.err);
	free(r.err);
	return r.out;
}

static void expect_cat(struct copy *c, const char *path, const char *want)
{
	char *got = cat(c, path);
	cr_assert_str_eq(got, want, "%s reads '%s', expected '%s'", path, got, want);
	free(got);
}

/* ---- usage ---- */

Test(tool_cli, usage_and_unknown_commands)
{
	struct run r = tool("--help");
	cr_assert_eq(r.rc, 0);
	cr_assert(strstr(r.out, "unpack  ARCHIVE DIR"));
	run_free(&r);
	r = tool("frobnicate");
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "mpfs-tool: unknown command 'frobnicate'"));
	run_free(&r);
	r = tool("cat", "only-one-arg");
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "usage: mpfs-tool cat ARCHIVE PATH"));
	run_free(&r);
	r = tool("ls", "-x", "a.mpk");
	cr_assert_eq(r.rc, 1);
	run_free(&r);
}

/* ---- ls and cat ---- */

Test(tool_ls, root_in_archive_order_and_sizes)
{
	struct copy c;
	struct run r;

	copy_open(&c, "logreg_seed.mpk");
	r = tool("ls", c.mpk);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "class_name\ntypes\nparams\nxtra\nweights\n");
	run_free(&r);
	r = tool("ls", "-l", c.mpk, "/params/");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	cr_assert(strstr(r.out, "-            4 C\n"), "%s", r.out);
	cr_assert(strstr(r.out, "d            0 class_weight\n"), "%s", r.out);
	run_free(&r);
	r = tool("ls", "-l", c.mpk, "weights/coef_.npy");
	cr_assert_eq(r.rc, 0);
	cr_assert(strstr(r.out, " 176 weights/coef_.npy\n"), "%s", r.out);
	run_free(&r);
	copy_close(&c);
}

Test(tool_ls, refusals)
{
	char *bad = tu_fixture_path("bad_truncated.mpk");
	struct copy c;
	struct run r;

	copy_open(&c, "logreg_seed.mpk");
	r = tool("ls", c.mpk, "params/nope");
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "mpfs-tool: params/nope: No such file or directory"), "%s", r.err);
	run_free(&r);
	r = tool("ls", bad);
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "not a model archive: truncated"), "%s", r.err);
	cr_assert(strstr(r.err, "(at byte offset "), "%s", r.err);
	cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "one line: %s", r.err);
	run_free(&r);
	r = tool("ls", "/nonexistent/m.mpk");
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "/nonexistent/m.mpk: No such file or directory"), "%s", r.err);
	run_free(&r);
	free(bad);
	copy_close(&c);
}

Test(tool_cat, text_and_npy_as_the_mount_serves_them)
{
	struct copy c;
	struct run r;
	char *npy;

	copy_open(&c, "logreg_seed.mpk");
	expect_cat(&c, "params/C", "0.5\n");
	expect_cat(&c, "/class_name", "\"LogisticRegression\"\n");
	npy = cat(&c, "weights/coef_.npy");
	cr_assert(!memcmp(npy, "\x93NUMPY\x01\x00", 8));
	npy[127] = '\0'; /* the header's final newline; no NUL before it after the length */
	cr_assert(strstr(npy + 10, "'descr': '<f8'") && strstr(npy + 10, "'shape': (1, 6)"), "%s",
		  npy + 10);
	free(npy);
	r = tool("cat", c.mpk, "params");
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "params: Is a directory"));
	run_free(&r);
	r = tool("cat", c.mpk, "params/../../etc/passwd");
	cr_assert_eq(r.rc, 1);
	run_free(&r);
	untouched(&c, "cat");
	copy_close(&c);
}

/* ---- set ---- */

Test(tool_set, json_string_fallback_and_new_keys)
{
	struct copy c;
	struct run r;

	copy_open(&c, "logreg_seed.mpk");
	r = tool("set", c.mpk, "params/C", "2");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	cr_assert_str_eq(r.err, "");
	run_free(&r);
	expect_cat(&c, "params/C", "2.0\n"); /* a float stays a float */
	r = tool("set", c.mpk, "params/solver", "sag");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	expect_cat(&c, "params/solver", "\"sag\"\n");
	r = tool("set", c.mpk, "xtra/note", "[1, 2]");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	expect_cat(&c, "xtra/note", "[1, 2]\n");
	cr_assert_eq(files_in(c.dir), 1, "no temporary files left");
	copy_close(&c);
}

Test(tool_set, npy_from_stdin_replaces_the_array)
{
	struct copy c;
	struct run r;
	char *npy, *f;
	size_t n;

	copy_open(&c, "logreg_compact.mpk");
	npy = cat(&c, "weights/coef_.npy");
	n = 128 + 6 * 8;
	/* coef_[0, 0] = 1.5 */
	memcpy(npy + 128, &(double){1.5}, 8);
	f = sub(&c, "new.npy");
	tu_write_file(f, npy, n);
	r = tool_in(f, "set", c.mpk, "weights/coef_.npy", "-", NULL);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	free(npy);
	npy = cat(&c, "weights/coef_.npy");
	cr_assert(!memcmp(npy + 128, &(double){1.5}, 8));
	free(npy);
	free(f);
	copy_close(&c);
}

Test(tool_set, refusals_leave_the_archive_untouched)
{
	struct copy c;
	struct run r;
	char *f;

	copy_open(&c, "logreg_seed.mpk");
	r = tool("set", c.mpk, "params/C", "abc");
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "mpfs-tool: /params/C: refused: not valid JSON"), "%s", r.err);
	run_free(&r);
	untouched(&c, "set C abc");
	/* A broken .npy. */
	f = sub(&c, "bad.npy");
	tu_write_file(f, "\x93NUMPY\x01\x00garbage", 15);
	r = tool_in(f, "set", c.mpk, "weights/coef_.npy", NULL);
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "/weights/coef_.npy"), "%s", r.err);
	run_free(&r);
	untouched(&c, "set a broken npy");
	/* Nothing for a number: the mount keeps it and logs why. */
	r = tool("set", c.mpk, "params/max_iter", "-");
	cr_assert_eq(r.rc, 1);
	cr_assert_neq(r.err[0], '\0');
	run_free(&r);
	untouched(&c, "set an empty number");
	r = tool("set", c.mpk, "params", "1");
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "params: Is a directory"));
	run_free(&r);
	/* No such directory. */
	r = tool("set", c.mpk, "params/nope/x", "1");
	cr_assert_eq(r.rc, 1);
	run_free(&r);
	untouched(&c, "set in a missing directory");
	cr_assert_eq(files_in(c.dir), 2, "only the archive and bad.npy");
	free(f);
	copy_close(&c);
}

/* ---- rm, mv, mkdir ---- */

Test(tool_rm, files_and_directories)
{
	struct copy c;
	struct run r;

	copy_open(&c, "logreg_seed.mpk");
	r = tool("rm", c.mpk, "params/class_weight");
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "params/class_weight: Is a directory"));
	run_free(&r);
	untouched(&c, "rm of a directory without -r");
	r = tool("rm", c.mpk, "params/nope");
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "No such file"));
	run_free(&r);
	untouched(&c, "rm of nothing");
	r = tool("rm", c.mpk, "params/tol");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	r = tool("rm", "-r", c.mpk, "params/class_weight");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	r = tool("ls", c.mpk, "params");
	cr_assert(!strstr(r.out, "tol\n") && !strstr(r.out, "class_weight"), "%s", r.out);
	run_free(&r);
	copy_close(&c);
}

Test(tool_rm, list_elements_and_csr_members)
{
	struct copy c;
	struct run r;

	copy_open(&c, "mlp_seed.mpk");
	r = tool("rm", c.mpk, "weights/coefs_/0.npy");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	r = tool("ls", c.mpk, "weights/coefs_");
	cr_assert_str_eq(r.out, "0.npy\n1.npy\n");
	run_free(&r);
	copy_close(&c);
	copy_open(&c, "tfidf_seed.mpk");
	r = tool("rm", c.mpk, "transformer/xtra/_idf_diag/data.npy");
	cr_assert_eq(r.rc, 1, "a csr member cannot go");
	cr_assert(strstr(r.err, "Operation not permitted"), "%s", r.err);
	run_free(&r);
	untouched(&c, "rm of a csr member");
	copy_close(&c);
}

Test(tool_mv, rename_in_place_into_a_directory_and_refusals)
{
	struct copy c;
	struct run r;

	copy_open(&c, "logreg_seed.mpk");
	r = tool("mv", c.mpk, "params/C", "params/D");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	r = tool("ls", c.mpk, "params");
	cr_assert(!strncmp(r.out, "D\nclass_weight\n", 15), "keeps its position: %s", r.out);
	run_free(&r);
	r = tool("mv", c.mpk, "params/tol", "xtra");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	expect_cat(&c, "xtra/tol", "0.0001\n");
	copy_close(&c);

	copy_open(&c, "mlp_seed.mpk");
	r = tool("mv", c.mpk, "params/alpha", "weights/coefs_/alpha");
	cr_assert_eq(r.rc, 1, "a list directory takes no new names");
	cr_assert(strstr(r.err, "mv params/alpha weights/coefs_/alpha:"), "%s", r.err);
	run_free(&r);
	r = tool("mv", c.mpk, "params/nope", "params/x");
	cr_assert_eq(r.rc, 1);
	run_free(&r);
	untouched(&c, "refused mv");
	copy_close(&c);
}

Test(tool_mkdir, maps_and_refusals)
{
	struct copy c;
	struct run r;

	copy_open(&c, "mlp_seed.mpk");
	r = tool("mkdir", c.mpk, "weights/coefs_/x");
	cr_assert_eq(r.rc, 1);
	run_free(&r);
	r = tool("mkdir", c.mpk, "params");
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "params: File exists"), "%s", r.err);
	run_free(&r);
	untouched(&c, "refused mkdir");
	r = tool("mkdir", c.mpk, "xtra/notes");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	r = tool("set", c.mpk, "xtra/notes/tag", "\"v2\"");
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	expect_cat(&c, "xtra/notes/tag", "\"v2\"\n");
	copy_close(&c);
}

/* ---- unpack and apply ---- */

/* Every file under dir holds the bytes cat gives. */
static void same_as_cat(struct copy *c, const char *dir)
{
	struct mpfs_fs_opts o = {.ro = true, .log = mpfs_tool_log};
	struct mpfs_tool_tree t = {0};
	struct mpfs_error err;
	struct mpfs_fs *fs;

	cr_assert_eq(mpfs_fs_open(&fs, c->mpk, &o, &err), 0);
	cr_assert_eq(mpfs_tool_walk(fs, "/", &t), 0);
	cr_assert_gt(t.n, 5);
	for (size_t i = 0; i < t.n; i++) {
		char *real, *want, *got;
		size_t nw, ng;
		struct stat st;
		cr_assert(asprintf(&real, "%s%s", dir, t.e[i].path) > 0);
		cr_assert_eq(stat(real, &st), 0, "%s missing", real);
		cr_assert_eq(S_ISDIR(st.st_mode), t.e[i].dir, "%s", real);
		if (!t.e[i].dir) {
			cr_assert_eq(mpfs_tool_read(fs, t.e[i].path, &want, &nw), 0);
			got = (char *)tu_read_file(real, &ng);
			cr_assert(ng == nw && !memcmp(got, want, nw), "%s differs", real);
			cr_assert_eq(st.st_size, t.e[i].st.st_size, "%s: size", real);
			free(want);
			free(got);
		}
		free(real);
	}
	mpfs_tool_tree_free(&t);
	mpfs_fs_close(fs);
}

/* Rewrites the first one-line text file under u without its newline and
 * applies u again. */
static void same_text_again(struct copy *c, const char *u)
{
	struct mpfs_fs_opts o = {.ro = true, .log = mpfs_tool_log};
	struct mpfs_tool_tree t = {0};
	struct mpfs_error err;
	struct mpfs_fs *fs;
	struct run r;

	cr_assert_eq(mpfs_fs_open(&fs, c->mpk, &o, &err), 0);
	cr_assert_eq(mpfs_tool_walk(fs, "/", &t), 0);
	for (size_t i = 0; i < t.n; i++) {
		char *buf, *real;
		size_t n;
		if (t.e[i].dir || mpfs_tool_read(fs, t.e[i].path, &buf, &n))
			continue;
		if (n > 1 && buf[n - 1] == '\n' && !memchr(buf, '\n', n - 1) &&
		    (buf[0] == '"' || (buf[0] >= '0' && buf[0] <= '9'))) {
			cr_assert(asprintf(&real, "%s%s", u, t.e[i].path) > 0);
			tu_write_file(real, buf, n - 1);
			free(real);
			free(buf);
			break;
		}
		free(buf);
	}
	mpfs_tool_tree_free(&t);
	mpfs_fs_close(fs);
	r = tool("apply", u, c->mpk);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
}

Test(tool_unpack, every_good_fixture_then_apply_changes_nothing)
{
	for (size_t i = 0; i < TU_NGOOD; i++) {
		struct copy c;
		struct run r;
		char *u;

		copy_open(&c, tu_good_fixtures[i]);
		u = sub(&c, "u");
		r = tool("unpack", c.mpk, u);
		cr_assert_eq(r.rc, 0, "%s: %s", tu_good_fixtures[i], r.err);
		run_free(&r);
		same_as_cat(&c, u);
		r = tool("apply", u, c.mpk);
		cr_assert_eq(r.rc, 0, "%s: %s", tu_good_fixtures[i], r.err);
		run_free(&r);
		untouched(&c, tu_good_fixtures[i]);
		/* An edit to the same value ("1" for "1\n") replaces nothing. */
		same_text_again(&c, u);
		untouched(&c, tu_good_fixtures[i]);
		cr_assert_eq(files_in(c.dir), 2, "no temporary files left");
		free(u);
		copy_close(&c);
	}
}

Test(tool_unpack, refusals)
{
	struct copy c;
	struct run r;
	char *u;

	copy_open(&c, "logreg_seed.mpk");
	r = tool("unpack", c.mpk, c.dir);
	cr_assert_eq(r.rc, 1, "not into a directory that holds something");
	cr_assert(strstr(r.err, "Directory not empty"), "%s", r.err);
	run_free(&r);
	u = sub(&c, "missing/u");
	r = tool("unpack", c.mpk, u);
	cr_assert_eq(r.rc, 1);
	run_free(&r);
	free(u);
	copy_close(&c);
}

static void put(struct copy *c, const char *rel, const char *text)
{
	char *p = sub(c, rel);
	tu_write_file(p, text, strlen(text));
	free(p);
}

Test(tool_apply, edits_new_files_and_removals)
{
	struct copy c;
	struct run r;
	char *u, *p;

	copy_open(&c, "mlp_seed.mpk");
	u = sub(&c, "u");
	r = tool("unpack", c.mpk, u);
	run_free(&r);
	put(&c, "u/params/alpha", "0.01");
	put(&c, "u/params/activation", "tanh\n");
	put(&c, "u/xtra/note", "\"hello\"\n");
	put(&c, "u/params/.alpha.swp", "editor junk");
	p = sub(&c, "u/params/tol");
	cr_assert_eq(unlink(p), 0);
	free(p);
	p = sub(&c, "u/weights/coefs_/2.npy");
	cr_assert_eq(unlink(p), 0);
	free(p);
	r = tool("apply", u, c.mpk);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	expect_cat(&c, "params/alpha", "0.01\n");
	expect_cat(&c, "params/activation", "\"tanh\"\n");
	expect_cat(&c, "xtra/note", "\"hello\"\n");
	r = tool("ls", c.mpk, "params");
	cr_assert(!strstr(r.out, "tol\n") && !strstr(r.out, "swp"), "%s", r.out);
	run_free(&r);
	r = tool("ls", c.mpk, "weights/coefs_");
	cr_assert_str_eq(r.out, "0.npy\n1.npy\n");
	run_free(&r);
	cr_assert_eq(files_in(c.dir), 2, "no temporary files left");
	free(u);
	copy_close(&c);
}

Test(tool_apply, one_bad_file_refuses_everything)
{
	struct copy c;
	struct run r;
	char *u;

	copy_open(&c, "logreg_compact.mpk");
	u = sub(&c, "u");
	r = tool("unpack", c.mpk, u);
	run_free(&r);
	put(&c, "u/params/C", "2");	   /* good */
	put(&c, "u/params/max_iter", "x"); /* not a number */
	put(&c, "u/xtra/z", "1");	   /* good, new */
	r = tool("apply", u, c.mpk);
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "/params/max_iter: refused"), "%s", r.err);
	cr_assert(strstr(r.err, "u/params/max_iter: Invalid argument: nothing applied"), "%s",
		  r.err);
	run_free(&r);
	untouched(&c, "a refused apply");
	cr_assert_eq(files_in(c.dir), 2, "no temporary files left");
	/* A broken .npy too. */
	put(&c, "u/params/max_iter", "100");
	put(&c, "u/weights/coef_.npy", "\x93NUMPY junk");
	r = tool("apply", u, c.mpk);
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "weights/coef_.npy"), "%s", r.err);
	run_free(&r);
	untouched(&c, "a refused npy");
	r = tool("apply", "/nonexistent", c.mpk);
	cr_assert_eq(r.rc, 1);
	run_free(&r);
	untouched(&c, "a missing directory");
	free(u);
	copy_close(&c);
}

/* ---- pack ---- */

Test(tool_pack, same_tree_seed_order_and_refusals)
{
	struct copy c;
	struct run r;
	char *u, *p, *q;

	copy_open(&c, "logreg_compact.mpk");
	u = sub(&c, "u");
	p = sub(&c, "p.mpk");
	r = tool("unpack", c.mpk, u);
	run_free(&r);
	r = tool("pack", u, p);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	run_free(&r);
	r = tool("ls", p);
	cr_assert_str_eq(r.out, "class_name\ntypes\nparams\nxtra\nweights\n");
	run_free(&r);
	r = tool("diff", c.mpk, p);
	cr_assert_eq(r.rc, 0, "%s%s", r.out, r.err);
	cr_assert_str_eq(r.out, "");
	run_free(&r);
	r = tool("pack", u, p);
	cr_assert_eq(r.rc, 1, "never over an existing file");
	cr_assert(strstr(r.err, "File exists"), "%s", r.err);
	run_free(&r);
	q = sub(&c, "q.mpk");
	put(&c, "u/weights/coef_.npy", "not an npy");
	r = tool("pack", u, q);
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.err, "coef_.npy"), "%s", r.err);
	run_free(&r);
	cr_assert_neq(access(q, F_OK), 0, "no half-made archive");
	free(q);
	free(u);
	free(p);
	copy_close(&c);
}

/* ---- diff, show, check ---- */

Test(tool_diff, text_arrays_and_exit_status)
{
	struct copy c;
	struct run r;
	char *orig = tu_fixture_path("logreg_seed.mpk");
	char *npy, *f;

	copy_open(&c, "logreg_seed.mpk");
	r = tool("diff", orig, c.mpk);
	cr_assert_eq(r.rc, 0);
	cr_assert_str_eq(r.out, "");
	run_free(&r);
	run_free((struct run[]){tool("set", c.mpk, "params/C", "2")});
	npy = cat(&c, "weights/coef_.npy");
	memcpy(npy + 128 + 8, &(double){100.0}, 8);
	f = sub(&c, "n.npy");
	tu_write_file(f, npy, 128 + 48);
	run_free((struct run[]){tool_in(f, "set", c.mpk, "weights/coef_.npy", NULL)});
	run_free((struct run[]){tool("rm", c.mpk, "params/tol")});
	r = tool("diff", orig, c.mpk);
	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.out, "params/C: 0.5 -> 2.0\n"), "%s", r.out);
	cr_assert(strstr(r.out, "weights/coef_.npy: 1 of 6 elements differ, max abs difference "),
		  "%s", r.out);
	cr_assert(strstr(r.out, "params/tol: only in "), "%s", r.out);
	run_free(&r);
	r = tool("diff", orig, "/nonexistent.mpk");
	cr_assert_eq(r.rc, 2);
	run_free(&r);
	free(f);
	free(npy);
	free(orig);
	copy_close(&c);
}

Test(tool_diff, dtype_and_shape_changes)
{
	char *a = tu_fixture_path("mlp_seed.mpk"), *b = tu_fixture_path("logreg_seed.mpk");
	char *x = tu_fixture_path("logreg_compact.mpk");
	struct run r = tool("diff", a, b);

	cr_assert_eq(r.rc, 1);
	cr_assert(strstr(r.out, "class_name: \"MLPClassifier\" -> \"LogisticRegression\""), "%s",
		  r.out);
	run_free(&r);
	r = tool("diff", b, x);
	cr_assert(strstr(r.out, "weights/coef_.npy: encoding nested -> compact"), "%s", r.out);
	run_free(&r);
	free(a);
	free(b);
	free(x);
}

Test(tool_show, one_line_per_file)
{
	char *f = tu_fixture_path("logreg_seed.mpk");
	struct run r = tool("show", f);

	cr_assert_eq(r.rc, 0, "%s", r.err);
	cr_assert(!strncmp(r.out, "class_name = \"LogisticRegression\"\n", 34), "%s", r.out);
	cr_assert(strstr(r.out, "\nparams/C = 0.5\n"));
	cr_assert(strstr(r.out, "\nparams/class_weight/1 = 2.5\n"));
	cr_assert(strstr(r.out, "\nweights/coef_.npy: <f8 (1,6) hash "), "%s", r.out);
	cr_assert(strstr(r.out, " min -0.652370184 max 1.80085447 mean "), "%s", r.out);
	run_free(&r);
	free(f);
	f = tu_fixture_path("edge_values.mpk");
	r = tool("show", f);
	cr_assert_eq(r.rc, 0, "%s", r.err);
	cr_assert(strstr(r.out, "bytes, hash "), "bins by size and hash: %s", r.out);
	run_free(&r);
	free(f);
}

Test(tool_check, good_and_bad_fixtures)
{
	static const char *const bad[] = {
		"bad_compact_bad_dtype.mpk", "bad_compact_data_too_short.mpk",
		"bad_deep_nesting.mpk",	     "bad_empty.mpk",
		"bad_huge_array_len.mpk",    "bad_not_a_map.mpk",
		"bad_reserved_c1.mpk",	     "bad_trailing_bytes.mpk",
		"bad_truncated.mpk",
	};
	for (size_t i = 0; i < TU_NGOOD; i++) {
		char *f = tu_fixture_path(tu_good_fixtures[i]);
		struct run r = tool("check", f);
		cr_assert_eq(r.rc, 0, "%s: %s", f, r.err);
		cr_assert(strstr(r.out, ": ok ("));
		run_free(&r);
		free(f);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *f = tu_fixture_path(bad[i]);
		struct run r = tool("check", f);
		cr_assert_eq(r.rc, 1, "%s", f);
		cr_assert(strstr(r.err, "not a model archive: "), "%s: %s", f, r.err);
		cr_assert(strstr(r.err, "(at byte offset "), "%s: %s", f, r.err);
		run_free(&r);
		free(f);
	}
}
