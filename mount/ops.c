/* FUSE glue: every operation resolves its path in the view (kept as the
 * private data of the fuse context) and passes fs/'s -errno through. */
#include "mount/ops.h"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "fs/names.h"
#include "fs/view.h"

static struct mpfs_view *view(void)
{
	return fuse_get_context()->private_data;
}

static void *mpfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	/* The archive does not change under a read-only mount. */
	cfg->kernel_cache = 1;
	cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 60.0;
	return view();
}

static int mpfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	uint32_t id;
	int rc;

	if (fi)
		id = (uint32_t)fi->fh;
	else if ((rc = mpfs_view_lookup(view(), path, &id)))
		return rc;
	return mpfs_view_stat(view(), id, st);
}

static int mpfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
			struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct mpfs_view *v = view();
	uint32_t id, n;
	int rc;

	(void)off, (void)fi, (void)flags;
	if ((rc = mpfs_view_lookup(v, path, &id)))
		return rc;
	if (!mpfs_view_is_dir(v, id))
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	n = mpfs_view_nchildren(v, id);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t child;
		const char *name = mpfs_view_child(v, id, i, &child);
		struct stat st = {.st_ino = child + 1};

		st.st_mode = mpfs_view_is_dir(v, child) ? S_IFDIR : S_IFREG;
		if (fill(buf, name, &st, 0, 0))
			break;
	}
	return 0;
}

static int mpfs_open(const char *path, struct fuse_file_info *fi)
{
	uint32_t id;
	int rc;

	if ((rc = mpfs_view_lookup(view(), path, &id)))
		return rc;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;
	fi->fh = id;
	fi->keep_cache = 1;
	return 0;
}

static int mpfs_read(const char *path, char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)path;
	return (int)mpfs_view_read(view(), (uint32_t)fi->fh, buf, size, (uint64_t)off);
}

static int mpfs_getxattr(const char *path, const char *name, char *buf, size_t size)
{
	uint32_t id;
	int rc;

	if ((rc = mpfs_view_lookup(view(), path, &id)))
		return rc;
	return (int)mpfs_view_getxattr(view(), id, name, buf, size);
}

static int mpfs_listxattr(const char *path, char *buf, size_t size)
{
	uint32_t id;
	int rc;

	if ((rc = mpfs_view_lookup(view(), path, &id)))
		return rc;
	return (int)mpfs_view_listxattr(view(), id, buf, size);
}

static int mpfs_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_namemax = MPFS_NAME_MAX;
	st->f_flag = ST_RDONLY;
	return 0;
}

const struct fuse_operations mpfs_ops = {
	.init = mpfs_init,
	.getattr = mpfs_getattr,
	.readdir = mpfs_readdir,
	.open = mpfs_open,
	.read = mpfs_read,
	.getxattr = mpfs_getxattr,
	.listxattr = mpfs_listxattr,
	.statfs = mpfs_statfs,
};
