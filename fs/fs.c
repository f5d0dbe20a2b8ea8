/* The mounted filesystem: a view of the archive as committed, plus pending
 * edits kept by path.
 *
 * A file opened for writing gets a pending buffer holding its whole content;
 * writes, truncates and reads go there. A flush (or fsync, or a release after
 * late writes through a shared mapping) turns the buffer into a MsgPack value
 * and commits: the archive is rewritten with that one edit and the view is
 * replaced by one of the new archive. Directory operations commit at once.
 * Scratch files (editor swap files, sed's temporaries) only ever live here.
 *
 * One rwlock guards the view and the pending list: reads share it, anything
 * that changes either takes it alone. */
#define _GNU_SOURCE
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/commit.h"
#include "fs/fs_i.h"

static void nolog(const char *fmt, ...)
{
	(void)fmt;
}

int mpfs_fs_open(struct mpfs_fs **out, const char *archive, const struct mpfs_fs_opts *opts,
		 struct mpfs_error *err)
{
	struct mpfs_view_opts vo = {.raw = opts->raw};
	struct mpfs_fs *fs = calloc(1, sizeof(*fs));
	char *dir;
	int rc;

	if (!fs || !(fs->archive = realpath(archive, NULL))) {
		rc = fs ? -errno : -ENOMEM;
		snprintf(err->msg, sizeof(err->msg), "%s", strerror(-rc));
		free(fs);
		return rc;
	}
	if ((rc = mpfs_view_open(&fs->view, fs->archive, &vo, err))) {
		free(fs->archive);
		free(fs);
		return rc;
	}
	fs->opts = *opts;
	if (!fs->opts.log)
		fs->opts.log = nolog;
	/* Commits write a file beside the archive and rename it over. */
	dir = strdup(fs->archive);
	if (!dir || access(fs->archive, W_OK) || access(dirname(dir), W_OK | X_OK))
		fs->opts.ro = true;
	free(dir);
	if (!fs->opts.ro)
		mpfs_commit_cleanup(fs->archive, fs->opts.log);
	pthread_rwlock_init(&fs->lock, NULL);
	*out = fs;
	return 0;
}

void mpfs_fs_finish(struct mpfs_fs *fs)
{
	pthread_rwlock_wrlock(&fs->lock);
	while (fs->pending) {
		struct pending *p = fs->pending;
		if (mpfs_edit_commit_pending(fs, p))
			fs->opts.log("%s: not committed at unmount", p->path);
		fs->pending = p->next;
		mpfs_pending_free(p);
	}
	/* A commit of nothing takes the hidden entries with it. */
	if (fs->nhidden && mpfs_edit_commit(fs, NULL, 0, "entries moved to scratch names"))
		fs->opts.log("entries moved to scratch names were not removed at unmount");
	pthread_rwlock_unlock(&fs->lock);
}

void mpfs_fs_close(struct mpfs_fs *fs)
{
	if (!fs)
		return;
	mpfs_fs_finish(fs);
	free(fs->hidden);
	mpfs_view_close(fs->view);
	pthread_rwlock_destroy(&fs->lock);
	free(fs->archive);
	free(fs);
}

bool mpfs_fs_readonly(const struct mpfs_fs *fs)
{
	return fs->opts.ro;
}

static void file_stat(const struct mpfs_fs *fs, const struct pending *p, struct stat *st)
{
	const struct stat *a = mpfs_view_archive_stat(fs->view);

	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_size = (off_t)p->len;
	st->st_blocks = (blkcnt_t)((p->len + 511) / 512);
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = a->st_mtim;
}

int mpfs_fs_getattr(struct mpfs_fs *fs, const char *path, struct stat *st)
{
	struct pending *p;
	uint32_t id;
	int rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((p = mpfs_pending_shown(fs, path))) {
		file_stat(fs, p, st);
		rc = 0;
	} else if ((rc = mpfs_fs_lookup(fs, path, &id)) == 0 &&
		   (rc = mpfs_view_stat(fs->view, id, st)) == 0 && !fs->opts.ro) {
		st->st_mode |= S_IWUSR;
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_readdir(struct mpfs_fs *fs, const char *path,
		    int (*fill)(void *ctx, const char *name, bool dir), void *ctx)
{
	char dir[PATH_MAX];
	uint32_t id, n, child;
	int rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((rc = mpfs_view_lookup(fs->view, path, &id)))
		goto out;
	if (!mpfs_view_is_dir(fs->view, id)) {
		rc = -ENOTDIR;
		goto out;
	}
	n = mpfs_view_nchildren(fs->view, id);
	for (uint32_t i = 0; i < n; i++) {
		const char *name = mpfs_view_child(fs->view, id, i, &child);
		if (fs->nhidden && mpfs_hidden_child(fs, path, name))
			continue;
		if (fill(ctx, name, mpfs_view_is_dir(fs->view, child)))
			goto out;
	}
	/* Files that exist only here: new, not yet valid, or scratch. */
	for (struct pending *p = fs->pending; p; p = p->next) {
		mpfs_path_parent(p->path, dir, sizeof(dir));
		if (strcmp(dir, path) || mpfs_fs_lookup(fs, p->path, &child) == 0)
			continue;
		if (fill(ctx, mpfs_path_base(p->path), false))
			break;
	}
out:
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

long mpfs_fs_read(struct mpfs_fs *fs, uint64_t fh, char *buf, size_t size, uint64_t off)
{
	struct handle *h = (struct handle *)(uintptr_t)fh;
	struct pending *p;
	uint32_t id;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	p = h->p ? h->p : mpfs_pending_shown(fs, h->path);
	if (p) {
		rc = 0;
		if (off < p->len) {
			rc = (long)(size < p->len - off ? size : p->len - off);
			memcpy(buf, p->data + off, (size_t)rc);
		}
	} else if ((rc = mpfs_fs_lookup(fs, h->path, &id)) == 0) {
		rc = mpfs_view_read(fs->view, id, buf, size, off);
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

long mpfs_fs_getxattr(struct mpfs_fs *fs, const char *path, const char *name, char *buf,
		      size_t size)
{
	uint32_t id;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	rc = mpfs_fs_lookup(fs, path, &id);
	if (rc == 0)
		rc = mpfs_view_getxattr(fs->view, id, name, buf, size);
	else if (mpfs_pending_find(fs, path))
		rc = -ENODATA;
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

long mpfs_fs_listxattr(struct mpfs_fs *fs, const char *path, char *buf, size_t size)
{
	uint32_t id;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	rc = mpfs_fs_lookup(fs, path, &id);
	if (rc == 0)
		rc = mpfs_view_listxattr(fs->view, id, buf, size);
	else if (mpfs_pending_find(fs, path))
		rc = 0;
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

/* A new file at path can become an archive entry (or is a scratch file):
 * 0, -ENOENT without a parent, -ENOTDIR, or -EPERM in a list or csr_matrix
 * directory, whose members are fixed. */
static int may_create(struct mpfs_fs *fs, const char *path)
{
	char d[PATH_MAX];
	uint32_t dir;
	int rc;

	mpfs_path_parent(path, d, sizeof(d));
	if ((rc = mpfs_fs_lookup(fs, d, &dir)))
		return rc;
	if (!mpfs_view_is_dir(fs->view, dir))
		return -ENOTDIR;
	if (mpfs_view_node(fs->view, dir)->kind != MPFS_N_MAP &&
	    !mpfs_fs_is_scratch(mpfs_path_base(path)))
		return -EPERM;
	return 0;
}

int mpfs_fs_open_file(struct mpfs_fs *fs, const char *path, int flags, bool create, uint64_t *fh)
{
	bool wr = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) || create;
	struct handle *h = calloc(1, sizeof(*h));
	struct pending *p;
	uint32_t id;
	int rc = 0;

	if (!h || !(h->path = strdup(path))) {
		free(h);
		return -ENOMEM;
	}
	if (wr && fs->opts.ro) {
		rc = -EROFS;
		goto out_free;
	}
	pthread_rwlock_wrlock(&fs->lock);
	p = mpfs_pending_find(fs, path);
	bool exists = p || mpfs_fs_lookup(fs, path, &id) == 0;
	if (!exists && !create) {
		rc = -ENOENT;
	} else if (!exists && (rc = may_create(fs, path))) {
		/* refused at once, rather than at the first close */
	} else if (exists && create && (flags & O_EXCL)) {
		rc = -EEXIST;
	} else if (!p && exists && mpfs_view_is_dir(fs->view, id)) {
		rc = wr ? -EISDIR : 0;
	} else if (wr && !p) {
		p = mpfs_pending_new(fs, path);
		if (!p)
			rc = -ENOMEM;
		else if (!exists)
			p->fresh = true;
		else if (!(flags & O_TRUNC) && (rc = mpfs_pending_load(fs, p, id)))
			mpfs_pending_drop(fs, p);
	}
	if (rc == 0 && p && (wr || p == mpfs_pending_shown(fs, path))) {
		p->refs++;
		h->p = p;
		if (flags & O_TRUNC && wr) {
			p->len = 0;
			p->dirty = true;
			p->refused = false;
		}
	}
	pthread_rwlock_unlock(&fs->lock);
	if (rc == 0) {
		*fh = (uint64_t)(uintptr_t)h;
		return 0;
	}
out_free:
	free(h->path);
	free(h);
	return rc;
}

long mpfs_fs_write(struct mpfs_fs *fs, uint64_t fh, const char *buf, size_t size, uint64_t off)
{
	struct handle *h = (struct handle *)(uintptr_t)fh;
	struct pending *p = h->p;
	long rc;

	if (!p)
		return -EBADF;
	if (off + size < off || off + size > SIZE_MAX / 2)
		return -EFBIG;
	pthread_rwlock_wrlock(&fs->lock);
	rc = off + size > p->len ? mpfs_pending_resize(p, (size_t)(off + size)) : 0;
	if (rc == 0) {
		memcpy(p->data + off, buf, size);
		p->dirty = h->late = true;
		p->refused = false;
		rc = (long)size;
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_truncate(struct mpfs_fs *fs, const char *path, uint64_t fh, uint64_t size)
{
	struct handle *h = (struct handle *)(uintptr_t)fh;
	struct pending *p;
	uint32_t id;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	if (size > SIZE_MAX / 2)
		return -EFBIG;
	pthread_rwlock_wrlock(&fs->lock);
	p = h && h->p ? h->p : mpfs_pending_find(fs, path);
	if (p) {
		rc = mpfs_pending_resize(p, (size_t)size);
		p->dirty = true;
		p->refused = false;
	} else if ((rc = mpfs_fs_lookup(fs, path, &id)) == 0) {
		/* truncate(2) on a closed file: nothing to keep if it is
		 * emptied; otherwise the cut content is committed at once. */
		if (mpfs_view_is_dir(fs->view, id))
			rc = -EISDIR;
		else if (size > 0 && (p = mpfs_pending_new(fs, path))) {
			if (!(rc = mpfs_pending_load(fs, p, id)) &&
			    !(rc = mpfs_pending_resize(p, (size_t)size))) {
				p->dirty = true;
				rc = mpfs_edit_commit_pending(fs, p);
			}
			mpfs_pending_drop(fs, p);
		}
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_flush(struct mpfs_fs *fs, uint64_t fh)
{
	struct handle *h = (struct handle *)(uintptr_t)fh;
	int rc = 0;

	if (!h->p)
		return 0;
	pthread_rwlock_wrlock(&fs->lock);
	if (h->p->len)
		h->late = false;
	rc = mpfs_edit_commit_pending(fs, h->p);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_release(struct mpfs_fs *fs, uint64_t fh)
{
	struct handle *h = (struct handle *)(uintptr_t)fh;
	struct pending *p = h->p;

	if (p) {
		pthread_rwlock_wrlock(&fs->lock);
		/* Writes through a shared mapping can land after the last flush. */
		if (h->late && mpfs_edit_commit_pending(fs, p))
			fs->opts.log("%s: the last writes were not committed", p->path);
		if (--p->refs == 0) {
			if (p->detached)
				mpfs_pending_free(p);
			else if (!p->scratch && !p->fresh)
				mpfs_pending_drop(fs, p); /* the archive holds it now */
		}
		pthread_rwlock_unlock(&fs->lock);
	}
	free(h->path);
	free(h);
	return 0;
}

int mpfs_fs_unlink(struct mpfs_fs *fs, const char *path)
{
	struct pending *p;
	uint32_t id, dir;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	pthread_rwlock_wrlock(&fs->lock);
	p = mpfs_pending_find(fs, path);
	rc = mpfs_fs_locate(fs, path, &id, &dir);
	if (rc == 0)
		rc = mpfs_view_is_dir(fs->view, id) ? -EISDIR : mpfs_edit_delete(fs, path, id, dir);
	else if (p)
		rc = 0;
	if (rc == 0 && p)
		mpfs_pending_drop(fs, p);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_mkdir(struct mpfs_fs *fs, const char *path)
{
	struct mpfs_strbuf key, val;
	char d[PATH_MAX];
	uint32_t dir, id;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	mpfs_strbuf_init(&key);
	mpfs_strbuf_init(&val);
	pthread_rwlock_wrlock(&fs->lock);
	mpfs_path_parent(path, d, sizeof(d));
	if ((rc = mpfs_view_lookup(fs->view, d, &dir)))
		goto out;
	if (mpfs_view_lookup(fs->view, path, &id) == 0 || mpfs_pending_find(fs, path)) {
		rc = -EEXIST; /* also over a hidden file: its key still exists */
		goto out;
	}
	const struct mpfs_node *dn = mpfs_view_node(fs->view, dir);
	if (dn->kind != MPFS_N_MAP) {
		rc = -EPERM;
		goto out;
	}
	if ((rc = mpfs_edit_key(fs, dn, mpfs_path_base(path), false, &key)))
		goto out;
	mpfs_encode_empty_map(&val);
	struct mpfs_edit ed = {.op = MPFS_EDIT_INSERT,
			       .target = dn->val,
			       .key = (uint8_t *)key.p,
			       .key_len = key.len,
			       .bytes = (uint8_t *)val.p,
			       .len = val.len};
	rc = val.oom ? -ENOMEM : mpfs_edit_commit(fs, &ed, 1, path);
out:
	pthread_rwlock_unlock(&fs->lock);
	mpfs_strbuf_destroy(&key);
	mpfs_strbuf_destroy(&val);
	return rc;
}

int mpfs_fs_rmdir(struct mpfs_fs *fs, const char *path)
{
	uint32_t id, dir;
	char d[PATH_MAX];
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	pthread_rwlock_wrlock(&fs->lock);
	rc = mpfs_fs_locate(fs, path, &id, &dir);
	if (rc == 0 && !mpfs_view_is_dir(fs->view, id))
		rc = -ENOTDIR;
	for (uint32_t i = 0, child; rc == 0 && i < mpfs_view_nchildren(fs->view, id); i++)
		if (!mpfs_hidden_child(fs, path, mpfs_view_child(fs->view, id, i, &child)))
			rc = -ENOTEMPTY;
	for (struct pending *p = fs->pending; rc == 0 && p; p = p->next) {
		mpfs_path_parent(p->path, d, sizeof(d));
		if (!strcmp(d, path))
			rc = -ENOTEMPTY;
	}
	if (rc == 0)
		rc = id == MPFS_ROOT_ID ? -EBUSY : mpfs_edit_delete(fs, path, id, dir);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_rename(struct mpfs_fs *fs, const char *from, const char *to, bool noreplace)
{
	bool to_scratch = mpfs_fs_is_scratch(mpfs_path_base(to));
	struct pending *p, *q;
	uint32_t id, dir, tid;
	int rc = 0;

	if (fs->opts.ro)
		return -EROFS;
	pthread_rwlock_wrlock(&fs->lock);
	p = mpfs_pending_find(fs, from);
	q = mpfs_pending_find(fs, to);
	if (noreplace && (q || mpfs_fs_lookup(fs, to, &tid) == 0)) {
		rc = -EEXIST;
		goto out;
	}
	if (p && (p->fresh || p->scratch)) {
		/* Content that lives here: to a scratch name it just moves; to a
		 * real name it is committed there. */
		if (!to_scratch) {
			if (p->len == 0) {
				fs->opts.log("%s: refused: renaming an empty file onto %s", from,
					     to);
				rc = -EINVAL;
				goto out;
			}
			if ((rc = mpfs_edit_put(fs, to, p->data, p->len)))
				goto out;
			mpfs_pending_drop(fs, p);
			if (q)
				mpfs_pending_drop(fs, q);
			goto out;
		}
		if (q && q != p)
			mpfs_pending_drop(fs, q);
		char *np = strdup(to);
		if (!np) {
			rc = -ENOMEM;
			goto out;
		}
		free(p->path);
		p->path = np;
		p->scratch = true;
		goto out;
	}
	if ((rc = mpfs_fs_locate(fs, from, &id, &dir)))
		goto out;
	if (to_scratch) {
		/* Out of the archive into memory (a backup copy, say). */
		if (mpfs_view_is_dir(fs->view, id)) {
			rc = -EXDEV;
			goto out;
		}
		struct pending *s = mpfs_pending_new(fs, to);
		if (!s || (rc = mpfs_pending_load(fs, s, id)) ||
		    (rc = mpfs_edit_hide(fs, from, dir))) {
			if (s)
				mpfs_pending_drop(fs, s);
			rc = rc ? rc : -ENOMEM;
			goto out;
		}
		if (q)
			mpfs_pending_drop(fs, q);
		goto out;
	}
	/* A directory's bytes move as they are: entries hidden inside it must
	 * be gone from the archive first. */
	if (mpfs_view_is_dir(fs->view, id) && mpfs_hidden_under(fs, from) &&
	    (rc = mpfs_edit_commit(fs, NULL, 0, from)) == 0)
		rc = mpfs_fs_locate(fs, from, &id, &dir); /* the view is a new one */
	if (rc == 0 && (rc = mpfs_edit_move(fs, from, id, dir, to)) == 0) {
		mpfs_hidden_del(fs, to);
		if (p)
			mpfs_pending_drop(fs, p);
		if (q)
			mpfs_pending_drop(fs, q);
		mpfs_pending_move_under(fs, from, to);
	}
out:
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}
