/* Shared by the fs/ suites: a private copy of a fixture opened with fs/,
 * the archive file decoded independently, and file operations as the
 * kernel would issue them. Include once per suite (static helpers). */
#ifndef MPFS_TESTS_FS_ENV_H
#define MPFS_TESTS_FS_ENV_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>

#include "codec/array.h"
#include "codec/npy.h"
#include "codec/value.h"
#include "fs/commit.h"
#include "fs/fs.h"
#include "fs/view.h"
#include "testutil.h"

/* ---- the log ------------------------------------------------------------------- */

static char last_log[1024];
static int nlogs;

static inline void test_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
	va_end(ap);
	nlogs++;
}

static inline void log_reset(void)
{
	last_log[0] = '\0';
	nlogs = 0;
}

/* ---- a mounted copy of a fixture ------------------------------------------------- */

struct env {
	char *dir, *archive;
	struct mpfs_fs *fs;
};

static inline void env_open_opts(struct env *e, const char *fixture, bool ro, bool raw, mode_t mode)
{
	struct mpfs_fs_opts o = {.ro = ro, .raw = raw, .log = test_log};
	struct mpfs_error err;
	uint8_t *p;
	size_t n;
	int rc;

	e->dir = tu_temp_dir();
	cr_assert(asprintf(&e->archive, "%s/a.mpk", e->dir) > 0);
	p = tu_fixture(fixture, &n);
	tu_write_file(e->archive, p, n);
	free(p);
	cr_assert_eq(chmod(e->archive, mode), 0);
	rc = mpfs_fs_open(&e->fs, e->archive, &o, &err);
	cr_assert_eq(rc, 0, "%s: %s (%d)", fixture, err.msg, rc);
	log_reset();
}

/* Like env_open, with an archive of the caller's bytes. */
static inline void env_open_bytes(struct env *e, const void *p, size_t n)
{
	struct mpfs_fs_opts o = {.log = test_log};
	struct mpfs_error err;
	int rc;

	e->dir = tu_temp_dir();
	cr_assert(asprintf(&e->archive, "%s/a.mpk", e->dir) > 0);
	tu_write_file(e->archive, p, n);
	rc = mpfs_fs_open(&e->fs, e->archive, &o, &err);
	cr_assert_eq(rc, 0, "%s (%d)", err.msg, rc);
	log_reset();
}

static inline void env_open(struct env *e, const char *fixture)
{
	env_open_opts(e, fixture, false, false, 0644);
}

static inline void env_close(struct env *e)
{
	mpfs_fs_close(e->fs);
	tu_rm_rf(e->dir);
	free(e->archive);
	free(e->dir);
}

/* ---- the archive file, read independently ---------------------------------------- */

struct arc {
	uint8_t *buf;
	size_t n;
	struct mpfs_doc doc;
	struct stat st;
};

static inline void arc_load(struct arc *a, const char *path)
{
	struct mpfs_error err;
	cr_assert_eq(stat(path, &a->st), 0);
	a->buf = tu_read_file(path, &a->n);
	cr_assert_eq(mpfs_doc_init(&a->doc, a->buf, a->n, &err), MPFS_OK,
		     "the archive does not decode: %s", err.msg);
}

static inline void arc_free(struct arc *a)
{
	mpfs_doc_destroy(&a->doc);
	free(a->buf);
}

/* The value at a path of string keys ("params/C"), or NULL. */
static inline const struct mpfs_val *arc_get(const struct arc *a, const char *path)
{
	const struct mpfs_val *v = &a->doc.root;
	char *copy = strdup(path), *save = NULL;
	for (char *k = strtok_r(copy, "/", &save); k && v; k = strtok_r(NULL, "/", &save))
		v = mpfs_map_get(&a->doc, v, k);
	free(copy);
	return v;
}

static inline const struct mpfs_val *arc_must(const struct arc *a, const char *path)
{
	const struct mpfs_val *v = arc_get(a, path);
	cr_assert_not_null(v, "the archive has no %s", path);
	return v;
}

/* The index of string key k in the map at path, or -1. */
static inline int arc_index(const struct arc *a, const char *path, const char *k)
{
	const struct mpfs_val *m = *path ? arc_must(a, path) : &a->doc.root;
	cr_assert_eq(m->type, MPFS_MAP, "%s is not a map", path);
	for (uint32_t i = 0; i < m->len; i++)
		if (mpfs_val_is(&a->doc, &m->items[2 * i], k))
			return (int)i;
	return -1;
}

/* The archive file is byte for byte what it was (and was not replaced). */
static inline void arc_unchanged(const struct arc *before, const char *path, const char *what)
{
	struct stat st;
	size_t n;
	uint8_t *now = tu_read_file(path, &n);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(n == before->n && memcmp(now, before->buf, n) == 0, "%s: the archive changed",
		  what);
	cr_assert_eq(st.st_ino, before->st.st_ino, "%s: the archive was replaced", what);
	free(now);
}

/* ---- file operations as the kernel sends them --------------------------------------- */

static inline uint64_t fs_open(struct env *e, const char *path, int flags, bool create)
{
	uint64_t fh = 0;
	int rc = mpfs_fs_open_file(e->fs, path, flags, create, &fh);
	cr_assert_eq(rc, 0, "open %s: %s", path, strerror(-rc));
	return fh;
}

static inline void fs_write(struct env *e, uint64_t fh, const void *p, size_t n, uint64_t off)
{
	long w = mpfs_fs_write(e->fs, fh, p, n, off);
	cr_assert_eq(w, (long)n, "write: %ld", w);
}

static inline void fs_puts(struct env *e, uint64_t fh, const char *s, uint64_t off)
{
	fs_write(e, fh, s, strlen(s), off);
}

static inline void fs_release(struct env *e, uint64_t fh)
{
	cr_assert_eq(mpfs_fs_release(e->fs, fh), 0);
}

/* The whole content through an open handle; *len set; NUL-terminated. */
static inline char *fh_read(struct env *e, uint64_t fh, size_t *len)
{
	struct tb b = {0};
	char chunk[1000];
	uint64_t off = 0;
	long n;

	while ((n = mpfs_fs_read(e->fs, fh, chunk, sizeof(chunk), off)) > 0) {
		tb_put(&b, chunk, (size_t)n);
		off += (uint64_t)n;
	}
	cr_assert_eq(n, 0, "read: %ld", n);
	tb_byte(&b, 0);
	if (len)
		*len = b.len - 1;
	return (char *)b.p;
}

static inline char *fs_cat(struct env *e, const char *path, size_t *len)
{
	uint64_t fh = fs_open(e, path, O_RDONLY, false);
	char *s = fh_read(e, fh, len);
	fs_release(e, fh);
	return s;
}

static inline void expect_cat(struct env *e, const char *path, const char *want)
{
	char *got = fs_cat(e, path, NULL);
	cr_assert_str_eq(got, want, "%s reads '%s', expected '%s'", path, got, want);
	free(got);
}

/* The content of path in a fresh view of the archive file. */
static inline char *view_cat(const char *archive, const char *path, bool raw)
{
	struct mpfs_view *v;
	struct mpfs_view_opts o = {.raw = raw};
	struct mpfs_error err;
	struct stat st;
	uint32_t id;
	char *buf;
	long n;

	cr_assert_eq(mpfs_view_open(&v, archive, &o, &err), 0, "%s", err.msg);
	cr_assert_eq(mpfs_view_lookup(v, path, &id), 0, "fresh view: no %s", path);
	cr_assert_eq(mpfs_view_stat(v, id, &st), 0);
	buf = calloc(1, (size_t)st.st_size + 1);
	n = mpfs_view_read(v, id, buf, (size_t)st.st_size, 0);
	cr_assert_eq(n, st.st_size);
	mpfs_view_close(v);
	return buf;
}

/* `echo TEXT > PATH` as bash runs it: open with O_TRUNC, dup2 and close
 * (a flush of the still-empty file), write, close (flush), release.
 * Returns what the second flush returned. */
static inline int echo_to(struct env *e, const char *path, const char *text, bool create)
{
	uint64_t fh = fs_open(e, path, O_WRONLY | O_TRUNC | (create ? O_CREAT : 0), create);
	int rc;
	cr_assert_eq(mpfs_fs_flush(e->fs, fh), 0, "%s: flush of the empty file", path);
	fs_puts(e, fh, text, 0);
	rc = mpfs_fs_flush(e->fs, fh);
	fs_release(e, fh);
	return rc;
}

/* ---- directories ------------------------------------------------------------------------- */

static inline int fill(void *ctx, const char *name, bool dir)
{
	(void)dir;
	tb_put(ctx, name, strlen(name));
	tb_byte(ctx, '\n');
	return 0;
}

/* How many times readdir of dir lists name. */
static inline int listed(struct env *e, const char *dir, const char *name)
{
	struct tb b = {0};
	int n = 0;
	cr_assert_eq(mpfs_fs_readdir(e->fs, dir, fill, &b), 0, "readdir %s", dir);
	tb_byte(&b, 0);
	for (char *s = (char *)b.p, *nl; (nl = strchr(s, '\n')); s = nl + 1)
		n += (size_t)(nl - s) == strlen(name) && !memcmp(s, name, (size_t)(nl - s));
	tb_free(&b);
	return n;
}

static inline int getattr(struct env *e, const char *path, struct stat *st)
{
	struct stat dummy;
	return mpfs_fs_getattr(e->fs, path, st ? st : &dummy);
}

/* Names in the temporary directory other than the archive. */
static inline int stray_files(struct env *e)
{
	DIR *d = opendir(e->dir);
	struct dirent *de;
	int n = 0;
	cr_assert_not_null(d);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		     strcmp(de->d_name, "a.mpk");
	closedir(d);
	return n;
}

/* ---- whole files and arrays ---------------------------------------------------- */

/* An NPY v1 file of a (data: nbytes bytes); free(). */
static inline uint8_t *npy_file(const struct mpfs_array *a, const void *data, size_t *len)
{
	char h[MPFS_NPY_HEADER_MAX];
	size_t hn = mpfs_npy_header(a, h);
	uint8_t *p = malloc(hn + a->nbytes + 1);
	memcpy(p, h, hn);
	memcpy(p + hn, data, a->nbytes);
	*len = hn + a->nbytes;
	return p;
}

static inline struct mpfs_array f8_array(unsigned ndim, uint64_t d0, uint64_t d1)
{
	struct mpfs_array a = {.descr = "<f8", .itemsize = 8, .ndim = (uint8_t)ndim};
	a.shape[0] = d0;
	a.shape[1] = d1;
	a.count = ndim == 1 ? d0 : d0 * d1;
	a.nbytes = 8 * a.count;
	return a;
}

/* Writes a whole file: open O_TRUNC, write, flush (returned), release. */
static inline int put_file(struct env *e, const char *path, const void *p, size_t n, bool create)
{
	uint64_t fh = fs_open(e, path, O_WRONLY | O_TRUNC | (create ? O_CREAT : 0), create);
	fs_write(e, fh, p, n, 0);
	int rc = mpfs_fs_flush(e->fs, fh);
	fs_release(e, fh);
	return rc;
}

static inline bool exists(const char *dir, const char *name)
{
	char *path;
	struct stat st;
	cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	bool r = stat(path, &st) == 0;
	free(path);
	return r;
}

/* An archive holding xtra/big, a compact <f8 array of n elements (element
 * i is i / 2), and a string after it; returns its .npy header's size. */
static inline uint64_t env_open_big(struct env *e, size_t n)
{
	double *w = malloc(n * 8);
	struct tb b = {0};
	struct stat st;

	cr_assert_not_null(w);
	for (size_t i = 0; i < n; i++)
		w[i] = (double)i * 0.5;
	tb_map(&b, 2);
	tb_str(&b, "xtra"), tb_map(&b, 1);
	tb_str(&b, "big"), tb_compact(&b, "<f8", n, w, n * 8);
	tb_str(&b, "after"), tb_str(&b, "kept");
	env_open_bytes(e, b.p, b.len);
	tb_free(&b);
	free(w);
	cr_assert_eq(getattr(e, "/xtra/big.npy", &st), 0);
	return (uint64_t)st.st_size - n * 8;
}

#endif
