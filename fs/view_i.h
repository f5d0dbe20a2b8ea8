/* The view's insides, shared by its parts: view.c (opening, lookup,
 * attributes, contents), view_names.c (naming directories) and
 * view_xattr.c (extended attributes). Not for the rest of fs/. */
#ifndef MPFS_FS_VIEW_I_H
#define MPFS_FS_VIEW_I_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "codec/model.h"
#include "fs/view.h"

/* A named directory. */
struct vdir {
	char *pool;	   /* the entries' names, NUL-terminated, back to back */
	uint32_t *off;	   /* off[i]: where entry i's name starts in pool */
	uint32_t *sorted;  /* entry indexes in name order; NULL for lists */
	uint32_t nsubdirs; /* entries that are directories */
};

/* The made content of a text file or nested-list (or swapped) array. */
struct vfile {
	uint8_t *data;
	uint64_t size;
	bool filled; /* an array's: from mpfs_fill_alloc */
};

struct mpfs_view {
	struct mpfs_model model;
	/* By entry id: NULL until made, then a struct vdir (directories) or
	 * struct vfile (files). Written once, under lock. */
	void **lazy;
	void *map;
	size_t map_len;
	int fd;		/* the archive, to notice it being changed under the mapping */
	struct stat st; /* the archive's */
	bool raw;
	pthread_mutex_t lock;
};

static inline const struct mpfs_node *node_of(const struct mpfs_view *v, uint32_t id)
{
	return mpfs_model_node(&v->model, id);
}

static inline void *lazy_get(const struct mpfs_view *v, uint32_t id)
{
	return __atomic_load_n(&v->lazy[id], __ATOMIC_ACQUIRE);
}

static inline void lazy_set(const struct mpfs_view *v, uint32_t id, void *p)
{
	__atomic_store_n(&v->lazy[id], p, __ATOMIC_RELEASE);
}

/* -EIO if the archive was cut short in place since it was mapped: past its
 * new end the mapping gives zeros or SIGBUS, not the archive. A fstat is
 * cheap next to the FUSE request that brought us here. Every walk of the
 * mapping is bounded by its size in any case. */
static inline int intact(const struct mpfs_view *v)
{
	struct stat st;
	return fstat(v->fd, &st) == 0 && (uint64_t)st.st_size >= v->map_len ? 0 : -EIO;
}

/* Also -EIO if it was written since (its mtime moved): a rewrite in place
 * shows through the private mapping wherever nothing was read yet, so text
 * or an array made from it now would mix two archives. (Our own commits
 * rename a new file over the archive: that moves only the new file's
 * ctime, so ctime cannot tell. A rewrite that also puts the mtime back
 * gives wrong values, never a read past the end; commit refuses to
 * overwrite it, comparing ctime too.) */
static inline int unwritten(const struct mpfs_view *v)
{
	struct stat st;
	return fstat(v->fd, &st) == 0 && (uint64_t)st.st_size >= v->map_len &&
			       st.st_mtim.tv_sec == v->st.st_mtim.tv_sec &&
			       st.st_mtim.tv_nsec == v->st.st_mtim.tv_nsec
		       ? 0
		       : -EIO;
}

/* With -o raw, arrays are little-endian bytes: a big-endian one is swapped. */
static inline bool swapped(const struct mpfs_view *v, const struct mpfs_node *n)
{
	return v->raw && n->kind == MPFS_N_ARRAY && n->array->descr[0] == '>';
}

/* ---- naming (view_names.c) ---------------------------------------------- */

/* The named directory id: named now if it was not. 0, -ENOMEM, -EIO. */
int mpfs_view_named(const struct mpfs_view *v, uint32_t id, const struct vdir **out);
void mpfs_vdir_free(struct vdir *d);

static inline const char *mpfs_vdir_name(const struct vdir *d, uint32_t i)
{
	return d->pool + d->off[i];
}

#endif
