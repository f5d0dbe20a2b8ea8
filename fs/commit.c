#define _GNU_SOURCE /* asprintf */
#include "fs/commit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Buffered writes to the temporary file. Big unchanged spans of the old
 * archive are copied by the kernel (copy_file_range: no trip through user
 * memory, and a shared extent where the file system can reflink). */
struct out {
	int fd;
	int src;	     /* the old archive, or -1 once copying failed */
	const uint8_t *base; /* its mapping, which the encoder's spans point into */
	size_t base_len;
	size_t len;
	char buf[1 << 16];
};

static int drain(struct out *o, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(o->fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copies n bytes at offset off of the old archive; falls back to write. */
static int copy_span(struct out *o, const uint8_t *p, size_t n)
{
	loff_t off = (loff_t)(p - o->base);

	while (n && o->src >= 0) {
		ssize_t c = copy_file_range(o->src, &off, o->fd, NULL, n, 0);
		if (c < 0 && errno == EINTR)
			continue;
		if (c <= 0) {
			o->src = -1; /* not supported here: write from the mapping */
			break;
		}
		p += c;
		n -= (size_t)c;
	}
	return n ? drain(o, p, n) : 0;
}

static int out_write(void *ctx, const void *p, size_t n)
{
	struct out *o = ctx;
	const uint8_t *b = p;

	if (o->len + n > sizeof(o->buf)) {
		if (drain(o, o->buf, o->len))
			return -1;
		o->len = 0;
		if (n > sizeof(o->buf)) {
			if (o->src >= 0 && b >= o->base && b + n <= o->base + o->base_len)
				return copy_span(o, b, n);
			return drain(o, p, n);
		}
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

bool mpfs_commit_unchanged(const char *archive, const struct mpfs_view *old)
{
	struct stat now;
	return stat(archive, &now) == 0 && same_file(&now, mpfs_view_archive_stat(old));
}

int mpfs_commit(const char *archive, const struct mpfs_view *old, const struct mpfs_edit *edits,
		size_t nedits, struct mpfs_view **out, struct mpfs_error *err)
{
	const struct stat *was = mpfs_view_archive_stat(old);
	struct mpfs_view_opts vo = {.raw = mpfs_view_raw(old)};
	char *dir_copy, *tmp;
	struct out *o = NULL;
	struct stat now;
	int fd = -1, dfd = -1, src, rc = -EIO;

	memset(err, 0, sizeof(*err));
	src = open(archive, O_RDONLY | O_CLOEXEC);
	if (src < 0 || fstat(src, &now) < 0 || !same_file(&now, was)) {
		if (src >= 0)
			close(src);
		snprintf(err->msg, sizeof(err->msg), MPFS_STALE_MSG);
		return -ESTALE;
	}
	dir_copy = strdup(archive);
	tmp = malloc(strlen(archive) + 48);
	o = malloc(sizeof(*o));
	if (!dir_copy || !tmp || !o) {
		rc = -ENOMEM;
		goto out_free;
	}
	/* Beside the archive, so the rename stays within one filesystem. */
	const char *dir = dirname(dir_copy);
	char *base_copy = strdup(archive);
	if (!base_copy) {
		rc = -ENOMEM;
		goto out_free;
	}
	/* The pid lets a later mount tell a leftover of a killed mpfs from
	 * the temporary file of one still running (mpfs_commit_cleanup). */
	sprintf(tmp, "%s/.%s.mpfs-%ld-XXXXXX", dir, basename(base_copy), (long)getpid());
	free(base_copy);
	fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(err->msg, sizeof(err->msg), "cannot create a temporary file: %s",
			 strerror(errno));
		goto out_free;
	}
	o->fd = fd;
	o->src = src;
	o->base = mpfs_view_doc(old)->buf;
	o->base_len = mpfs_view_doc(old)->size;
	o->len = 0;
	if (fchmod(fd, was->st_mode & 07777) < 0 ||
	    mpfs_encode_doc(mpfs_view_doc(old), edits, nedits, out_write, o) ||
	    drain(o, o->buf, o->len) || fsync(fd) < 0) {
		snprintf(err->msg, sizeof(err->msg), "cannot write %s: %s", tmp, strerror(errno));
		goto out_unlink;
	}
	/* Never put an archive in place that we could not read back. */
	rc = mpfs_view_open(out, tmp, &vo, err);
	if (rc) {
		/* Valid edits can still make an archive mpfs would refuse to
		 * mount: a new value nested too deep where it goes, or a JSON
		 * object that claims to be a compact array and is not one.
		 * That is refused content; anything else is our bug. */
		char why[sizeof(err->msg)];
		bool deep = err->code == MPFS_E_DEPTH || err->code == MPFS_E_ARRAY ||
			    err->code == MPFS_E_DTYPE;
		snprintf(why, sizeof(why), "%s", err->msg);
		snprintf(err->msg, sizeof(err->msg),
			 deep ? "refused: the archive would no longer mount: %.150s"
			      : "internal error: the re-encoded archive does not decode (%.100s); "
				"nothing was changed",
			 why);
		rc = deep ? -EINVAL : -EIO;
		goto out_unlink;
	}
	if (rename(tmp, archive) < 0) {
		snprintf(err->msg, sizeof(err->msg), "cannot rename over %s: %s", archive,
			 strerror(errno));
		mpfs_view_close(*out);
		*out = NULL;
		rc = -EIO;
		goto out_unlink;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	close(fd);
	close(src);
	free(o);
	free(tmp);
	free(dir_copy);
	return 0;

out_unlink:
	unlink(tmp);
	close(fd);
out_free:
	close(src);
	free(o);
	free(tmp);
	free(dir_copy);
	return rc;
}

int mpfs_commit_cleanup(const char *archive, void (*log)(const char *fmt, ...))
{
	char *dir_copy = strdup(archive), *base_copy = strdup(archive), *prefix = NULL;
	struct dirent *e;
	size_t pl;
	int removed = 0;
	DIR *d = NULL;

	if (!dir_copy || !base_copy || asprintf(&prefix, ".%s.mpfs-", basename(base_copy)) < 0)
		goto out;
	d = opendir(dirname(dir_copy));
	if (!d)
		goto out;
	pl = strlen(prefix);
	while ((e = readdir(d))) {
		char *end;
		long pid;

		if (strncmp(e->d_name, prefix, pl))
			continue;
		pid = strtol(e->d_name + pl, &end, 10);
		if (end == e->d_name + pl || *end != '-' || strlen(end) != 7 || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* its mpfs may still be writing it */
		if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
			log("removed %s, left by an mpfs that was killed while committing",
			    e->d_name);
			removed++;
		}
	}
out:
	if (d)
		closedir(d);
	free(prefix);
	free(base_copy);
	free(dir_copy);
	return removed;
}
