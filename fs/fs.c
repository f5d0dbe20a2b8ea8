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
#include <sys/uio.h>
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
		if (mpfs_file_commit(fs, dirty[i], true) &&
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
	if (in->origin != ORIGIN_ARCHIVE || in->unlinked || in->whiteout)
		return true; /* nothing else to see */
	/* Content whose commit failed stays the writer's; others read the
	 * archive, which is what the failed commit left. */
	return in->dirty && !(in->err && in->tried == in->seq);
}

/* True if l is a pickled object array of the archive (NAME.pickle): shown
 * read-only, never written (EPERM); it can be removed or replaced. */
static bool pickled(struct mpfs_fs *fs, const struct loc *l)
{
	if (l->id == NO_ID || (l->in && l->in->origin != ORIGIN_ARCHIVE))
		return false;
	return mpfs_view_node(fs->snap->v, l->id)->kind == MPFS_N_PICKLE;
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
	if ((rc = mpfs_view_stat(fs->snap->v, l->id, st)) == 0 && !fs->opts.ro && !pickled(fs, l))
		st->st_mode |= S_IWUSR;
	return mpfs_view_err(fs, rc);
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

/* Lists directory path from position pos on: position i is the archive's
 * i-th entry, shown or not; the files that exist only here follow, in list
 * order. fill gets each entry's attributes as getattr gives them (attrs),
 * or only its file type, and the position after it. */
static int list_dir(struct mpfs_fs *fs, const char *path, uint64_t pos, bool attrs,
		    int (*fill)(void *ctx, const char *name, const struct stat *st, uint64_t next),
		    void *ctx)
{
	struct loc l, kl;
	struct stat st;
	uint32_t n, child;
	uint64_t at;
	int rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((rc = mpfs_resolve(fs, path, &l, NULL)))
		goto out;
	if (!mpfs_loc_is_dir(fs, &l)) {
		rc = -ENOTDIR;
		goto out;
	}
	n = mpfs_view_nchildren(fs->snap->v, l.id);
	for (at = pos; at < n; at++) {
		const char *name = mpfs_view_child(fs->snap->v, l.id, (uint32_t)at, &child);
		struct inode *k = l.in ? mpfs_inode_kid(l.in, name) : NULL;
		if (k && ((k->whiteout && !k->c) || k->origin != ORIGIN_ARCHIVE))
			continue; /* hidden, or listed below */
		kl = (struct loc){.in = k, .id = child};
		st = (struct stat){.st_mode = mpfs_view_is_dir(fs->snap->v, child) ? S_IFDIR
										   : S_IFREG};
		if ((attrs && (rc = stat_loc(fs, &kl, &st))) || fill(ctx, name, &st, at + 1))
			goto out;
	}
	/* Files that exist only here: new, not yet valid, or scratch. */
	at = n;
	for (struct inode *k = l.in ? l.in->kids : NULL; k; k = k->next) {
		if (k->origin == ORIGIN_ARCHIVE || at++ < pos)
			continue;
		kl = (struct loc){.in = k, .id = mpfs_inode_id(k)};
		st = (struct stat){.st_mode = S_IFREG};
		if ((attrs && (rc = stat_loc(fs, &kl, &st))) || fill(ctx, k->name, &st, at))
			break;
	}
out:
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

struct names {
	int (*fill)(void *ctx, const char *name, bool dir);
	void *ctx;
};

static int fill_name(void *ctx, const char *name, const struct stat *st, uint64_t next)
{
	struct names *n = ctx;

	(void)next;
	return n->fill(n->ctx, name, S_ISDIR(st->st_mode));
}

int mpfs_fs_readdir(struct mpfs_fs *fs, const char *path,
		    int (*fill)(void *ctx, const char *name, bool dir), void *ctx)
{
	struct names n = {fill, ctx};
	return list_dir(fs, path, 0, false, fill_name, &n);
}

int mpfs_fs_readdir_from(struct mpfs_fs *fs, const char *path, uint64_t pos,
			 int (*fill)(void *ctx, const char *name, const struct stat *st,
				     uint64_t next),
			 void *ctx)
{
	return list_dir(fs, path, pos, true, fill, ctx);
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
		rc = mpfs_view_err(fs, (int)mpfs_view_read(fs->snap->v, in->id, buf, size, off));
	else
		rc = 0; /* a new file the last writer left empty */
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

/* A descriptor of the current archive that stays open as long as h: one
 * copy per snapshot the handle read from; -EAGAIN when it holds too many
 * (the caller copies instead). Called with fs->lock held. */
static int handle_fd(struct mpfs_fs *fs, struct handle *h)
{
	int fd = -EAGAIN;

	pthread_mutex_lock(&h->mu);
	if (h->nfds && h->fd_gen == fs->snap->gen) {
		fd = h->fds[h->nfds - 1];
	} else if (h->nfds < HANDLE_FDS) {
		fd = fcntl(mpfs_view_fd(fs->snap->v), F_DUPFD_CLOEXEC, 0);
		if (fd >= 0) {
			h->fds[h->nfds++] = fd;
			h->fd_gen = fs->snap->gen;
		} else {
			fd = -EAGAIN; /* out of descriptors: copy */
		}
	}
	pthread_mutex_unlock(&h->mu);
	return fd;
}

int mpfs_fs_read_spans(struct mpfs_fs *fs, uint64_t fh, size_t size, uint64_t off,
		       char hdr[MPFS_SPAN_HDR_MAX], struct mpfs_span sp[2])
{
	struct handle *h = handle_of(fh);
	struct inode *in = h->in;
	int rc, fd;

	pthread_rwlock_rdlock(&fs->lock);
	if (in->c && (h->writer || others_see_content(in)))
		rc = -EAGAIN; /* pending content: memory */
	else if (mpfs_inode_id(in) == NO_ID)
		rc = 0; /* a new file the last writer left empty */
	else
		rc = mpfs_view_spans(fs->snap->v, in->id, size, off, hdr, sp, false);
	for (int i = 0; i < rc; i++) {
		if (sp[i].mem)
			continue;
		if ((fd = handle_fd(fs, h)) < 0) {
			rc = fd;
			break;
		}
		sp[i].fd = fd;
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

/* Writes spans of memory into pipe: those that last by reference. */
static long to_pipe(int pipe, const struct mpfs_span *sp, int n)
{
	long total = 0;

	for (int i = 0; i < n; i++)
		if (!sp[i].mem)
			return -EAGAIN; /* the archive's: read_spans serves those */
	for (int i = 0; i < n; i++) {
		struct iovec iov = {(void *)sp[i].mem, sp[i].len};

		while (iov.iov_len) {
			ssize_t w = sp[i].lasting ? vmsplice(pipe, &iov, 1, SPLICE_F_NONBLOCK)
						  : write(pipe, iov.iov_base, iov.iov_len);
			if (w <= 0)
				return w == 0 || errno == EAGAIN ? -EAGAIN : -errno;
			iov.iov_base = (char *)iov.iov_base + w;
			iov.iov_len -= (size_t)w;
			total += w;
		}
	}
	return total;
}

long mpfs_fs_read_pipe(struct mpfs_fs *fs, uint64_t fh, size_t size, uint64_t off, int pipe)
{
	struct handle *h = handle_of(fh);
	struct inode *in = h->in;
	char hdr[MPFS_SPAN_HDR_MAX];
	struct mpfs_span sp[2];
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((in->c && (h->writer || others_see_content(in))) || mpfs_inode_id(in) == NO_ID)
		rc = -EAGAIN; /* edited or new: mpfs_fs_read */
	else if ((rc = mpfs_view_spans(fs->snap->v, in->id, size, off, hdr, sp, true)) >= 0)
		rc = to_pipe(pipe, sp, (int)rc); /* while the view, and so the buffer, lives */
	else if (rc != -EAGAIN)
		rc = mpfs_view_err(fs, (int)rc);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

/* ---- reading without a handle (read-only mounts) ---------------------- */

/* The file at path, for a read without a handle: its inode (or NULL) and
 * entry. Only a read-only mount reads so: its snapshot is never replaced,
 * so the view's descriptor and buffers outlive every reply. Called with
 * fs->lock held. */
static int path_file(struct mpfs_fs *fs, const char *path, struct loc *l)
{
	int rc;

	if (!fs->opts.ro)
		return -EBADF;
	if ((rc = mpfs_resolve(fs, path, l, NULL)))
		return rc;
	return mpfs_loc_is_dir(fs, l) ? -EISDIR : 0;
}

long mpfs_fs_read_path(struct mpfs_fs *fs, const char *path, char *buf, size_t size, uint64_t off)
{
	struct loc l;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((rc = path_file(fs, path, &l)) == 0 && l.in && others_see_content(l.in))
		rc = mpfs_content_read(l.in->c, buf, size, off);
	else if (rc == 0 && l.id != NO_ID)
		rc = mpfs_view_err(fs, (int)mpfs_view_read(fs->snap->v, l.id, buf, size, off));
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_read_spans_path(struct mpfs_fs *fs, const char *path, size_t size, uint64_t off,
			    char hdr[MPFS_SPAN_HDR_MAX], struct mpfs_span sp[2])
{
	struct loc l;
	int rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((rc = path_file(fs, path, &l)) == 0 && l.in && others_see_content(l.in))
		rc = -EAGAIN; /* content here: memory */
	else if (rc == 0 && l.id != NO_ID)
		rc = mpfs_view_spans(fs->snap->v, l.id, size, off, hdr, sp, false);
	for (int i = 0; i < rc; i++)
		if (!sp[i].mem)
			sp[i].fd = mpfs_view_fd(fs->snap->v); /* open until mpfs_fs_close */
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

long mpfs_fs_read_pipe_path(struct mpfs_fs *fs, const char *path, size_t size, uint64_t off,
			    int pipe)
{
	char hdr[MPFS_SPAN_HDR_MAX];
	struct mpfs_span sp[2];
	struct loc l;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((rc = path_file(fs, path, &l)))
		goto out;
	if ((l.in && others_see_content(l.in)) || l.id == NO_ID)
		rc = -EAGAIN;
	else if ((rc = mpfs_view_spans(fs->snap->v, l.id, size, off, hdr, sp, true)) >= 0)
		rc = to_pipe(pipe, sp, (int)rc);
	else if (rc != -EAGAIN)
		rc = mpfs_view_err(fs, (int)rc);
out:
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

	if (!mpfs_loc_is_dir(fs, &dl))
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
		/* The save after a backup rename: the new file will replace the
		 * hidden value in place, once it holds something. Until then
		 * the value stays hidden (and goes with the next commit). */
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
	pthread_mutex_init(&h->mu, NULL);
	if (create)
		pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	rc = mpfs_resolve(fs, path, &l, &missing);
	if (rc == -ENOENT && missing && create) {
		rc = create_inode(fs, path, &l, flags, &in);
	} else if (rc == 0 && create && (flags & O_EXCL)) {
		rc = -EEXIST;
	} else if (rc == 0 && mpfs_loc_is_dir(fs, &l)) {
		rc = wr ? -EISDIR : 0;
	} else if (rc == 0 && wr && pickled(fs, &l)) {
		rc = -EPERM;
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
		rc = mpfs_file_own(fs, in);
	}
	if (rc == 0) {
		in->nopen++;
		in->nwriters += wr;
		h->in = in;
		h->writer = wr;
		*fh = (uint64_t)(uintptr_t)h;
	} else {
		pthread_mutex_destroy(&h->mu);
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
	if (off + size < off || off + size > mpfs_file_size_max(fs, in))
		rc = -EFBIG;
	else if ((rc = mpfs_file_own(fs, in)) == 0)
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
		if (mpfs_loc_is_dir(fs, &l))
			rc = -EISDIR;
		else if (pickled(fs, &l))
			rc = -EPERM;
		else if (!(in = mpfs_inode_at(fs, path, &l)))
			rc = -ENOMEM;
	}
	if (rc == 0 && size > mpfs_file_size_max(fs, in))
		rc = -EFBIG;
	if (rc == 0 && (rc = mpfs_file_own(fs, in)) == 0 &&
	    (rc = mpfs_content_truncate(fs, in->c, size)) == 0) {
		in->dirty = true;
		in->seq++;
		in->err = 0;
		/* truncate(2) of a file nobody writes: committed at once, as a
		 * close would. */
		if (!fh && !in->nwriters && in->origin == ORIGIN_ARCHIVE && !in->whiteout) {
			in->busy++;
			rc = mpfs_file_commit(fs, in, true);
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
	rc = mpfs_file_commit(fs, in, false);
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
		/* A commit that failed at this close's flush is not tried again
		 * behind the caller's back: close said it failed. */
		int rc = 0;
		if (in->dirty && (h->late || (last && in->tried != in->seq))) {
			in->busy++;
			rc = mpfs_file_commit(fs, in, last);
			in->busy--;
		}
		/* A new file, or one replacing a hidden entry, lives on here
		 * until it holds content that commits. */
		bool pending = in->origin == ORIGIN_NEW || in->whiteout;
		bool drop = --in->nwriters == 0 && in->dirty && !pending &&
			    in->origin == ORIGIN_ARCHIVE;
		/* Refused content was logged as such; anything else (a full
		 * disk) might be taken for pending, unless the log says. */
		bool dropped = drop && in->err != -EINVAL;
		if ((rc || dropped) && mpfs_inode_path(in, path, sizeof(path)) == 0)
			fs->opts.log(dropped ? "%s: closed with an edit that could not be "
					       "committed: dropped (the file reads as the "
					       "archive holds it)"
					     : "%s: the last writes were not committed",
				     path);
		if (drop) {
			/* Closed with an edit that could not be committed: the
			 * file reads back as the archive holds it. */
			mpfs_inode_drop_content(fs, in);
			in->err = 0;
		} else if (in->nwriters == 0 && pending && in->err) {
			/* Its content was refused: empty, listed. */
			mpfs_content_truncate(fs, in->c, 0);
			in->dirty = in->whiteout;
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
	for (unsigned i = 0; i < h->nfds; i++)
		close(h->fds[i]);
	pthread_mutex_destroy(&h->mu);
	free(h);
	return 0;
}
