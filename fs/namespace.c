/* The namespace: unlink, mkdir, rmdir and rename. Each commits at once
 * (under fs->commit_mu), and moves or unlinks the inodes involved, so open
 * handles follow their files. See fs_i.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_i.h"

/* Open handles of an entry that goes away keep reading what it held. */
static int keep_for_handles(struct mpfs_fs *fs, struct inode *in)
{
	return in && in->nopen ? mpfs_file_own(fs, in) : 0;
}

/* True if the directory at l shows any entry. */
static bool dir_shows_entries(struct mpfs_fs *fs, const struct loc *l)
{
	uint32_t n = mpfs_view_nchildren(fs->snap->v, l->id), child;

	for (uint32_t i = 0; i < n; i++) {
		const char *name = mpfs_view_child(fs->snap->v, l->id, i, &child);
		struct inode *k = l->in ? mpfs_inode_kid(l->in, name) : NULL;
		if (!k || !k->whiteout || k->c)
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

/* Every namespace change: read-only mounts refuse it; it holds commit_mu
 * and fs->lock as writer from begin to end, and commits at most one t. */
static int begin(struct mpfs_fs *fs, struct txn *t, const char *what)
{
	if (fs->opts.ro)
		return -EROFS;
	mpfs_txn_init(t, what);
	pthread_mutex_lock(&fs->commit_mu);
	pthread_rwlock_wrlock(&fs->lock);
	return 0;
}

static int end(struct mpfs_fs *fs, struct txn *t, int rc)
{
	pthread_rwlock_unlock(&fs->lock);
	pthread_mutex_unlock(&fs->commit_mu);
	mpfs_txn_destroy(t);
	return rc;
}

int mpfs_fs_unlink(struct mpfs_fs *fs, const char *path)
{
	struct txn t;
	struct loc l;
	int rc;

	if ((rc = begin(fs, &t, path)))
		return rc;
	if ((rc = mpfs_resolve(fs, path, &l, NULL)))
		goto out;
	if (mpfs_loc_is_dir(fs, &l)) {
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
	return end(fs, &t, rc);
}

int mpfs_fs_mkdir(struct mpfs_fs *fs, const char *path)
{
	bool missing;
	struct txn t;
	struct loc l;
	int rc;

	if ((rc = begin(fs, &t, path)))
		return rc;
	rc = mpfs_resolve(fs, path, &l, &missing);
	if (rc == 0 || (missing && l.dir_in && mpfs_inode_kid(l.dir_in, mpfs_path_base(path))))
		rc = -EEXIST; /* also over a hidden file: its key still exists */
	else if (rc == -ENOENT && missing) {
		struct loc dl = {.in = l.dir_in, .id = l.dir_id};
		if (!mpfs_loc_is_dir(fs, &dl))
			rc = -ENOTDIR;
		else if (mpfs_edit_same_key(fs, l.dir_id, mpfs_path_base(path)) != NO_ID)
			rc = -EEXIST;
		else if ((rc = mpfs_edit_mkdir(fs, &t, l.dir_id, mpfs_path_base(path))) == 0)
			rc = run(fs, &t, NULL);
	}
	return end(fs, &t, rc);
}

int mpfs_fs_rmdir(struct mpfs_fs *fs, const char *path)
{
	struct txn t;
	struct loc l;
	int rc;

	if ((rc = begin(fs, &t, path)))
		return rc;
	if ((rc = mpfs_resolve(fs, path, &l, NULL)))
		goto out;
	if (!mpfs_loc_is_dir(fs, &l))
		rc = -ENOTDIR;
	else if (dir_shows_entries(fs, &l))
		rc = -ENOTEMPTY;
	else if (l.id == MPFS_ROOT_ID)
		rc = -EBUSY;
	else if ((rc = mpfs_edit_delete(fs, &t, l.dir_id, l.id)) == 0 &&
		 (rc = run(fs, &t, l.in)) == 0 && l.in)
		mpfs_inode_unlink(fs, l.in);
out:
	return end(fs, &t, rc);
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
	/* By path: a commit since tl was resolved may have freed its inodes. */
	struct loc dl = {.in = NULL, .id = NO_ID};
	char dpath[PATH_MAX];
	struct inode *dir, *old;
	int rc;

	mpfs_path_parent(to, dpath, sizeof(dpath));
	if (!(dir = mpfs_inode_at(fs, dpath, &dl)))
		return -ENOMEM;
	const char *name = tl->name[0] ? tl->name : mpfs_path_base(to);
	dir->busy++; /* unlinking what sits there must not free dir */
	old = mpfs_inode_kid(dir, name);
	if (old && old != in)
		mpfs_inode_unlink(fs, old);
	rc = mpfs_inode_move(in, dir, name);
	dir->busy--;
	if (rc)
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

	if (to_scratch || (tl->id == NO_ID && (in->origin == ORIGIN_NEW || in->c->len == 0))) {
		/* Nothing to store yet: the file just moves. */
		in->origin = to_scratch ? ORIGIN_SCRATCH : in->origin;
		return move_to(fs, in, to, tl);
	}
	/* Onto a real name: its content is stored there. */
	struct loc dl = {.in = tl->dir_in, .id = tl->dir_id};
	if (!mpfs_loc_is_dir(fs, &dl))
		return -ENOTDIR;
	if ((in->c->len > MPFS_FLAT_MEM_MAX &&
	     (rc = mpfs_edit_check_size(fs, tl->id, mpfs_path_base(to), in->c, to))) ||
	    (rc = mpfs_content_flatten(fs, in->c, &data, &cookie)))
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
		mpfs_file_adopt_key(fs, in);
	}
	mpfs_file_changed(fs, to);
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

	if (mpfs_loc_is_dir(fs, fl))
		return -EXDEV;
	if (mpfs_view_node(fs->snap->v, fl->dir_id)->kind == MPFS_N_CSR)
		return -EPERM;
	if (!(in = mpfs_inode_at(fs, from, fl)))
		return -ENOMEM;
	if ((rc = mpfs_file_own(fs, in)))
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

	if ((rc = begin(fs, &t, from)))
		return rc;
	if ((rc = mpfs_resolve(fs, from, &fl, NULL)))
		goto out;
	/* Into itself (rename(2) says EINVAL): the directory would vanish. */
	size_t fn = strlen(from);
	if (!strncmp(to, from, fn) && to[fn] == '/') {
		rc = -EINVAL;
		goto out;
	}
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
	if (w && w->whiteout && !w->c) {
		mpfs_whiteout_del(fs, w);
		tl.in = w;
		tl.id = mpfs_inode_id(w);
		texists = tl.id != NO_ID;
	} else {
		w = NULL;
	}
	if (texists && ((fl.in && fl.in == tl.in) || (fl.id != NO_ID && fl.id == tl.id)))
		goto out_rehide; /* the same file */
	bool fdir = mpfs_loc_is_dir(fs, &fl), tdir = texists && mpfs_loc_is_dir(fs, &tl);
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
	return end(fs, &t, rc);
}
