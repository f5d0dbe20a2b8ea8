/* Shared by the fs/view.c suites (test_view_*.c): a view opened on a path,
 * a fixture or hand-built bytes, its contents and extended attributes
 * checked, and whole trees walked. Include once per suite (static helpers);
 * define TU_WRAP_ALLOCS before it in the suites that count allocations. */
#ifndef MPFS_TESTS_VIEW_ENV_H
#define MPFS_TESTS_VIEW_ENV_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>

#include "fs/names.h"
#include "fs/view.h"
#include "testutil.h"

static inline struct mpfs_view *open_path(const char *path, bool raw)
{
	struct mpfs_view *v = NULL;
	struct mpfs_view_opts opts = {.raw = raw};
	struct mpfs_error err;
	int rc = mpfs_view_open(&v, path, &opts, &err);
	cr_assert_eq(rc, 0, "%s: %s (%d)", path, err.msg, rc);
	cr_assert_not_null(v);
	return v;
}

static inline struct mpfs_view *open_fixture(const char *name, bool raw)
{
	char *path = tu_fixture_path(name);
	struct mpfs_view *v = open_path(path, raw);
	free(path);
	return v;
}

/* Writes the archive in b (freed) to a temporary file and opens it; the
 * file is removed at once (the view maps it). */
static inline struct mpfs_view *open_tb(struct tb *b, bool raw)
{
	char *dir = tu_temp_dir(), *path;
	cr_assert(asprintf(&path, "%s/a.mpk", dir) > 0);
	tu_write_file(path, b->p, b->len);
	tb_free(b);
	struct mpfs_view *v = open_path(path, raw);
	unlink(path);
	rmdir(dir);
	free(path);
	free(dir);
	return v;
}

static inline uint32_t id_of(const struct mpfs_view *v, const char *path)
{
	uint32_t id = UINT32_MAX;
	int rc = mpfs_view_lookup(v, path, &id);
	cr_assert_eq(rc, 0, "lookup %s: %s", path, strerror(-rc));
	return id;
}

/* The whole content of a file, read in pieces of chunk bytes; *len set. */
static inline char *read_all(struct mpfs_view *v, uint32_t id, size_t chunk, size_t *len)
{
	struct tb b = {0};
	char *piece = malloc(chunk);
	uint64_t off = 0;
	long n;

	while ((n = mpfs_view_read(v, id, piece, chunk, off)) > 0) {
		cr_assert_leq((size_t)n, chunk);
		tb_put(&b, piece, (size_t)n);
		off += (uint64_t)n;
	}
	cr_assert_eq(n, 0, "read error %ld", n);
	free(piece);
	tb_byte(&b, 0);
	*len = b.len - 1;
	return (char *)b.p;
}

/* The content of the file at path, NUL-terminated. */
static inline char *content(struct mpfs_view *v, const char *path)
{
	size_t len;
	return read_all(v, id_of(v, path), 4096, &len);
}

static inline void expect_content(struct mpfs_view *v, const char *path, const char *want)
{
	char *got = content(v, path);
	cr_assert_str_eq(got, want, "%s: '%s', expected '%s'", path, got, want);
	free(got);
}

/* The xattr's value as a string, or NULL for ENODATA. */
static inline char *xattr(struct mpfs_view *v, uint32_t id, const char *name)
{
	long n = mpfs_view_getxattr(v, id, name, NULL, 0);
	if (n == -ENODATA)
		return NULL;
	cr_assert_geq(n, 0, "getxattr %s: %ld", name, n);
	char *buf = calloc(1, (size_t)n + 1);
	cr_assert_eq(mpfs_view_getxattr(v, id, name, buf, (size_t)n + 1), n);
	if (n > 1) {
		char *small = malloc((size_t)n - 1);
		cr_assert_eq(mpfs_view_getxattr(v, id, name, small, (size_t)n - 1), -ERANGE,
			     "getxattr %s into a short buffer", name);
		free(small);
	}
	return buf;
}

static inline void expect_xattr(struct mpfs_view *v, const char *path, const char *name,
				const char *want)
{
	char *got = xattr(v, id_of(v, path), name);
	if (!want) {
		cr_assert_null(got, "%s: %s is '%s', expected none", path, name, got);
		return;
	}
	cr_assert_not_null(got, "%s: no %s", path, name);
	cr_assert_str_eq(got, want, "%s: %s is '%s', expected '%s'", path, name, got, want);
	free(got);
}

/* listxattr as one string with ';' between names. */
static inline void expect_xattr_list(struct mpfs_view *v, const char *path, const char *want)
{
	uint32_t id = id_of(v, path);
	long n = mpfs_view_listxattr(v, id, NULL, 0);
	cr_assert_geq(n, 0);
	char *buf = calloc(1, (size_t)n + 1);
	cr_assert_eq(mpfs_view_listxattr(v, id, buf, (size_t)n + 1), n);
	if (n > 1)
		cr_assert_eq(mpfs_view_listxattr(v, id, buf, (size_t)n - 1), -ERANGE);
	for (long i = 0; i < n; i++)
		if (buf[i] == '\0' && i < n - 1)
			buf[i] = ';';
	cr_assert(n == 0 || buf[n - 1] == '\0', "list not NUL-terminated");
	cr_assert_str_eq(buf, want, "%s: xattrs '%s', expected '%s'", path, buf, want);
	free(buf);
}

/* ---- walking whole trees ---------------------------------------------------------- */

struct walk {
	struct mpfs_view *v;
	const struct stat *ast;	 /* the archive's */
	struct tb seen;		 /* seen.p[ino]: inode numbers met */
	uint32_t count, max_ino; /* dense: the max is the count */
	const char *dump;	 /* write the tree under this directory, or NULL */
	uint32_t files, dirs;
};

static inline void walk(struct walk *w, uint32_t id, const char *path)
{
	struct stat st;
	struct mpfs_view *v = w->v;

	cr_assert_eq(mpfs_view_stat(v, id, &st), 0, "stat %s", path);
	cr_assert_eq(st.st_ino, (ino_t)id + 1, "%s: ino", path);
	while (w->seen.len <= st.st_ino)
		tb_byte(&w->seen, 0);
	cr_assert_not(w->seen.p[st.st_ino], "%s: inode %ju twice", path, (uintmax_t)st.st_ino);
	w->seen.p[st.st_ino] = 1;
	w->count++;
	if (st.st_ino > w->max_ino)
		w->max_ino = (uint32_t)st.st_ino;
	cr_assert_eq(st.st_uid, getuid());
	cr_assert_eq(st.st_gid, getgid());
	cr_assert_eq(st.st_mtim.tv_sec, w->ast->st_mtim.tv_sec, "%s: mtime", path);
	cr_assert_eq(st.st_mtim.tv_nsec, w->ast->st_mtim.tv_nsec, "%s: mtime", path);
	cr_assert_eq(st.st_ctim.tv_sec, w->ast->st_ctim.tv_sec, "%s: ctime", path);
	cr_assert_eq(st.st_blksize, 4096);
	uint32_t again;
	cr_assert_eq(mpfs_view_lookup(v, *path ? path : "/", &again), 0, "lookup %s", path);
	cr_assert_eq(again, id, "lookup %s", path);

	/* Every listed xattr can be read, and only those. */
	long ln = mpfs_view_listxattr(v, id, NULL, 0);
	cr_assert_geq(ln, 0);
	char *list = calloc(1, (size_t)ln + 1);
	cr_assert_eq(mpfs_view_listxattr(v, id, list, (size_t)ln), ln);
	int listed = 0;
	for (char *p = list; p < list + ln; p += strlen(p) + 1) {
		char *val = xattr(v, id, p);
		cr_assert_not_null(val, "%s: %s listed but absent", path, p);
		free(val);
		listed++;
	}
	static const char *const all[] = {"user.mpfs.key", "user.mpfs.dtype", "user.mpfs.shape",
					  "user.mpfs.encoding", "user.mpfs.ext"};
	int present = 0;
	for (int i = 0; i < 5; i++) {
		char *val = xattr(v, id, all[i]);
		present += val != NULL;
		free(val);
	}
	cr_assert_eq(listed, present, "%s: %d xattrs listed, %d present", path, listed, present);
	cr_assert_eq(mpfs_view_getxattr(v, id, "user.other", NULL, 0), -ENODATA);
	free(list);

	if (!mpfs_view_is_dir(v, id)) {
		size_t len, len7;
		char buf[16];
		w->files++;
		cr_assert(S_ISREG(st.st_mode), "%s: mode %o", path, st.st_mode);
		cr_assert_eq(st.st_mode & 07777, 0444, "%s: mode %o", path, st.st_mode);
		cr_assert_eq(st.st_nlink, 1);
		char *data = read_all(v, id, 1 << 20, &len);
		char *data7 = read_all(v, id, 7, &len7);
		cr_assert_eq((off_t)len, st.st_size, "%s: st_size %jd, read %zu bytes", path,
			     (intmax_t)st.st_size, len);
		cr_assert_eq(len7, len, "%s: reading in pieces", path);
		cr_assert(len == 0 || memcmp(data, data7, len) == 0, "%s: pieces differ", path);
		cr_assert_eq(st.st_blocks, (blkcnt_t)((len + 511) / 512), "%s: st_blocks", path);
		cr_assert_eq(mpfs_view_read(v, id, buf, sizeof(buf), len), 0);
		cr_assert_eq(mpfs_view_read(v, id, buf, sizeof(buf), len + 1000), 0);
		cr_assert_eq(mpfs_view_read(v, id, buf, 0, 0), 0);
		if (w->dump) {
			char *p;
			cr_assert(asprintf(&p, "%s%s", w->dump, path) > 0);
			tu_write_file(p, data, len);
			free(p);
		}
		free(data);
		free(data7);
		return;
	}

	w->dirs++;
	cr_assert(S_ISDIR(st.st_mode), "%s: mode %o", path, st.st_mode);
	cr_assert_eq(st.st_mode & 07777, 0555);
	cr_assert_eq(mpfs_view_read(v, id, (char[4]){0}, 4, 0), -EISDIR, "read of dir %s", path);
	if (w->dump) {
		char *p;
		cr_assert(asprintf(&p, "%s%s", w->dump, path) > 0);
		if (*path)
			cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s: %s", p, strerror(errno));
		free(p);
	}
	uint32_t n = mpfs_view_nchildren(v, id), subdirs = 0;
	const char **names = calloc(n + 1, sizeof(*names));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t c;
		const char *name = mpfs_view_child(v, id, i, &c);
		size_t nl = strlen(name);
		names[i] = name;
		cr_assert(nl > 0 && nl <= MPFS_NAME_MAX, "%s: a name of %zu bytes", path, nl);
		cr_assert_null(strchr(name, '/'), "%s: '%s' has a /", path, name);
		cr_assert(strcmp(name, ".") && strcmp(name, ".."), "%s: '%s'", path, name);
		for (uint32_t j = 0; j < i; j++)
			cr_assert_str_neq(names[j], name, "%s: two entries named '%s'", path, name);
		subdirs += mpfs_view_is_dir(v, c);
		char *sub;
		cr_assert(asprintf(&sub, "%s/%s", path, name) > 0);
		walk(w, c, sub);
		free(sub);
	}
	free(names);
	cr_assert_eq(st.st_nlink, 2 + subdirs, "%s: nlink %ju with %u subdirectories", path,
		     (uintmax_t)st.st_nlink, subdirs);
	cr_assert_eq(st.st_size, 0);
}

static inline void walk_view(struct mpfs_view *v, const char *archive, const char *dump,
			     uint32_t *files, uint32_t *dirs)
{
	struct stat ast;
	struct walk w = {.v = v, .ast = &ast, .dump = dump};
	cr_assert_eq(stat(archive, &ast), 0);
	walk(&w, MPFS_ROOT_ID, "");
	cr_assert_eq(w.max_ino, w.count, "inode numbers are not 1..%u", w.count);
	tb_free(&w.seen);
	if (files)
		*files = w.files;
	if (dirs)
		*dirs = w.dirs;
}

#endif
