/* What every subcommand needs: opening an archive with fs/, one-line errors,
 * and whole-file reads and writes done as the kernel would do them for a
 * process using the mount. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool/tool.h"

void mpfs_tool_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("mpfs-tool: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* How many lines fs/ logged: a caller that sees none after a failure says
 * why itself. */
static unsigned long nlogged;

void mpfs_tool_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("mpfs-tool: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	nlogged++;
}

unsigned long mpfs_tool_logged(void)
{
	return nlogged;
}

struct mpfs_fs *mpfs_tool_open(const char *archive, bool ro)
{
	struct mpfs_fs_opts o = {.ro = ro, .log = mpfs_tool_log};
	struct mpfs_error err = {0};
	struct mpfs_fs *fs;
	int rc = mpfs_fs_open(&fs, archive, &o, &err);

	if (rc == 0)
		return fs;
	/* The words of mpfs itself (DESIGN §5). */
	if (rc == -EINVAL && err.code)
		mpfs_tool_err("%s: not a model archive: %s (at byte offset %llu)", archive, err.msg,
			      (unsigned long long)err.off);
	else
		mpfs_tool_err("%s: %s", archive, err.msg[0] ? err.msg : strerror(-rc));
	return NULL;
}

char *mpfs_tool_abspath(const char *path)
{
	char *s = malloc(strlen(path) + 2), *p = s;

	if (!s)
		return NULL;
	*p++ = '/';
	for (; *path; path++)
		if (*path != '/' || (p[-1] != '/'))
			*p++ = *path;
	if (p > s + 1 && p[-1] == '/')
		p--;
	*p = '\0';
	return s;
}

/* Reads everything rd gives (a count, 0 at the end, or -errno) into a
 * NUL-terminated buffer of its own. */
static int read_all(long (*rd)(void *ctx, char *buf, size_t n, uint64_t off), void *ctx, char **buf,
		    size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap + 1), *nb;
	long got;

	if (!b)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (!(nb = realloc(b, 2 * cap + 1))) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
		got = rd(ctx, b + n, cap - n, n);
		if (got < 0) {
			free(b);
			return (int)got;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

struct fs_file {
	struct mpfs_fs *fs;
	uint64_t fh;
};

static long fs_rd(void *ctx, char *buf, size_t n, uint64_t off)
{
	struct fs_file *f = ctx;
	return mpfs_fs_read(f->fs, f->fh, buf, n, off);
}

int mpfs_tool_read(struct mpfs_fs *fs, const char *path, char **buf, size_t *len)
{
	struct fs_file f = {fs, 0};
	int rc = mpfs_fs_open_file(fs, path, O_RDONLY, false, &f.fh);

	if (rc)
		return rc;
	rc = read_all(fs_rd, &f, buf, len);
	mpfs_fs_release(fs, f.fh);
	return rc;
}

int mpfs_tool_write(struct mpfs_fs *fs, const char *path, const void *data, size_t len, bool create)
{
	const char *p = data;
	uint64_t fh, off = 0;
	long w;
	int rc, rrc;

	rc = mpfs_fs_open_file(fs, path, O_WRONLY | O_TRUNC | (create ? O_CREAT : 0), create, &fh);
	if (rc)
		return rc;
	while (off < len) {
		w = mpfs_fs_write(fs, fh, p + off, len - off, off);
		if (w <= 0) {
			rc = w ? (int)w : -EIO;
			break;
		}
		off += (uint64_t)w;
	}
	if (!rc)
		rc = mpfs_fs_flush(fs, fh);
	/* The last close: an empty file is stored as at a last close. */
	rrc = mpfs_fs_release(fs, fh);
	return rc ? rc : rrc;
}

static long fd_rd(void *ctx, char *buf, size_t n, uint64_t off)
{
	ssize_t got;

	(void)off;
	while ((got = read(*(int *)ctx, buf, n)) < 0 && errno == EINTR)
		;
	return got < 0 ? -errno : (long)got;
}

int mpfs_tool_slurp(const char *file, char **buf, size_t *len)
{
	int fd = strcmp(file, "-") ? open(file, O_RDONLY) : 0;
	int rc;

	if (fd < 0)
		return -errno;
	rc = read_all(fd_rd, &fd, buf, len);
	if (fd > 0)
		close(fd);
	return rc;
}
