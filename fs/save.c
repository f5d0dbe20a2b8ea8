/* Saving a file: its content into an archive edit and a commit, for the
 * operations of fs.c and namespace.c. See fs_i.h; callers hold
 * fs->commit_mu where they commit, and fs->lock as writers. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fs/commit.h"
#include "fs/fs_i.h"

/* True if the edits already take care of entry e (at index of directory
 * value dir): they replace its value or key, or delete it. */
static bool edited(const struct mpfs_edit *edits, size_t n, const struct mpfs_node *e,
		   const struct mpfs_val *dir, uint32_t index)
{
	for (size_t i = 0; i < n; i++)
		if (edits[i].target == e->val || (e->key && edits[i].target == e->key) ||
		    (edits[i].op == MPFS_EDIT_DELETE && edits[i].target == dir &&
		     edits[i].index == index))
			return true;
	return false;
}

int mpfs_txn_commit(struct mpfs_fs *fs, struct txn *t)
{
	size_t total = t->ned, nw = fs->nwhiteouts;
	struct inode **gone = NULL;
	bool *replaced = NULL;
	struct mpfs_edit *all;
	struct mpfs_view *nv;
	struct mpfs_error err;
	struct snap *old, *ns;
	int rc;

	all = malloc((t->ned + nw + 1) * sizeof(*all));
	gone = malloc((nw + 1) * sizeof(*gone));
	replaced = calloc(nw + 1, sizeof(*replaced));
	if (!all || !gone || !replaced) {
		free(all);
		free(gone);
		free(replaced);
		return -ENOMEM;
	}
	memcpy(all, t->ed, t->ned * sizeof(*all));
	/* Hidden entries go with every commit, unless the edits replace them. */
	for (size_t i = 0; i < nw; i++) {
		struct inode *w = fs->whiteouts[i];
		uint32_t id = mpfs_inode_id(w);
		uint32_t dir = w->parent ? mpfs_inode_id(w->parent) : NO_ID;

		gone[i] = w;
		if (id == NO_ID || dir == NO_ID)
			continue;
		const struct mpfs_node *dn = mpfs_view_node(fs->snap->v, dir);
		uint32_t index = mpfs_edit_index(fs, dir, id);
		if (edited(t->ed, t->ned, mpfs_view_node(fs->snap->v, id), dn->val, index))
			replaced[i] = true; /* in place: no longer hidden */
		else if (dn->kind != MPFS_N_CSR)
			all[total++] = (struct mpfs_edit){
				.op = MPFS_EDIT_DELETE, .target = dn->val, .index = index};
	}
	if (total == 0) { /* nothing to write: no new archive for it */
		rc = 0;
		goto out_clear;
	}
	old = mpfs_snap_get(fs->snap);
	ns = malloc(sizeof(*ns));
	nv = NULL;
	/* The slow part (write, fsync, rename, decode) without fs->lock:
	 * readers go on with the old snapshot; fs->commit_mu keeps every other
	 * change out. */
	pthread_rwlock_unlock(&fs->lock);
	rc = ns ? mpfs_commit(fs->archive, old->v, &fs->ident, all, total, &nv, &err) : -ENOMEM;
	pthread_rwlock_wrlock(&fs->lock);
	mpfs_snap_put(old);
	if (rc && rc != -ENOMEM)
		fs->opts.log("%s: %s", t->what, err.msg);
	if (!nv) { /* nothing changed */
		free(ns);
		goto out;
	}
	/* In place (perhaps with an error from the directory's fsync). */
	ns->v = nv;
	ns->refs = 1;
	ns->gen = fs->snap->gen + 1;
	mpfs_snap_put(fs->snap);
	fs->snap = ns;
out_clear:
	/* The hidden entries are gone from the archive now. */
	for (size_t i = 0; i < nw; i++) {
		struct inode *w = gone[i];
		mpfs_whiteout_del(fs, w);
		if (replaced[i])
			continue; /* an ordinary entry with its new value */
		if (w->c || w->nopen)
			w->origin = ORIGIN_NEW; /* a new file at a removed key's name */
		else
			mpfs_inode_unlink(fs, w);
	}
	mpfs_inode_rebind(fs, fs->root);
out:
	free(all);
	free(gone);
	free(replaced);
	return rc;
}

int mpfs_view_err(struct mpfs_fs *fs, int rc)
{
	struct stat now;

	if (rc != -EIO || stat(fs->archive, &now) || now.st_size < fs->ident.st_size)
		return rc; /* cut short (or gone): what must be read is lost */
	return mpfs_commit_unchanged(fs->archive, &fs->ident) ? rc : -ESTALE;
}

bool mpfs_loc_is_dir(struct mpfs_fs *fs, const struct loc *l)
{
	if (l->in && l->in->origin != ORIGIN_ARCHIVE)
		return false;
	return l->id != NO_ID && mpfs_view_is_dir(fs->snap->v, l->id);
}

/* The largest content the file can hold (EFBIG beyond). */
uint64_t mpfs_file_size_max(struct mpfs_fs *fs, const struct inode *in)
{
	uint32_t id = mpfs_inode_id(in);

	if (id != NO_ID)
		return mpfs_view_node(fs->snap->v, id)->kind == MPFS_N_ARRAY ? MPFS_NPY_FILE_MAX
									     : MPFS_TEXT_MAX;
	return mpfs_edit_array_name(fs, in->name) ? MPFS_NPY_FILE_MAX : MPFS_TEXT_MAX;
}

/* Gives in content to edit, if it has none: the archive entry's bytes. */
int mpfs_file_own(struct mpfs_fs *fs, struct inode *in)
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
			return mpfs_view_err(fs, rc);
		in->c = mpfs_content_new(fs->snap, id, (uint64_t)st.st_size);
	}
	return in->c ? 0 : -ENOMEM;
}

void mpfs_file_changed(struct mpfs_fs *fs, const char *path)
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
void mpfs_file_adopt_key(struct mpfs_fs *fs, struct inode *in)
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

/* Big content is copied into a temporary file beside the archive to be
 * committed: when that fails (a full disk), the log says why, as it does
 * for the commit's own temporary file. */
static int not_staged(struct mpfs_fs *fs, const char *path, int rc)
{
	if (rc != -ENOMEM)
		fs->opts.log("%s: cannot copy the edit beside the archive: %s", path,
			     strerror(-rc));
	return rc;
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
		return rc > 0 ? 0 : not_staged(fs, path, rc);
	/* A size the .npy header refuses is refused before the content is
	 * copied (all 4 GiB of a `truncate -s 4G`). */
	if (in->c->len > MPFS_FLAT_MEM_MAX &&
	    (rc = mpfs_edit_check_size(fs, id, in->name, in->c, path)))
		return rc;
	if ((rc = mpfs_content_flatten(fs, in->c, &data, &cookie)))
		return in->c->len > MPFS_FLAT_MEM_MAX ? not_staged(fs, path, rc) : rc;
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
int mpfs_file_commit(struct mpfs_fs *fs, struct inode *in, bool last)
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
	if (in->c->len == 0 && (!last || id == NO_ID || in->whiteout))
		return 0; /* emptied by a truncation: the content comes next */
	if ((rc = mpfs_inode_path(in, path, sizeof(path))))
		return rc;
	if (in->c->len == 0 && empty_refused(fs, id)) {
		fs->opts.log("%s: closed empty: a number or bool has no empty value; kept", path);
		mpfs_inode_drop_content(fs, in);
		mpfs_file_changed(fs, path);
		return 0;
	}
	/* Someone else's archive is not read, let alone overwritten. */
	if (!mpfs_commit_unchanged(fs->archive, &fs->ident)) {
		fs->opts.log("%s: %s", path, MPFS_STALE_MSG);
		in->tried = seq;
		in->err = -ESTALE;
		mpfs_file_changed(fs, path);
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
	/* Another writer may have truncated it meanwhile (O_TRUNC): an empty
	 * file waits for its content, as above. */
	if (!in->c || in->unlinked || (in->c->len == 0 && (!last || in->whiteout)))
		rc = -EAGAIN;
	else
		rc = prepare(fs, in, id, path, &t);
	pthread_rwlock_unlock(&fs->lock);
	pthread_rwlock_wrlock(&fs->lock);
	if (rc == -EAGAIN) { /* nothing to commit any more */
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
		mpfs_file_changed(fs, path); /* others read the archive again */
		return rc;
	}
	in->err = 0;
	if (in->origin == ORIGIN_NEW)
		mpfs_file_adopt_key(fs, in);
	if (in->seq == seq) {
		in->dirty = false;
		if (!in->nwriters)
			mpfs_inode_drop_content(fs, in);
	}
	mpfs_file_changed(fs, path);
	return 0;
}
