/* fs/ without FUSE: reading: read-only mounts (every change refused,
 * listing from a position, reads by path) and reads served as spans of the
 * archive's descriptor. Every test works on a private copy of a fixture in a
 * temporary directory. */
#include "fs_env.h"

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
