/* unpack: the tree written to a real directory, with the names, bytes and
 * xattrs the mount shows. Names from fs/ are safe file names (never "." or
 * "..", never a '/'), so nothing lands outside DIR. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tool/tool.h"

/* Copies the user.mpfs.* xattrs of path onto the real file; a filesystem
 * without user xattrs (tmpfs before Linux 6.6, some overlays) is no error. */
static int copy_xattrs(struct mpfs_fs *fs, const char *path, const char *real, bool *warned)
{
	char names[1024], val[1024];
	long n = mpfs_fs_listxattr(fs, path, names, sizeof(names));

	for (long i = 0; i < n; i += (long)strlen(names + i) + 1) {
		long v = mpfs_fs_getxattr(fs, path, names + i, val, sizeof(val));
		if (v < 0)
			continue;
		if (lsetxattr(real, names + i, val, (size_t)v, 0) == 0)
			continue;
		if (errno != ENOTSUP && errno != EPERM)
			return -errno;
		if (!*warned)
			mpfs_tool_err("%s: extended attributes not supported here: not copied",
				      real);
		*warned = true;
		return 0;
	}
	return 0;
}

static int write_real(const char *real, const char *buf, size_t len)
{
	int fd = open(real, O_WRONLY | O_CREAT | O_EXCL, 0644);
	size_t off = 0;
	ssize_t w;

	if (fd < 0)
		return -errno;
	while (off < len) {
		w = write(fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int rc = w < 0 ? -errno : -EIO;
			close(fd);
			return rc;
		}
		off += (size_t)w;
	}
	return close(fd) ? -errno : 0;
}

/* DIR may exist if it is empty. */
static int make_root(const char *dir)
{
	struct stat st;
	int rc;

	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno != EEXIST || stat(dir, &st) || !S_ISDIR(st.st_mode))
		return -errno;
	rc = rmdir(dir); /* a cheap "is it empty" that leaves it as it was */
	if (rc)
		return -ENOTEMPTY;
	return mkdir(dir, st.st_mode & 07777) ? -errno : 0;
}

int mpfs_tool_unpack(int argc, char **argv)
{
	struct mpfs_tool_tree t = {0};
	const char *dir;
	bool warned = false;
	struct mpfs_fs *fs;
	char *real = NULL, *buf;
	size_t len;
	int rc;

	if (argc != 2)
		return mpfs_tool_usage_error("unpack");
	dir = argv[1];
	fs = mpfs_tool_open(argv[0], true);
	if (!fs)
		return 1;
	rc = mpfs_tool_walk(fs, "/", &t);
	if (rc) {
		mpfs_tool_err("%s: %s", argv[0], strerror(-rc));
		goto out;
	}
	rc = make_root(dir);
	if (rc) {
		mpfs_tool_err("%s: %s", dir, strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < t.n && !rc; i++) {
		const struct mpfs_tool_entry *e = &t.e[i];
		free(real);
		if (asprintf(&real, "%s%s", dir, e->path) < 0) {
			real = NULL;
			rc = -ENOMEM;
			break;
		}
		if (e->dir) {
			rc = mkdir(real, 0755) ? -errno : 0;
		} else {
			rc = mpfs_tool_read(fs, e->path, &buf, &len);
			if (!rc) {
				rc = write_real(real, buf, len);
				free(buf);
			}
		}
		if (!rc)
			rc = copy_xattrs(fs, e->path, real, &warned);
		if (rc)
			mpfs_tool_err("%s: %s", real, strerror(-rc));
	}
out:
	free(real);
	mpfs_tool_tree_free(&t);
	mpfs_fs_close(fs);
	return rc ? 1 : 0;
}
