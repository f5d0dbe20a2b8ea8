/* Private to fs/: the state behind struct mpfs_fs.
 *
 * Terms (docs/writing.md §2 says the same for users):
 *
 * snapshot  one decoded archive (struct snap: a view plus a reference
 *           count). fs->snap is the current one; a commit makes a new one
 *           and swaps it in. Older snapshots live on while content still
 *           reads from them.
 * inode     a file object: one per entry that has state beyond the
 *           archive (open handles, content being edited, scratch or new,
 *           hidden) and the directories above such entries. Entries without
 *           state have no inode: they are read from the snapshot. An inode
 *           lives in its parent's list under its name; a rename moves it, and
 *           whatever points at it (handles, content) goes along. An inode
 *           of origin ARCHIVE is bound to the snapshot entry of its name.
 * origin    given when the inode is made, never inferred from a name later:
 *           ARCHIVE (an entry of the archive), NEW (created here, not in the
 *           archive yet: committed at the first flush with content), SCRATCH
 *           (created under a scratch name: memory only).
 * whiteout  an archive entry renamed to a scratch name (an editor's backup
 *           rename): hidden from the tree, deleted from the archive with the
 *           next commit unless a new file of its name replaces it first.
 * content   the bytes of a file being edited: a base (a snapshot entry)
 *           up to a cut, plus changed chunks, in memory up to a budget and
 *           in an unlinked temporary file beyond it (content.c).
 * handle    an open file: points at its inode; only handles opened for
 *           writing commit.
 *
 * Locks: fs->lock (rwlock) guards the inode tree, contents and fs->snap.
 * fs->commit_mu serialises everything that changes the namespace or the
 * archive: it is taken first, the edit is prepared under fs->lock, the
 * archive is written and fsynced with fs->lock released (readers go on with
 * the old snapshot), then fs->lock is taken again to swap the snapshot in. */
#ifndef MPFS_FS_FS_I_H
#define MPFS_FS_FS_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec/encode.h"
#include "codec/model.h"
#include "fs/fs.h"
#include "fs/view.h"

#define NO_ID UINT32_MAX

/* Largest file content: a str or bin holds 4 GiB - 1 bytes; an .npy file
 * has its header on top. Beyond that: EFBIG. */
#define MPFS_TEXT_MAX	  ((uint64_t)UINT32_MAX)
#define MPFS_NPY_FILE_MAX ((uint64_t)UINT32_MAX + 65536)

/* Content up to this size is flattened into memory for a commit; bigger
 * content is copied into a mapped temporary file. */
#define MPFS_FLAT_MEM_MAX ((uint64_t)4 << 20)

struct snap {
	struct mpfs_view *v;
	unsigned refs;
	uint64_t gen; /* one more than the snapshot it replaced */
};

struct content {
	struct snap *base; /* the bytes below cut come from this entry, or NULL */
	uint32_t base_id;
	uint64_t cut; /* base bytes at or past cut read as zero */
	uint64_t len;
	uint8_t **chunks; /* by chunk number; NULL: not changed; SPILLED */
	size_t nchunks;	  /* entries in chunks */
	int spill;	  /* temporary file holding spilled chunks, or -1 */
	size_t mem;	  /* bytes of chunks in memory */
};

enum origin { ORIGIN_ARCHIVE, ORIGIN_NEW, ORIGIN_SCRATCH };

struct inode {
	struct inode *parent; /* NULL for the root and for unlinked inodes */
	char *name;
	struct inode *kids, *next; /* child inodes; siblings */
	struct content *c;	   /* the file's bytes while edited here */
	uint64_t seq;		   /* bumped by every change of c */
	uint64_t tried;		   /* seq at the last commit attempt */
	unsigned nopen;		   /* open handles */
	unsigned nwriters;	   /* of which opened for writing */
	int err;		   /* the last commit's error (sticky), or 0 */
	unsigned busy;		   /* held across a commit by the committing call */
	uint8_t origin;		   /* enum origin */
	bool whiteout;		   /* hidden archive entry (see above) */
	bool unlinked;		   /* out of the tree, kept for open handles */
	bool dirty;		   /* c differs from the archive */
	uint32_t id;		   /* ORIGIN_ARCHIVE: the entry of its name in fs->snap */
};

/* Copies of the archive's descriptor a handle has handed out for zero-copy
 * reads. libfuse splices from it after the read call returned, so it must
 * stay open until the handle is released (the kernel releases a file after
 * its last read is answered), even if a commit closed the snapshot's. */
#define HANDLE_FDS 8

struct handle {
	struct inode *in;
	bool writer;
	bool late;	     /* written since this handle's last flush */
	pthread_mutex_t mu;  /* guards the fields below */
	int fds[HANDLE_FDS]; /* fds[nfds - 1] is of snapshot fd_gen */
	unsigned nfds;
	uint64_t fd_gen;
};

struct mpfs_fs {
	char *archive;
	struct snap *snap;
	struct inode *root;
	struct inode **whiteouts; /* hidden entries, in hiding order */
	size_t nwhiteouts;
	struct stat ident; /* the archive as we last read or wrote it */
	size_t mem;	   /* bytes of content chunks in memory, all files */
	struct mpfs_fs_opts opts;
	pthread_rwlock_t lock;
	pthread_mutex_t commit_mu;
};

/* ---- snapshots and paths ------------------------------------------------ */

static inline struct snap *mpfs_snap_get(struct snap *s)
{
	s->refs++;
	return s;
}

static inline void mpfs_snap_put(struct snap *s)
{
	if (s && --s->refs == 0) {
		mpfs_view_close(s->v);
		free(s);
	}
}

/* The last component of path (points into path). */
static inline const char *mpfs_path_base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* The parent directory of path, into out ("/" for top-level entries). */
static inline void mpfs_path_parent(const char *path, char *out, size_t cap)
{
	const char *s = strrchr(path, '/');
	size_t n = s && s != path ? (size_t)(s - path) : 1;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, path, n);
	out[n] = '\0';
}

/* ---- inodes (inode.c) --------------------------------------------------- */

/* Where a path leads: the inode there (or NULL if it has none) and the
 * archive entry (or NO_ID), plus the directory above it. */
struct loc {
	struct inode *in, *dir_in;
	uint32_t id, dir_id;
	char name[256]; /* the last component as the tree names it */
};

/* Resolves an absolute path as the user sees the tree. 0 with *l filled,
 * or -ENOENT (also for the last component alone missing: then l->dir_* are
 * set and l->in/l->id are NULL/NO_ID), -ENOTDIR, -ENAMETOOLONG. */
int mpfs_resolve(struct mpfs_fs *fs, const char *path, struct loc *l, bool *last_missing);
/* The archive entry inode in is bound to, or NO_ID. */
uint32_t mpfs_inode_id(const struct inode *in);
/* Binds in and the inodes below it to fs->snap again (after a commit or a
 * move). */
void mpfs_inode_rebind(struct mpfs_fs *fs, struct inode *in);
/* The inode at l, made (with its parents) if it has none; NULL on ENOMEM. */
struct inode *mpfs_inode_at(struct mpfs_fs *fs, const char *path, const struct loc *l);
/* A new child inode of dir; NULL on ENOMEM. */
struct inode *mpfs_inode_new(struct mpfs_fs *fs, struct inode *dir, const char *name,
			     enum origin origin);
/* The child of dir named name, or NULL. */
struct inode *mpfs_inode_kid(struct inode *dir, const char *name);
/* Moves in under dir as name (-ENOMEM). */
int mpfs_inode_move(struct inode *in, struct inode *dir, const char *name);
/* Takes in out of the tree (unlink); it lives on while it has handles. */
void mpfs_inode_unlink(struct mpfs_fs *fs, struct inode *in);
/* Frees in (and empty parents) if nothing holds it any more. */
void mpfs_inode_gc(struct mpfs_fs *fs, struct inode *in);
/* The path of in into buf; -ENAMETOOLONG, -ENOENT if unlinked. */
int mpfs_inode_path(const struct inode *in, char *buf, size_t cap);
/* Drops c (and the snapshot it reads from). */
void mpfs_inode_drop_content(struct mpfs_fs *fs, struct inode *in);
/* Records in as hidden (-ENOMEM). */
int mpfs_whiteout_add(struct mpfs_fs *fs, struct inode *in);
void mpfs_whiteout_del(struct mpfs_fs *fs, struct inode *in);
/* Frees every inode (at close). */
void mpfs_inode_free_all(struct mpfs_fs *fs);

/* ---- content (content.c) ------------------------------------------------ */

/* New content reading base entry id of s (ref taken) up to len; s may be
 * NULL for empty content. NULL on ENOMEM. */
struct content *mpfs_content_new(struct snap *s, uint32_t id, uint64_t len);
void mpfs_content_free(struct mpfs_fs *fs, struct content *c);
long mpfs_content_read(struct content *c, char *buf, size_t size, uint64_t off);
/* The bytes written: all of them, or fewer when a chunk could not be had
 * (memory, or spilling to a full disk), those before it; -ENOMEM, -ENOSPC,
 * -EIO when not even the first could. -EFBIG is the caller's to check. */
long mpfs_content_write(struct mpfs_fs *fs, struct content *c, const char *buf, size_t size,
			uint64_t off);
/* A failed truncation (-ENOSPC, -EIO, -ENOMEM: spilling) changes nothing. */
int mpfs_content_truncate(struct mpfs_fs *fs, struct content *c, uint64_t len);
/* The whole content in one piece: memory for small content, a mapping of a
 * temporary file for big. Release with mpfs_content_unflatten. */
int mpfs_content_flatten(struct mpfs_fs *fs, struct content *c, const uint8_t **out, void **cookie);
/* Content from offset from to its end, for a commit that writes it where
 * the base's bytes lie: pieces (after head, if not NULL) that point into
 * base (the caller's pointer to the base's byte at from; NULL: the base is
 * not there) where the content still reads the base's bytes, and into one
 * mapped temporary file holding every other byte (map, map_len: release
 * with mpfs_content_unflatten(map, map_len, (void *)1); NULL if none).
 * The memory is the page cache's, and the pieces' array is the caller's to
 * free. */
struct content_split {
	struct mpfs_piece *pieces;
	size_t n;
	const uint8_t *map;
	uint64_t map_len;
};
int mpfs_content_split(struct mpfs_fs *fs, struct content *c, uint64_t from, const uint8_t *base,
		       const struct mpfs_piece *head, struct content_split *out);
void mpfs_content_unflatten(const uint8_t *p, uint64_t len, void *cookie);

/* ---- edits and commit (edit.c) ----------------------------------------- */

/* A commit being prepared: edits against fs->snap plus what they own. */
struct txn {
	struct mpfs_edit ed[4];
	size_t ned;
	struct mpfs_strbuf bufs[4];
	size_t nbufs;
	struct content_split split; /* pieces and a mapping the edits point into */
	const char *what;	    /* for the log */
};
void mpfs_txn_init(struct txn *t, const char *what);
void mpfs_txn_destroy(struct txn *t);
/* The index of child id among directory dir's entries, in archive order. */
uint32_t mpfs_edit_index(struct mpfs_fs *fs, uint32_t dir, uint32_t id);

/* Adds to t the edit that stores content data under entry id (a REPLACE).
 * -EINVAL (logged) for content that cannot be stored. */
int mpfs_edit_replace(struct mpfs_fs *fs, struct txn *t, uint32_t id, const uint8_t *data,
		      size_t len, const char *path);
/* If in's content is entry id's array with its dtype, shape and order
 * unchanged (an np.memmap or dd edit), adds to t the edit that replaces only
 * the bytes of the compact array's data, streamed from a mapped temporary
 * file: no copy of the array in memory. 1 if added, 0 if this does not
 * apply, or -errno. */
int mpfs_edit_payload(struct mpfs_fs *fs, struct txn *t, uint32_t id, struct content *c);
/* Refuses (-EINVAL, logged as any refusal) the content c of entry id, or of
 * a new file named name (id NO_ID), if it is an array file whose size its
 * .npy header (or, with -o raw, the array) does not allow: read from its
 * first bytes, before big content is copied to be parsed whole. 0 if it
 * may be stored (the rest is checked then), or -errno. */
int mpfs_edit_check_size(struct mpfs_fs *fs, uint32_t id, const char *name, struct content *c,
			 const char *path);
/* Adds to t a new key named name in map dir with content data. */
int mpfs_edit_insert(struct mpfs_fs *fs, struct txn *t, uint32_t dir, const char *name,
		     const uint8_t *data, size_t len, const char *path);
/* Adds an empty map named name to map dir (mkdir). */
int mpfs_edit_mkdir(struct mpfs_fs *fs, struct txn *t, uint32_t dir, const char *name);
/* Adds the removal of entry id of directory dir. -EPERM in a csr_matrix. */
int mpfs_edit_delete(struct mpfs_fs *fs, struct txn *t, uint32_t dir, uint32_t id);
/* Adds the rename of entry id (in dir) to name in map tdir, replacing entry
 * tid there (or NO_ID). -EPERM outside maps. */
int mpfs_edit_move(struct mpfs_fs *fs, struct txn *t, uint32_t dir, uint32_t id, uint32_t tdir,
		   uint32_t tid, const char *name);
/* The entry of map dir whose key a new file named name would get, if such a
 * key exists (an escaped name of an existing key): NO_ID otherwise. */
uint32_t mpfs_edit_same_key(struct mpfs_fs *fs, uint32_t dir, const char *name);
/* True if name ends with the suffix arrays get (.npy, .bin with -o raw). */
bool mpfs_edit_array_name(struct mpfs_fs *fs, const char *name);

/* ---- saving a file (save.c) ------------------------------------------- */

/* Runs t (plus the deletion of hidden entries not replaced by it) with
 * fs->lock held as writer on entry and exit, released in between; swaps
 * the new snapshot in. The caller holds fs->commit_mu. 0 or -errno. */
int mpfs_txn_commit(struct mpfs_fs *fs, struct txn *t);
/* The error a view's -EIO becomes: -ESTALE when the archive was rewritten
 * in place by someone else (mount again to see it), -EIO when it was cut
 * short. Other errors are kept. */
int mpfs_view_err(struct mpfs_fs *fs, int rc);
/* True if l is a directory. */
bool mpfs_loc_is_dir(struct mpfs_fs *fs, const struct loc *l);
/* Gives in content to edit, if it has none: its archive entry's bytes. */
int mpfs_file_own(struct mpfs_fs *fs, struct inode *in);
/* Tells the mount that what path shows changed (drop its caches). */
void mpfs_file_changed(struct mpfs_fs *fs, const char *path);
/* After a new file's key went in: the inode takes the name the tree gives
 * the key, and becomes an archive entry. */
void mpfs_file_adopt_key(struct mpfs_fs *fs, struct inode *in);
/* The largest content in can hold (EFBIG beyond). */
uint64_t mpfs_file_size_max(struct mpfs_fs *fs, const struct inode *in);
/* Commits in's content if it changed; last: the last writer is closing, so
 * an empty file stores an empty value where one exists. Holds commit_mu
 * and fs->lock as writer (released while encoding and writing). 0, or the
 * commit's -errno, which sticks (in->err) until new writes. */
int mpfs_file_commit(struct mpfs_fs *fs, struct inode *in, bool last);

#endif
