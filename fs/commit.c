#define _GNU_SOURCE /* asprintf */
#include "fs/commit.h"
#include "fs/guard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Extents are shared in blocks of this size (XFS and btrfs: 4 KiB). */
#define MPFS_CLONE_BLOCK 4096

/* Copied spans go in steps of this size, each one's writeback started at
 * once: the disk writes while the next step copies, and the fsync at the
 * end has less left to wait for. */
#define MPFS_COPY_STEP ((size_t)32 << 20)

/* The archive's base name in temporary names, cut to fit NAME_MAX. */
#define MPFS_TEMP_BASE "%.200s"

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

/* Copies n bytes at offset off of the old archive; falls back to write.
 * Where the span lies at the same place within a block in both files (an
 * edit that kept the archive's length keeps every offset), the head up to
 * a block boundary goes first: the kernel then shares the aligned body's
 * extents on file systems that can (copy_file_range tries a reflink first
 * on XFS and btrfs, and clones only whole blocks), instead of copying the
 * whole span because its start was not aligned. */
static int copy_span(struct out *o, const uint8_t *p, size_t n)
{
	loff_t off = (loff_t)(p - o->base);
	loff_t at = lseek(o->fd, 0, SEEK_CUR);
	size_t head = 0;

	if (at >= 0 && (off - at) % MPFS_CLONE_BLOCK == 0 && off % MPFS_CLONE_BLOCK)
		head = (size_t)(MPFS_CLONE_BLOCK - off % MPFS_CLONE_BLOCK);
	while (n && o->src >= 0) {
		size_t want = head && head < n ? head : n < MPFS_COPY_STEP ? n : MPFS_COPY_STEP;
		ssize_t c = copy_file_range(o->src, &off, o->fd, NULL, want, 0);
		if (c < 0 && errno == EINTR)
			continue;
		if (c <= 0) {
			o->src = -1; /* not supported here: write from the mapping */
			break;
		}
		if (at >= 0 && !head)
			sync_file_range(o->fd, at, c, SYNC_FILE_RANGE_WRITE); /* a hint */
		at += at >= 0 ? c : 0;
		p += c;
		n -= (size_t)c;
		head = head > (size_t)c ? head - (size_t)c : 0;
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

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* The same file, unchanged: an edit in place at the same size still moves
 * mtime or at least ctime. */
static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       same_time(&a->st_mtim, &b->st_mtim) && same_time(&a->st_ctim, &b->st_ctim);
}

bool mpfs_commit_unchanged(const char *archive, const struct stat *ident)
{
	struct stat now;
	return stat(archive, &now) == 0 && same_file(&now, ident);
}

/* Gives the temporary file the archive's owner, group and extended
 * attributes where this process may; then its mode, less setuid and setgid
 * when the owner or group could not be kept (they would then grant another
 * user's rights). What cannot be kept is documented (docs/writing.md). */
static void copy_identity(int src, int fd, const struct stat *was)
{
	mode_t mode = was->st_mode & 07777;
	struct stat now;
	char *names = NULL, *val = NULL;
	ssize_t n;

	if (fchown(fd, was->st_uid, was->st_gid) < 0)
		(void)!fchown(fd, (uid_t)-1, was->st_gid); /* at least the group */
	if (fstat(fd, &now) == 0 && (now.st_uid != was->st_uid || now.st_gid != was->st_gid))
		mode &= ~(mode_t)(S_ISUID | S_ISGID);
	(void)!fchmod(fd, mode);
	n = flistxattr(src, NULL, 0);
	if (n <= 0 || !(names = malloc((size_t)n)) || (n = flistxattr(src, names, (size_t)n)) <= 0)
		goto out;
	for (char *name = names; name < names + n; name += strlen(name) + 1) {
		ssize_t len = fgetxattr(src, name, NULL, 0);
		char *v = len >= 0 ? realloc(val, (size_t)len + 1) : NULL;
		if (!v)
			continue;
		val = v;
		len = fgetxattr(src, name, val, (size_t)len);
		if (len >= 0)
			(void)!fsetxattr(fd, name, val, (size_t)len, 0);
	}
out:
	free(val);
	free(names);
}

struct encode_args {
	const struct mpfs_doc *doc;
	const struct mpfs_edit *edits;
	size_t nedits;
	struct out *o;
};

static int run_encode(void *arg)
{
	struct encode_args *a = arg;
	return mpfs_encode_doc(a->doc, a->edits, a->nedits, out_write, a->o) ? -1 : 0;
}

static int fail(struct mpfs_error *err, int e, const char *what, const char *path)
{
	snprintf(err->msg, sizeof(err->msg), "%s %.120s: %s", what, path, strerror(e));
	return -e;
}

int mpfs_commit(const char *archive, const struct mpfs_view *old, struct stat *ident,
		const struct mpfs_edit *edits, size_t nedits, struct mpfs_view **out,
		struct mpfs_error *err)
{
	struct mpfs_view_opts vo = {.raw = mpfs_view_raw(old)};
	char *dir_copy, *base_copy, *tmp;
	struct out *o = NULL;
	struct stat now;
	int fd = -1, dfd = -1, src, rc = -EIO;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	src = open(archive, O_RDONLY | O_CLOEXEC);
	if (src < 0 || fstat(src, &now) < 0 || !same_file(&now, ident)) {
		if (src >= 0)
			close(src);
		snprintf(err->msg, sizeof(err->msg), MPFS_STALE_MSG);
		return -ESTALE;
	}
	dir_copy = strdup(archive);
	base_copy = strdup(archive);
	tmp = malloc(strlen(archive) + 64);
	o = malloc(sizeof(*o));
	if (!dir_copy || !base_copy || !tmp || !o) {
		rc = -ENOMEM;
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		goto out_free;
	}
	/* Beside the archive, so the rename stays within one filesystem. The
	 * pid lets a later mount tell a leftover of a killed mpfs from the
	 * temporary file of one still running (mpfs_commit_cleanup); the base
	 * name is cut so the whole name stays within NAME_MAX. */
	const char *dir = dirname(dir_copy);
	sprintf(tmp, "%s/." MPFS_TEMP_BASE ".mpfs-%ld-XXXXXX", dir, basename(base_copy),
		(long)getpid());
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = fail(err, errno, "cannot create a temporary file in", dir);
		goto out_free;
	}
	o->fd = fd;
	o->src = src;
	o->base = mpfs_view_doc(old)->buf;
	o->base_len = mpfs_view_doc(old)->size;
	o->len = 0;
	copy_identity(src, fd, ident);
	errno = 0;
	/* Encoding reads the old archive's mapping: if someone cuts the file
	 * short now (after the identity check above), that is -EIO here
	 * rather than SIGBUS for the whole mount. */
	struct encode_args ea = {mpfs_view_doc(old), edits, nedits, o};
	if ((rc = mpfs_guard_run(run_encode, &ea)) == -EIO && errno == 0) {
		rc = fail(err, EIO, "the archive was cut short while it was read:", archive);
		goto out_unlink;
	}
	if (rc || drain(o, o->buf, o->len) || fsync(fd) < 0) {
		rc = fail(err, errno ? errno : ENOMEM, "cannot write", tmp);
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
		rc = deep ? -EINVAL : rc == -ENOMEM ? -ENOMEM : -EIO;
		*out = NULL;
		goto out_unlink;
	}
	if (rename(tmp, archive) < 0) {
		rc = fail(err, errno, "cannot rename over", archive);
		mpfs_view_close(*out);
		*out = NULL;
		goto out_unlink;
	}
	/* The new archive as it now is (rename moved its ctime). */
	if (fstat(fd, ident) < 0)
		memset(ident, 0, sizeof(*ident)); /* the next commit says ESTALE */
	rc = 0;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		rc = fail(err, errno, "the archive was replaced, but cannot fsync its directory",
			  dir);
	if (dfd >= 0)
		close(dfd);
	close(fd);
	close(src);
	free(o);
	free(tmp);
	free(base_copy);
	free(dir_copy);
	return rc;

out_unlink:
	unlink(tmp);
	close(fd);
out_free:
	close(src);
	free(o);
	free(tmp);
	free(base_copy);
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

	if (!dir_copy || !base_copy ||
	    asprintf(&prefix, "." MPFS_TEMP_BASE ".mpfs-", basename(base_copy)) < 0)
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
