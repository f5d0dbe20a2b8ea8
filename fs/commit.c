#include "fs/commit.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Buffered writes to the temporary file; big spans go straight through. */
struct out {
	int fd;
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

static int out_write(void *ctx, const void *p, size_t n)
{
	struct out *o = ctx;

	if (o->len + n > sizeof(o->buf)) {
		if (drain(o, o->buf, o->len))
			return -1;
		o->len = 0;
		if (n > sizeof(o->buf))
			return drain(o, p, n);
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

int mpfs_commit(const char *archive, const struct mpfs_view *old, const struct mpfs_edit *edits,
		size_t nedits, struct mpfs_view **out, struct mpfs_error *err)
{
	const struct stat *was = mpfs_view_archive_stat(old);
	struct mpfs_view_opts vo = {.raw = mpfs_view_raw(old)};
	char *dir_copy, *tmp;
	struct out *o = NULL;
	struct stat now;
	int fd = -1, dfd = -1, rc = -EIO;

	memset(err, 0, sizeof(*err));
	if (stat(archive, &now) < 0 || !same_file(&now, was)) {
		snprintf(err->msg, sizeof(err->msg),
			 "the archive was changed on disk by someone else since it was read; "
			 "not overwriting it (unmount and mount again to see their change)");
		return -ESTALE;
	}
	dir_copy = strdup(archive);
	tmp = malloc(strlen(archive) + 32);
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
	sprintf(tmp, "%s/.%s.mpfs-XXXXXX", dir, basename(base_copy));
	free(base_copy);
	fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(err->msg, sizeof(err->msg), "cannot create a temporary file: %s",
			 strerror(errno));
		goto out_free;
	}
	o->fd = fd;
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
		snprintf(err->msg, sizeof(err->msg), "internal error: the re-encoded archive "
			 "does not decode; nothing was changed");
		rc = -EIO;
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
	free(o);
	free(tmp);
	free(dir_copy);
	return 0;

out_unlink:
	unlink(tmp);
	close(fd);
out_free:
	free(o);
	free(tmp);
	free(dir_copy);
	return rc;
}
