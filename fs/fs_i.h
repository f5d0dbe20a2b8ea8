/* Private to fs/: the state behind struct mpfs_fs, shared by fs.c (the
 * operations), pending.c (paths, pending buffers, hidden entries) and
 * edit.c (turning content and renames into archive edits, and commit).
 * Every function here expects the caller to hold fs->lock (as a writer
 * where it changes anything). */
#ifndef MPFS_FS_FS_I_H
#define MPFS_FS_FS_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/encode.h"
#include "codec/model.h"
#include "fs/fs.h"
#include "fs/view.h"

/* A file whose content lives here: open for writing, new, or scratch. */
struct pending {
	struct pending *next;
	char *path;
	uint8_t *data;
	size_t len, cap;
	unsigned refs; /* open handles */
	bool dirty;    /* differs from the archive */
	bool scratch;  /* memory only */
	bool fresh;    /* not in the archive yet */
	bool detached; /* unlinked or renamed away while open */
	bool refused;  /* the last commit was refused, nothing written since */
};

/* An open file (fuse's fh). */
struct handle {
	char *path;
	struct pending *p; /* NULL for a read-only handle on an archive file */
	bool late;	   /* written since the last commit attempt */
};

struct mpfs_fs {
	char *archive;
	struct mpfs_view *view;
	struct pending *pending;
	/* Archive files renamed to a scratch name: gone from the tree, but kept
	 * in the archive until a file of that name replaces them in place (an
	 * editor's backup-rename save), the next commit, or the end of the
	 * mount (then deleted). */
	char **hidden;
	size_t nhidden;
	struct mpfs_fs_opts opts;
	pthread_rwlock_t lock;
};

/* ---- pending.c: paths -------------------------------------------------- */

/* The last component of path (points into path). */
const char *mpfs_path_base(const char *path);
/* The parent directory of path, into out ("/" for top-level entries). */
void mpfs_path_parent(const char *path, char *out, size_t cap);
/* True if path lies strictly inside directory dir. */
bool mpfs_path_under(const char *path, const char *dir);

/* ---- pending.c: hidden entries -------------------------------------- */

bool mpfs_hidden_has(const struct mpfs_fs *fs, const char *path);
/* -ENOMEM or 0. */
int mpfs_hidden_add(struct mpfs_fs *fs, const char *path);
void mpfs_hidden_del(struct mpfs_fs *fs, const char *path);
/* True if a hidden entry lies inside directory dir. */
bool mpfs_hidden_under(const struct mpfs_fs *fs, const char *dir);
/* True if entry name of directory dir is hidden. */
bool mpfs_hidden_child(const struct mpfs_fs *fs, const char *dir, const char *name);
/* Looks path up as the user sees the tree: hidden entries are absent. */
int mpfs_fs_lookup(const struct mpfs_fs *fs, const char *path, uint32_t *id);

/* ---- pending.c: pending buffers ------------------------------------- */

struct pending *mpfs_pending_find(struct mpfs_fs *fs, const char *path);
/* The pending file others than its writers see at path, or NULL. */
struct pending *mpfs_pending_shown(struct mpfs_fs *fs, const char *path);
/* A new pending file at path (scratch by its name), listed; NULL on ENOMEM. */
struct pending *mpfs_pending_new(struct mpfs_fs *fs, const char *path);
/* Takes p out of the namespace; freed now, or by its last handle. */
void mpfs_pending_drop(struct mpfs_fs *fs, struct pending *p);
void mpfs_pending_free(struct pending *p);
/* Sets the length (zero-filling growth); -ENOMEM. */
int mpfs_pending_resize(struct pending *p, size_t len);
/* Fills p with the committed content of archive entry id. */
int mpfs_pending_load(struct mpfs_fs *fs, struct pending *p, uint32_t id);
/* Files held here inside a directory that moved from from to to follow it. */
void mpfs_pending_move_under(struct mpfs_fs *fs, const char *from, const char *to);

/* ---- edit.c ------------------------------------------------------------- */

/* Commits edits (plus the removal of hidden entries they do not replace)
 * and switches to the new archive; what names the change in the log. */
int mpfs_edit_commit(struct mpfs_fs *fs, const struct mpfs_edit *edits, size_t n, const char *what);
/* Puts content under path: replaces the entry's value, or adds a key.
 * -EINVAL (logged) for content that cannot be stored. */
int mpfs_edit_put(struct mpfs_fs *fs, const char *path, const uint8_t *data, size_t len);
/* Commits a pending buffer if it changed; an empty one waits. A refusal
 * sticks until new writes arrive. */
int mpfs_edit_commit_pending(struct mpfs_fs *fs, struct pending *p);
/* The key a new entry named name gets in map dir (array: strip .npy). */
int mpfs_edit_key(struct mpfs_fs *fs, const struct mpfs_node *dir, const char *name, bool array,
		  struct mpfs_strbuf *out);
/* The entry at path (as the user sees it) and its parent directory. */
int mpfs_fs_locate(struct mpfs_fs *fs, const char *path, uint32_t *id, uint32_t *dir);
/* Removes archive entry id of directory dir (path for the log). */
int mpfs_edit_delete(struct mpfs_fs *fs, const char *path, uint32_t id, uint32_t dir);
/* Hides archive entry path of directory dir: a delete put off until the
 * next commit (see struct mpfs_fs). -EPERM where deleting is refused. */
int mpfs_edit_hide(struct mpfs_fs *fs, const char *path, uint32_t dir);
/* Renames archive entry id of directory dir (at path from) to path to. */
int mpfs_edit_move(struct mpfs_fs *fs, const char *from, uint32_t id, uint32_t dir, const char *to);

#endif
