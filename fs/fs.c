/* The mounted filesystem: the archive's current snapshot, plus file objects
 * (inodes) for the entries that have state: open handles, content being
 * edited, new and scratch files, hidden entries. fs_i.h defines the terms
 * and the locks; docs/writing.md tells users the same rules.
 *
 * A handle points at its inode, never at a path: a rename moves the inode
 * and its handles follow. Only handles opened for writing commit. A commit
 * that fails or is refused leaves the content as the writer left it, and the
 * error sticks until new writes arrive or the last writer closes. */
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
#include "fs/names.h"

static void nolog(const char *fmt, ...)
{
	(void)fmt;
}

int mpfs_fs_open(struct mpfs_fs **out, const char *archive, const struct mpfs_fs_opts *opts,
		 struct mpfs_error *err)
{
	struct mpfs_view_opts vo = {.raw = opts->raw};
	struct mpfs_fs *fs = calloc(1, sizeof(*fs));
	struct mpfs_view *v;
	char *dir;
	int rc;

	if (!fs || !(fs->archive = realpath(archive, NULL))) {
		rc = fs ? -errno : -ENOMEM;
		snprintf(err->msg, sizeof(err->msg), "%s", strerror(-rc));
		free(fs);
		return rc;
	}
	if ((rc = mpfs_view_open(&v, fs->archive, &vo, err)))
		goto out_free;
	fs->snap = calloc(1, sizeof(*fs->snap));
	fs->root = calloc(1, sizeof(*fs->root));
	if (!fs->snap || !fs->root || !(fs->root->name = strdup(""))) {
		mpfs_view_close(v);
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		rc = -ENOMEM;
		goto out_free;
	}
	fs->snap->v = v;
	fs->snap->refs = 1;
	fs->root->id = MPFS_ROOT_ID;
	fs->ident = *mpfs_view_archive_stat(v);
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
	pthread_mutex_init(&fs->commit_mu, NULL);
	*out = fs;
	return 0;

out_free:
	if (fs->root)
		free(fs->root->name);
	free(fs->root);
	free(fs->snap);
	free(fs->archive);
	free(fs);
	return rc;
}

static int commit_inode(struct mpfs_fs *fs, struct inode *in, bool last);

/* Collects the inodes under in that hold an edit not yet committed,
 * pinned (a commit releases fs->lock, and may free what is not pinned). */
static int collect_dirty(struct inode *in, struct inode ***list, size_t *n)
{
	for (struct inode *k = in->kids; k; k = k->next)
		if (collect_dirty(k, list, n))
			return -ENOMEM;
	if (!in->dirty || in->origin == ORIGIN_SCRATCH)
		return 0;
	struct inode **l = realloc(*list, (*n + 1) * sizeof(*l));
	if (!l)
		return -ENOMEM;
	*list = l;
	l[(*n)++] = in;
	in->busy++;
	return 0;
}

void mpfs_fs_finish(struct mpfs_fs *fs)
{
	struct inode **dirty = NULL;
	char path[PATH_MAX];
	size_t n = 0;
	struct txn t;

	pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	if (collect_dirty(fs->root, &dirty, &n))
		fs->opts.log("out of memory at unmount: some edits may not be committed");
	for (size_t i = 0; i < n; i++) {
		if (commit_inode(fs, dirty[i], true) &&
		    mpfs_inode_path(dirty[i], path, sizeof(path)) == 0)
			fs->opts.log("%s: not committed at unmount", path);
		dirty[i]->busy--;
		mpfs_inode_gc(fs, dirty[i]);
	}
	free(dirty);
	/* A commit of nothing takes the hidden entries with it. */
	mpfs_txn_init(&t, "entries moved to scratch names");
	if (fs->nwhiteouts && mpfs_txn_commit(fs, &t))
		fs->opts.log("entries moved to scratch names were not removed at unmount");
	mpfs_txn_destroy(&t);
	pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&fs->commit_mu);
}

void mpfs_fs_close(struct mpfs_fs *fs)
{
	if (!fs)
		return;
	mpfs_fs_finish(fs);
	mpfs_inode_free_all(fs);
	mpfs_snap_put(fs->snap);
	pthread_rwlock_destroy(&fs->lock);
	pthread_mutex_destroy(&fs->commit_mu);
	free(fs->archive);
	free(fs);
}

bool mpfs_fs_readonly(const struct mpfs_fs *fs)
{
	return fs->opts.ro;
}

/* ---- reading ---------------------------------------------------------- */

static bool loc_is_dir(struct mpfs_fs *fs, const struct loc *l)
{
	if (l->in && l->in->origin != ORIGIN_ARCHIVE)
		return false;
	return l->id != NO_ID && mpfs_view_is_dir(fs->snap->v, l->id);
}

static void content_stat(const struct mpfs_fs *fs, const struct content *c, struct stat *st)
{
	const struct stat *a = mpfs_view_archive_stat(fs->snap->v);

	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | (fs->opts.ro ? 0444 : 0644);
	st->st_nlink = 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_size = (off_t)c->len;
	st->st_blocks = (blkcnt_t)((c->len + 511) / 512);
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = a->st_mtim;
}

/* What everyone but the writers sees of in: its content, or the archive's. */
static bool others_see_content(const struct inode *in)
{
	if (!in->c)
		return false;
	if (in->origin != ORIGIN_ARCHIVE || in->unlinked)
		return true;
	/* Content whose commit failed stays the writer's; others read the
	 * archive, which is what the failed commit left. */
	return in->dirty && !(in->err && in->tried == in->seq);
}

static int stat_loc(struct mpfs_fs *fs, const struct loc *l, struct stat *st)
{
	int rc;

	if (l->in && others_see_content(l->in)) {
		content_stat(fs, l->in->c, st);
		return 0;
	}
	if (l->id == NO_ID)
		return -ENOENT;
	if ((rc = mpfs_view_stat(fs->snap->v, l->id, st)) == 0 && !fs->opts.ro)
		st->st_mode |= S_IWUSR;
	return rc;
}

int mpfs_fs_getattr(struct mpfs_fs *fs, const char *path, struct stat *st)
{
	struct loc l;
	int rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((rc = mpfs_resolve(fs, path, &l, NULL)) == 0)
		rc = stat_loc(fs, &l, st);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_readdir(struct mpfs_fs *fs, const char *path,
		    int (*fill)(void *ctx, const char *name, bool dir), void *ctx)
{
	struct loc l;
	uint32_t n, child;
	int rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((rc = mpfs_resolve(fs, path, &l, NULL)))
		goto out;
	if (!loc_is_dir(fs, &l)) {
		rc = -ENOTDIR;
		goto out;
	}
	n = mpfs_view_nchildren(fs->snap->v, l.id);
	for (uint32_t i = 0; i < n; i++) {
		const char *name = mpfs_view_child(fs->snap->v, l.id, i, &child);
		struct inode *k = l.in ? mpfs_inode_kid(l.in, name) : NULL;
		if (k && (k->whiteout || k->origin != ORIGIN_ARCHIVE))
			continue; /* hidden, or listed below */
		if (fill(ctx, name, mpfs_view_is_dir(fs->snap->v, child)))
			goto out;
	}
	/* Files that exist only here: new, not yet valid, or scratch. */
	for (struct inode *k = l.in ? l.in->kids : NULL; k; k = k->next)
		if (k->origin != ORIGIN_ARCHIVE && fill(ctx, k->name, false))
			break;
out:
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

static struct handle *handle_of(uint64_t fh)
{
	return (struct handle *)(uintptr_t)fh;
}

long mpfs_fs_read(struct mpfs_fs *fs, uint64_t fh, char *buf, size_t size, uint64_t off)
{
	struct inode *in = handle_of(fh)->in;
	bool writer = handle_of(fh)->writer;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	if (in->c && (writer || others_see_content(in)))
		rc = mpfs_content_read(in->c, buf, size, off);
	else if (mpfs_inode_id(in) != NO_ID)
		rc = mpfs_view_read(fs->snap->v, in->id, buf, size, off);
	else
		rc = 0; /* a new file the last writer left empty */
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

long mpfs_fs_getxattr(struct mpfs_fs *fs, const char *path, const char *name, char *buf,
		      size_t size)
{
	struct loc l;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((rc = mpfs_resolve(fs, path, &l, NULL)) == 0)
		rc = l.id != NO_ID ? mpfs_view_getxattr(fs->snap->v, l.id, name, buf, size)
				   : -ENODATA;
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

long mpfs_fs_listxattr(struct mpfs_fs *fs, const char *path, char *buf, size_t size)
{
	struct loc l;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((rc = mpfs_resolve(fs, path, &l, NULL)) == 0)
		rc = l.id != NO_ID ? mpfs_view_listxattr(fs->snap->v, l.id, buf, size) : 0;
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

/* ---- content and commit ----------------------------------------------- */

/* The largest content the file can hold (EFBIG beyond). */
static uint64_t size_max(struct mpfs_fs *fs, const struct inode *in)
{
	uint32_t id = mpfs_inode_id(in);

	if (id != NO_ID)
		return mpfs_view_node(fs->snap->v, id)->kind == MPFS_N_ARRAY ? MPFS_NPY_FILE_MAX
									     : MPFS_TEXT_MAX;
	return mpfs_edit_array_name(fs, in->name) ? MPFS_NPY_FILE_MAX : MPFS_TEXT_MAX;
}

/* Gives in content to edit, if it has none: the archive entry's bytes. */
static int own_content(struct mpfs_fs *fs, struct inode *in)
{
	uint32_t id = mpfs_inode_id(in);
	struct stat st;
	int rc;

	if (in->c)
		return 0;
	if (id == NO_ID) {
		in->c = mpfs_content_new(NULL, 0, 0);
	} else {
		if ((rc = mpfs_view_stat(fs->snap->v, id, &st)))
			return rc;
		in->c = mpfs_content_new(fs->snap, id, (uint64_t)st.st_size);
	}
	return in->c ? 0 : -ENOMEM;
}

static void changed(struct mpfs_fs *fs, const char *path)
{
	if (fs->opts.changed)
		fs->opts.changed(path);
}

/* True if entry id keeps its value when emptied: anything but a string,
 * a bin or an ext has no empty value. */
static bool empty_refused(struct mpfs_fs *fs, uint32_t id)
{
	const struct mpfs_node *n = mpfs_view_node(fs->snap->v, id);

	if (n->kind == MPFS_N_BYTES)
		return false;
	return !(n->kind == MPFS_N_TEXT && (n->val->type == MPFS_STR || n->val->type == MPFS_BIN));
}

/* After a new file's key went in: name the inode as the view names the key
 * (the last of its map), which can differ from the name it was created
 * under (an escaped name, an integer key). */
static void adopt_new_key(struct mpfs_fs *fs, struct inode *in)
{
	uint32_t dir = mpfs_inode_id(in->parent), n, child;
	const char *name;

	in->origin = ORIGIN_ARCHIVE;
	if (dir == NO_ID || !(n = mpfs_view_nchildren(fs->snap->v, dir)))
		return;
	name = mpfs_view_child(fs->snap->v, dir, n - 1, &child);
	if (strcmp(name, in->name))
		mpfs_inode_move(in, in->parent, name);
	mpfs_inode_rebind(fs, in);
}

/* Adds to t the edit that stores in's content (fs->lock held, as reader
 * at least). */
static int prepare(struct mpfs_fs *fs, struct inode *in, uint32_t id, const char *path,
		   struct txn *t)
{
	const uint8_t *data;
	void *cookie;
	int rc;

	/* Big arrays edited in place stream from disk. */
	if (id != NO_ID && in->c->len > MPFS_FLAT_MEM_MAX &&
	    (rc = mpfs_edit_payload(fs, t, id, in->c)) != 0)
		return rc > 0 ? 0 : rc;
	if ((rc = mpfs_content_flatten(fs, in->c, &data, &cookie)))
		return rc;
	if (id != NO_ID)
		rc = mpfs_edit_replace(fs, t, id, data, (size_t)in->c->len, path);
	else if (in->parent && mpfs_inode_id(in->parent) != NO_ID)
		rc = mpfs_edit_insert(fs, t, mpfs_inode_id(in->parent), in->name, data,
				      (size_t)in->c->len, path);
	else
		rc = -ENOENT;
	mpfs_content_unflatten(data, in->c->len, cookie);
	return rc;
}

/* Commits in's content if it changed. last: the last writer is closing, so
 * an empty file stores an empty value where one exists. Holds commit_mu
 * and fs->lock as writer (released during the commit). */
static int commit_inode(struct mpfs_fs *fs, struct inode *in, bool last)
{
	char path[PATH_MAX];
	uint64_t seq = in->seq;
	uint32_t id = mpfs_inode_id(in);
	struct txn t;
	int rc;

	if (in->origin == ORIGIN_SCRATCH || in->unlinked || !in->c)
		return 0;
	if (!in->dirty)
		return in->err;
	if (in->err && in->tried == in->seq && in->err == -EINVAL)
		return in->err; /* refused, and nothing written since */
	if (in->c->len == 0 && (!last || id == NO_ID))
		return 0; /* emptied by a truncation: the content comes next */
	if ((rc = mpfs_inode_path(in, path, sizeof(path))))
		return rc;
	if (in->c->len == 0 && empty_refused(fs, id)) {
		fs->opts.log("%s: closed empty: a number or bool has no empty value; kept", path);
		mpfs_inode_drop_content(fs, in);
		changed(fs, path);
		return 0;
	}
	/* Someone else's archive is not read, let alone overwritten. */
	if (!mpfs_commit_unchanged(fs->archive, &fs->ident)) {
		fs->opts.log("%s: %s", path, MPFS_STALE_MSG);
		in->tried = seq;
		in->err = -ESTALE;
		changed(fs, path);
		return -ESTALE;
	}
	mpfs_txn_init(&t, path);
	in->busy++;
	/* Encoding reads only the content and the snapshot (which only a
	 * commit changes, and commit_mu keeps those out): other readers go on
	 * meanwhile; writers of this file wait. */
	pthread_rwlock_unlock(&fs->lock);
	pthread_rwlock_rdlock(&fs->lock);
	seq = in->seq;
	rc = in->c && !in->unlinked ? prepare(fs, in, id, path, &t) : -EAGAIN;
	pthread_rwlock_unlock(&fs->lock);
	pthread_rwlock_wrlock(&fs->lock);
	if (rc == -EAGAIN) { /* the last writer dropped it meanwhile */
		in->busy--;
		mpfs_txn_destroy(&t);
		return 0;
	}
	in->tried = seq;
	if (rc == 0)
		rc = mpfs_txn_commit(fs, &t);
	in->busy--;
	mpfs_txn_destroy(&t);
	if (rc) {
		in->err = rc;
		changed(fs, path); /* others read the archive again */
		return rc;
	}
	in->err = 0;
	if (in->origin == ORIGIN_NEW)
		adopt_new_key(fs, in);
	if (in->seq == seq) {
		in->dirty = false;
		if (!in->nwriters)
			mpfs_inode_drop_content(fs, in);
	}
	changed(fs, path);
	return 0;
}

/* ---- opening, writing, closing ---------------------------------------- */

/* Makes the inode of a new file named by path (l: its directory). */
static int create_inode(struct mpfs_fs *fs, const char *path, const struct loc *l, int flags,
			struct inode **out)
{
	const char *name = mpfs_path_base(path);
	bool scratch = mpfs_fs_is_scratch(name);
	struct loc dl = {.in = l->dir_in, .id = l->dir_id};
	char dpath[PATH_MAX];
	struct inode *dir, *in;
	uint32_t same;

	if (!loc_is_dir(fs, &dl))
		return -ENOTDIR;
	/* Lists and csr_matrix directories have fixed members. */
	if (mpfs_view_node(fs->snap->v, l->dir_id)->kind != MPFS_N_MAP && !scratch)
		return -EPERM;
	mpfs_path_parent(path, dpath, sizeof(dpath));
	if (!(dir = mpfs_inode_at(fs, dpath, &dl)))
		return -ENOMEM;
	/* A name that decodes to a key the map holds is that key. */
	same = mpfs_edit_same_key(fs, l->dir_id, name);
	if (same != NO_ID) {
		if (flags & O_EXCL)
			return -EEXIST;
		uint32_t n = mpfs_view_nchildren(fs->snap->v, l->dir_id), child = NO_ID;
		for (uint32_t i = 0; i < n && child != same; i++)
			name = mpfs_view_child(fs->snap->v, l->dir_id, i, &child);
		in = mpfs_inode_kid(dir, name);
		if (in && in->whiteout)
			mpfs_whiteout_del(fs, in);
		else if (!in && !(in = mpfs_inode_new(fs, dir, name, ORIGIN_ARCHIVE)))
			return -ENOMEM;
		*out = in;
		return 0;
	}
	in = mpfs_inode_kid(dir, name);
	if (in && in->whiteout) {
		/* The save after a backup rename: the new file replaces the
		 * hidden value in place. */
		mpfs_whiteout_del(fs, in);
		mpfs_inode_drop_content(fs, in);
		if (!(in->c = mpfs_content_new(NULL, 0, 0)))
			return -ENOMEM;
		in->dirty = true;
		in->seq++;
	} else {
		in = mpfs_inode_new(fs, dir, name, scratch ? ORIGIN_SCRATCH : ORIGIN_NEW);
		if (!in || !(in->c = mpfs_content_new(NULL, 0, 0))) {
			if (in)
				mpfs_inode_unlink(fs, in);
			mpfs_inode_gc(fs, dir);
			return -ENOMEM;
		}
	}
	*out = in;
	return 0;
}

int mpfs_fs_open_file(struct mpfs_fs *fs, const char *path, int flags, bool create, uint64_t *fh)
{
	bool wr = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) || create;
	struct handle *h = calloc(1, sizeof(*h));
	struct inode *in = NULL;
	bool missing;
	struct loc l;
	int rc;

	if (!h)
		return -ENOMEM;
	if (wr && fs->opts.ro) {
		free(h);
		return -EROFS;
	}
	if (create)
		pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	rc = mpfs_resolve(fs, path, &l, &missing);
	if (rc == -ENOENT && missing && create) {
		rc = create_inode(fs, path, &l, flags, &in);
	} else if (rc == 0 && create && (flags & O_EXCL)) {
		rc = -EEXIST;
	} else if (rc == 0 && loc_is_dir(fs, &l)) {
		rc = wr ? -EISDIR : 0;
	}
	if (rc == 0 && !in && !(in = mpfs_inode_at(fs, path, &l)))
		rc = -ENOMEM;
	if (rc == 0 && wr && (flags & O_TRUNC) && (in->c || in->origin == ORIGIN_ARCHIVE)) {
		if (!in->c && !(in->c = mpfs_content_new(NULL, 0, 0)))
			rc = -ENOMEM;
		else if (in->c->len || in->origin == ORIGIN_ARCHIVE) {
			rc = mpfs_content_truncate(fs, in->c, 0);
			in->dirty = true;
			in->seq++;
			in->err = 0;
		}
	} else if (rc == 0 && wr) {
		rc = own_content(fs, in);
	}
	if (rc == 0) {
		in->nopen++;
		in->nwriters += wr;
		h->in = in;
		h->writer = wr;
		*fh = (uint64_t)(uintptr_t)h;
	} else {
		free(h);
		if (in)
			mpfs_inode_gc(fs, in);
	}
	pthread_rwlock_unlock(&fs->lock);
	if (create)
		pthread_mutex_unlock(&fs->commit_mu);
	return rc;
}

long mpfs_fs_write(struct mpfs_fs *fs, uint64_t fh, const char *buf, size_t size, uint64_t off)
{
	struct handle *h = handle_of(fh);
	struct inode *in = h->in;
	long rc;

	if (!h->writer)
		return -EBADF;
	pthread_rwlock_wrlock(&fs->lock);
	if (off + size < off || off + size > size_max(fs, in))
		rc = -EFBIG;
	else if ((rc = own_content(fs, in)) == 0)
		rc = mpfs_content_write(fs, in->c, buf, size, off);
	if (rc > 0) {
		in->dirty = h->late = true;
		in->seq++;
		in->err = 0;
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_truncate(struct mpfs_fs *fs, const char *path, uint64_t fh, uint64_t size)
{
	struct inode *in = fh ? handle_of(fh)->in : NULL;
	struct loc l;
	int rc = 0;

	if (fs->opts.ro)
		return -EROFS;
	pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	if (!in && (rc = mpfs_resolve(fs, path, &l, NULL)) == 0) {
		if (loc_is_dir(fs, &l))
			rc = -EISDIR;
		else if (!(in = mpfs_inode_at(fs, path, &l)))
			rc = -ENOMEM;
	}
	if (rc == 0 && size > size_max(fs, in))
		rc = -EFBIG;
	if (rc == 0 && (rc = own_content(fs, in)) == 0 &&
	    (rc = mpfs_content_truncate(fs, in->c, size)) == 0) {
		in->dirty = true;
		in->seq++;
		in->err = 0;
		/* truncate(2) of a file nobody writes: committed at once, as a
		 * close would. */
		if (!fh && !in->nwriters && in->origin == ORIGIN_ARCHIVE) {
			in->busy++;
			rc = commit_inode(fs, in, true);
			in->busy--;
			if (rc || in->dirty) {
				mpfs_inode_drop_content(fs, in);
				in->err = 0;
			}
		}
	}
	if (in)
		mpfs_inode_gc(fs, in);
	pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&fs->commit_mu);
	return rc;
}

int mpfs_fs_flush(struct mpfs_fs *fs, uint64_t fh)
{
	struct handle *h = handle_of(fh);
	struct inode *in = h->in;
	int rc;

	if (!h->writer)
		return 0; /* readers never commit */
	pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	in->busy++;
	rc = commit_inode(fs, in, false);
	in->busy--;
	if (in->c && in->c->len)
		h->late = false;
	pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&fs->commit_mu);
	return rc;
}

int mpfs_fs_release(struct mpfs_fs *fs, uint64_t fh)
{
	struct handle *h = handle_of(fh);
	struct inode *in = h->in;
	char path[PATH_MAX];

	/* A reader's close waits for no commit. */
	if (h->writer)
		pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	if (h->writer) {
		bool last = in->nwriters == 1;
		/* Writes through a shared mapping can land after the last flush;
		 * and the last close stores an emptied string. */
		if ((h->late || last) && in->dirty) {
			in->busy++;
			int rc = commit_inode(fs, in, last);
			in->busy--;
			if (rc && mpfs_inode_path(in, path, sizeof(path)) == 0)
				fs->opts.log("%s: the last writes were not committed", path);
		}
		if (--in->nwriters == 0 && in->dirty && in->origin == ORIGIN_ARCHIVE) {
			/* Closed with an edit that could not be committed: the
			 * file reads back as the archive holds it. */
			mpfs_inode_drop_content(fs, in);
			in->err = 0;
		} else if (in->nwriters == 0 && in->origin == ORIGIN_NEW && in->err) {
			/* A new file whose content was refused: empty, listed. */
			mpfs_content_truncate(fs, in->c, 0);
			in->dirty = false;
			in->err = 0;
		} else if (in->nwriters == 0 && !in->dirty && in->origin == ORIGIN_ARCHIVE) {
			mpfs_inode_drop_content(fs, in);
		}
	}
	in->nopen--;
	mpfs_inode_gc(fs, in);
	pthread_rwlock_unlock(&fs->lock);
	if (h->writer)
		pthread_mutex_unlock(&fs->commit_mu);
	free(h);
	return 0;
}

/* ---- namespace -------------------------------------------------------- */

/* Open handles of an entry that goes away keep reading what it held. */
static int keep_for_handles(struct mpfs_fs *fs, struct inode *in)
{
	return in && in->nopen ? own_content(fs, in) : 0;
}

/* True if the directory at l shows any entry. */
static bool dir_shows_entries(struct mpfs_fs *fs, const struct loc *l)
{
	uint32_t n = mpfs_view_nchildren(fs->snap->v, l->id), child;

	for (uint32_t i = 0; i < n; i++) {
		const char *name = mpfs_view_child(fs->snap->v, l->id, i, &child);
		struct inode *k = l->in ? mpfs_inode_kid(l->in, name) : NULL;
		if (!k || !k->whiteout)
			return true;
	}
	for (struct inode *k = l->in ? l->in->kids : NULL; k; k = k->next)
		if (k->origin != ORIGIN_ARCHIVE)
			return true;
	return false;
}

/* Runs a one-edit transaction prepared by the caller, pinning in. */
static int run(struct mpfs_fs *fs, struct txn *t, struct inode *in)
{
	int rc;

	if (in)
		in->busy++;
	rc = mpfs_txn_commit(fs, t);
	if (in)
		in->busy--;
	return rc;
}

int mpfs_fs_unlink(struct mpfs_fs *fs, const char *path)
{
	struct txn t;
	struct loc l;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	mpfs_txn_init(&t, path);
	pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	if ((rc = mpfs_resolve(fs, path, &l, NULL)))
		goto out;
	if (loc_is_dir(fs, &l)) {
		rc = -EISDIR;
	} else if (l.id == NO_ID) { /* lives here only */
		mpfs_inode_unlink(fs, l.in);
	} else if ((rc = mpfs_edit_delete(fs, &t, l.dir_id, l.id)) == 0 &&
		   (rc = keep_for_handles(fs, l.in)) == 0 && (rc = run(fs, &t, l.in)) == 0 &&
		   l.in) {
		mpfs_inode_unlink(fs, l.in);
	}
	if (rc && l.in)
		mpfs_inode_gc(fs, l.in);
out:
	pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&fs->commit_mu);
	mpfs_txn_destroy(&t);
	return rc;
}

int mpfs_fs_mkdir(struct mpfs_fs *fs, const char *path)
{
	bool missing;
	struct txn t;
	struct loc l;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	mpfs_txn_init(&t, path);
	pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	rc = mpfs_resolve(fs, path, &l, &missing);
	if (rc == 0 || (missing && l.dir_in && mpfs_inode_kid(l.dir_in, mpfs_path_base(path))))
		rc = -EEXIST; /* also over a hidden file: its key still exists */
	else if (rc == -ENOENT && missing) {
		struct loc dl = {.in = l.dir_in, .id = l.dir_id};
		if (!loc_is_dir(fs, &dl))
			rc = -ENOTDIR;
		else if (mpfs_edit_same_key(fs, l.dir_id, mpfs_path_base(path)) != NO_ID)
			rc = -EEXIST;
		else if ((rc = mpfs_edit_mkdir(fs, &t, l.dir_id, mpfs_path_base(path))) == 0)
			rc = run(fs, &t, NULL);
	}
	pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&fs->commit_mu);
	mpfs_txn_destroy(&t);
	return rc;
}

int mpfs_fs_rmdir(struct mpfs_fs *fs, const char *path)
{
	struct txn t;
	struct loc l;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	mpfs_txn_init(&t, path);
	pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	if ((rc = mpfs_resolve(fs, path, &l, NULL)))
		goto out;
	if (!loc_is_dir(fs, &l))
		rc = -ENOTDIR;
	else if (dir_shows_entries(fs, &l))
		rc = -ENOTEMPTY;
	else if (l.id == MPFS_ROOT_ID)
		rc = -EBUSY;
	else if ((rc = mpfs_edit_delete(fs, &t, l.dir_id, l.id)) == 0 &&
		 (rc = run(fs, &t, l.in)) == 0 && l.in)
		mpfs_inode_unlink(fs, l.in);
out:
	pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&fs->commit_mu);
	mpfs_txn_destroy(&t);
	return rc;
}

static bool has_whiteout(const struct inode *in)
{
	for (const struct inode *k = in ? in->kids : NULL; k; k = k->next)
		if (k->whiteout || has_whiteout(k))
			return true;
	return false;
}

/* Moves inode in to path to (whose directory is at tl), replacing what
 * sits there in memory. */
static int move_to(struct mpfs_fs *fs, struct inode *in, const char *to, const struct loc *tl)
{
	struct loc dl = {.in = tl->dir_in, .id = tl->dir_id};
	char dpath[PATH_MAX];
	struct inode *dir, *old;
	int rc;

	mpfs_path_parent(to, dpath, sizeof(dpath));
	if (!(dir = mpfs_inode_at(fs, dpath, &dl)))
		return -ENOMEM;
	const char *name = tl->name[0] ? tl->name : mpfs_path_base(to);
	old = mpfs_inode_kid(dir, name);
	if (old && old != in)
		mpfs_inode_unlink(fs, old);
	if ((rc = mpfs_inode_move(in, dir, name)))
		return rc;
	mpfs_inode_rebind(fs, in);
	return 0;
}

/* Renames a file that lives here (new or scratch). */
static int rename_here(struct mpfs_fs *fs, struct inode *in, const char *from, const char *to,
		       const struct loc *tl, bool to_scratch)
{
	const uint8_t *data;
	void *cookie;
	struct txn t;
	int rc;

	if (to_scratch || (tl->id == NO_ID && in->c->len == 0)) {
		/* Nothing to store yet: the file just moves. */
		in->origin = to_scratch ? ORIGIN_SCRATCH : in->origin;
		return move_to(fs, in, to, tl);
	}
	/* Onto a real name: its content is stored there. */
	struct loc dl = {.in = tl->dir_in, .id = tl->dir_id};
	if (!loc_is_dir(fs, &dl))
		return -ENOTDIR;
	if ((rc = mpfs_content_flatten(fs, in->c, &data, &cookie)))
		return rc;
	mpfs_txn_init(&t, to);
	if (tl->id != NO_ID)
		rc = mpfs_edit_replace(fs, &t, tl->id, data, (size_t)in->c->len, to);
	else
		rc = mpfs_edit_insert(fs, &t, tl->dir_id, mpfs_path_base(to), data,
				      (size_t)in->c->len, to);
	mpfs_content_unflatten(data, in->c->len, cookie);
	if (rc == 0 && (rc = keep_for_handles(fs, tl->in)) == 0)
		rc = run(fs, &t, in);
	mpfs_txn_destroy(&t);
	if (rc)
		return rc;
	bool inserted = tl->id == NO_ID;
	in->origin = ORIGIN_ARCHIVE;
	in->dirty = false;
	in->err = 0;
	if (!in->nwriters)
		mpfs_inode_drop_content(fs, in);
	if ((rc = move_to(fs, in, to, tl)))
		return rc;
	if (inserted) {
		in->origin = ORIGIN_NEW;
		adopt_new_key(fs, in);
	}
	changed(fs, to);
	(void)from;
	return 0;
}

/* Renames an archive entry to a scratch name: its content goes with the
 * file (to memory), and the entry is hidden until the next commit. */
static int rename_to_scratch(struct mpfs_fs *fs, const char *from, const struct loc *fl,
			     const char *to, const struct loc *tl)
{
	struct inode *in, *w;
	int rc;

	if (loc_is_dir(fs, fl))
		return -EXDEV;
	if (mpfs_view_node(fs->snap->v, fl->dir_id)->kind == MPFS_N_CSR)
		return -EPERM;
	if (!(in = mpfs_inode_at(fs, from, fl)))
		return -ENOMEM;
	if ((rc = own_content(fs, in)))
		goto out_gc;
	w = mpfs_inode_new(fs, in->parent, in->name, ORIGIN_ARCHIVE);
	if (!w) {
		rc = -ENOMEM;
		goto out_gc;
	}
	if ((rc = mpfs_whiteout_add(fs, w))) {
		mpfs_inode_unlink(fs, w);
		goto out_gc;
	}
	/* The moved file is no longer the entry: unbind it first, then put the
	 * whiteout (bound to the entry) in its place. */
	in->origin = ORIGIN_SCRATCH;
	in->id = NO_ID;
	if ((rc = move_to(fs, in, to, tl)) == 0) {
		mpfs_inode_rebind(fs, w);
		return 0;
	}
	mpfs_whiteout_del(fs, w);
	mpfs_inode_unlink(fs, w);
out_gc:
	mpfs_inode_gc(fs, in);
	return rc;
}

int mpfs_fs_rename(struct mpfs_fs *fs, const char *from, const char *to, bool noreplace)
{
	struct loc fl, tl;
	bool missing, texists;
	struct txn t;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	mpfs_txn_init(&t, from);
	pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	if ((rc = mpfs_resolve(fs, from, &fl, NULL)))
		goto out;
	rc = mpfs_resolve(fs, to, &tl, &missing);
	if (rc && !(rc == -ENOENT && missing))
		goto out;
	texists = rc == 0;
	rc = 0;
	if (!texists && tl.dir_id != NO_ID) { /* an escaped name of a key */
		uint32_t same = mpfs_edit_same_key(fs, tl.dir_id, mpfs_path_base(to));
		if (same != NO_ID) {
			tl.id = same;
			texists = true;
		}
	}
	if (texists && noreplace) {
		rc = -EEXIST;
		goto out;
	}
	/* Back onto a hidden entry's name: it replaces that entry in place. */
	struct inode *w =
		!texists && tl.dir_in ? mpfs_inode_kid(tl.dir_in, mpfs_path_base(to)) : NULL;
	if (w && w->whiteout) {
		mpfs_whiteout_del(fs, w);
		tl.in = w;
		tl.id = mpfs_inode_id(w);
		texists = tl.id != NO_ID;
	} else {
		w = NULL;
	}
	if (texists && ((fl.in && fl.in == tl.in) || (fl.id != NO_ID && fl.id == tl.id)))
		goto out_rehide; /* the same file */
	bool fdir = loc_is_dir(fs, &fl), tdir = texists && loc_is_dir(fs, &tl);
	if (texists && fdir != tdir) {
		rc = tdir ? -EISDIR : -ENOTDIR;
		goto out_rehide;
	}
	if (tdir && dir_shows_entries(fs, &tl)) {
		rc = -ENOTEMPTY;
		goto out_rehide;
	}
	bool to_scratch = tl.id == NO_ID && mpfs_fs_is_scratch(mpfs_path_base(to));
	if (fl.id == NO_ID) {
		rc = rename_here(fs, fl.in, from, to, &tl, to_scratch);
		goto out_rehide;
	}
	if (to_scratch) {
		rc = rename_to_scratch(fs, from, &fl, to, &tl);
		goto out_rehide;
	}
	/* Archive entry to a real name. A directory's bytes move as they
	 * are: entries hidden inside it must be gone from the archive first. */
	if (fdir && has_whiteout(fl.in)) {
		if ((rc = run(fs, &t, NULL)) || (rc = mpfs_resolve(fs, from, &fl, NULL)) ||
		    (rc = mpfs_resolve(fs, to, &tl, &missing)) < 0) {
			if (rc != -ENOENT || !missing)
				goto out_rehide;
		}
	}
	if (tl.dir_id == NO_ID) {
		rc = -ENOTDIR;
		goto out_rehide;
	}
	if ((rc = mpfs_edit_move(fs, &t, fl.dir_id, fl.id, tl.dir_id, tl.id, mpfs_path_base(to))) ||
	    (rc = keep_for_handles(fs, tl.in)))
		goto out_rehide;
	if (fl.in)
		fl.in->busy++;
	if (tl.in)
		tl.in->busy++;
	rc = mpfs_txn_commit(fs, &t);
	if (tl.in)
		tl.in->busy--;
	if (fl.in)
		fl.in->busy--;
	if (rc == 0 && fl.in)
		rc = move_to(fs, fl.in, to, &tl);
	else if (rc == 0 && tl.in)
		mpfs_inode_unlink(fs, tl.in);
	if (fl.in)
		mpfs_inode_gc(fs, fl.in);
out_rehide:
	if (rc && w && !w->unlinked && mpfs_whiteout_add(fs, w))
		fs->opts.log("%s: could not hide it again", to);
out:
	pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&fs->commit_mu);
	mpfs_txn_destroy(&t);
	return rc;
}
