/* File objects: snapshots, inodes, path resolution and hidden entries.
 * See fs_i.h for the terms; callers hold fs->lock (as writers where they
 * change anything). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_i.h"
#include "fs/names.h"

bool mpfs_fs_is_scratch(const char *name)
{
	size_t n = strlen(name);
	static const char *const ends[] = {".swp", ".swx", ".swpx", ".tmp"};

	if (!n)
		return false;
	if (name[0] == '.' || name[n - 1] == '~' || !strcmp(name, "4913"))
		return true;
	if (n >= 3 && name[0] == '#' && name[n - 1] == '#')
		return true;
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		size_t l = strlen(ends[i]);
		if (n > l && !strcmp(name + n - l, ends[i]))
			return true;
	}
	if (n == 9 && !strncmp(name, "sed", 3)) {
		for (size_t i = 3; i < 9; i++)
			if (!isalnum((unsigned char)name[i]))
				return false;
		return true;
	}
	return false;
}

struct inode *mpfs_inode_kid(struct inode *dir, const char *name)
{
	for (struct inode *k = dir->kids; k; k = k->next)
		if (!strcmp(k->name, name))
			return k;
	return NULL;
}

int mpfs_inode_path(const struct inode *in, char *buf, size_t cap)
{
	size_t at = cap - 1;

	buf[at] = '\0';
	if (!in->parent && in->name[0])
		return -ENOENT; /* unlinked */
	for (; in->parent; in = in->parent) {
		size_t n = strlen(in->name);
		if (n + 1 > at)
			return -ENAMETOOLONG;
		at -= n;
		memcpy(buf + at, in->name, n);
		buf[--at] = '/';
	}
	if (in->unlinked)
		return -ENOENT;
	if (at == cap - 1)
		buf[--at] = '/';
	memmove(buf, buf + at, cap - at);
	return 0;
}

uint32_t mpfs_inode_id(const struct inode *in)
{
	return in->origin == ORIGIN_ARCHIVE && !in->unlinked ? in->id : NO_ID;
}

/* Binds in by its name: eagerly, under fs->lock as writer, so that lookups
 * under the read lock never write. */
static void bind(struct mpfs_fs *fs, struct inode *in)
{
	char path[PATH_MAX];

	if (!in->parent && !in->unlinked)
		in->id = MPFS_ROOT_ID;
	else if (in->unlinked || mpfs_inode_path(in, path, sizeof(path)) ||
		 mpfs_view_lookup(fs->snap->v, path, &in->id))
		in->id = NO_ID;
}

void mpfs_inode_rebind(struct mpfs_fs *fs, struct inode *in)
{
	bind(fs, in);
	for (struct inode *k = in->kids; k; k = k->next)
		mpfs_inode_rebind(fs, k);
}

static bool is_dir(struct mpfs_fs *fs, struct inode *in, uint32_t id)
{
	if (in && in->origin != ORIGIN_ARCHIVE)
		return false;
	return id != NO_ID && mpfs_view_is_dir(fs->snap->v, id);
}

/* An escaped name that decodes to a key of map dir is that entry (the view
 * names it otherwise): its inode, if it has one, and its id. */
static bool alias(struct mpfs_fs *fs, uint32_t dir, const char *name, struct inode **in,
		  uint32_t *id, char *real_name)
{
	struct inode *parent = *in;
	uint32_t same = mpfs_edit_same_key(fs, dir, name), n, child = NO_ID;
	const char *real = NULL;

	*in = NULL;
	if (same == NO_ID)
		return false;
	n = mpfs_view_nchildren(fs->snap->v, dir);
	for (uint32_t i = 0; i < n && child != same; i++)
		real = mpfs_view_child(fs->snap->v, dir, i, &child);
	struct inode *k = parent && real ? mpfs_inode_kid(parent, real) : NULL;
	if (k && k->whiteout)
		return false;
	*in = k;
	*id = same;
	snprintf(real_name, MPFS_NAME_MAX + 1, "%s", real);
	return true;
}

int mpfs_resolve(struct mpfs_fs *fs, const char *path, struct loc *l, bool *last_missing)
{
	struct inode *in = fs->root;
	uint32_t id = MPFS_ROOT_ID;
	const char *p = path;

	*l = (struct loc){.in = in, .id = id, .dir_in = NULL, .dir_id = NO_ID, .name = ""};
	if (last_missing)
		*last_missing = false;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *q = strchrnul(p, '/');
		size_t n = (size_t)(q - p);
		char *name = l->name; /* an alias below puts the real name there */

		if (n > MPFS_NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(name, p, n);
		name[n] = '\0';
		if (!is_dir(fs, in, id))
			return -ENOTDIR;
		l->dir_in = in;
		l->dir_id = id;
		struct inode *k = in ? mpfs_inode_kid(in, name) : NULL;
		bool found = false;
		if (k) {
			found = !k->whiteout || k->c; /* hidden, unless replaced */
			in = k;
			id = mpfs_inode_id(k);
		} else if (id != NO_ID) {
			uint32_t dir = id;
			int rc = mpfs_view_lookup_child(fs->snap->v, dir, name, &id);
			if (rc && rc != -ENOENT)
				return rc; /* EIO: the archive was cut short */
			found = rc == 0;
			if (!found && name[0] == '%' && !q[strspn(q, "/")])
				found = alias(fs, dir, name, &in, &id, l->name);
			else
				in = NULL;
		}
		p = q;
		if (!found) {
			while (*p == '/')
				p++;
			if (*p)
				return -ENOENT;
			l->in = NULL;
			l->id = NO_ID;
			if (last_missing)
				*last_missing = true;
			return -ENOENT;
		}
	}
	l->in = in;
	l->id = id;
	return 0;
}

struct inode *mpfs_inode_new(struct mpfs_fs *fs, struct inode *dir, const char *name,
			     enum origin origin)
{
	struct inode *in = calloc(1, sizeof(*in));

	if (!in || !(in->name = strdup(name))) {
		free(in);
		return NULL;
	}
	in->origin = (uint8_t)origin;
	in->parent = dir;
	in->next = dir->kids;
	dir->kids = in;
	bind(fs, in);
	return in;
}

struct inode *mpfs_inode_at(struct mpfs_fs *fs, const char *path, const struct loc *l)
{
	struct inode *cur = fs->root;
	const char *p = path;

	if (l->in)
		return l->in;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			return cur;
		const char *q = strchrnul(p, '/');
		char name[MPFS_NAME_MAX + 1];
		size_t n = (size_t)(q - p);

		if (n > MPFS_NAME_MAX)
			return NULL;
		memcpy(name, p, n);
		name[n] = '\0';
		if (!q[strspn(q, "/")] && l->name[0])
			snprintf(name, sizeof(name), "%s", l->name); /* an alias */
		struct inode *k = mpfs_inode_kid(cur, name);
		if (!k && !(k = mpfs_inode_new(fs, cur, name, ORIGIN_ARCHIVE))) {
			mpfs_inode_gc(fs, cur);
			return NULL;
		}
		cur = k;
		p = q;
	}
}

static void unlist(struct inode *in)
{
	if (!in->parent)
		return;
	for (struct inode **pp = &in->parent->kids; *pp; pp = &(*pp)->next)
		if (*pp == in) {
			*pp = in->next;
			break;
		}
	in->next = NULL;
}

int mpfs_inode_move(struct inode *in, struct inode *dir, const char *name)
{
	char *n = strdup(name);

	if (!n)
		return -ENOMEM;
	unlist(in);
	free(in->name);
	in->name = n;
	in->parent = dir;
	in->next = dir->kids;
	dir->kids = in;
	return 0;
}

void mpfs_inode_drop_content(struct mpfs_fs *fs, struct inode *in)
{
	mpfs_content_free(fs, in->c);
	in->c = NULL;
	in->dirty = false;
}

static bool held(const struct inode *in)
{
	if (in->unlinked)
		return in->nopen || in->busy;
	return !in->parent || in->nopen || in->busy || in->c || in->kids || in->whiteout ||
	       in->origin != ORIGIN_ARCHIVE || in->err;
}

static void inode_free(struct mpfs_fs *fs, struct inode *in)
{
	mpfs_content_free(fs, in->c);
	free(in->name);
	free(in);
}

void mpfs_inode_gc(struct mpfs_fs *fs, struct inode *in)
{
	while (in && !held(in)) {
		struct inode *parent = in->parent;
		unlist(in);
		inode_free(fs, in);
		in = parent;
	}
}

void mpfs_inode_unlink(struct mpfs_fs *fs, struct inode *in)
{
	struct inode *parent = in->parent;

	if (in->whiteout)
		mpfs_whiteout_del(fs, in);
	unlist(in);
	in->parent = NULL;
	in->unlinked = true;
	in->id = NO_ID;
	in->dirty = false;
	in->err = 0;
	/* Its kids (files only: directories are never unlinked while they
	 * hold inodes) go with it. */
	mpfs_inode_gc(fs, in);
	mpfs_inode_gc(fs, parent);
}

int mpfs_whiteout_add(struct mpfs_fs *fs, struct inode *in)
{
	struct inode **w = realloc(fs->whiteouts, (fs->nwhiteouts + 1) * sizeof(*w));

	if (!w)
		return -ENOMEM;
	fs->whiteouts = w;
	w[fs->nwhiteouts++] = in;
	in->whiteout = true;
	return 0;
}

void mpfs_whiteout_del(struct mpfs_fs *fs, struct inode *in)
{
	for (size_t i = 0; i < fs->nwhiteouts; i++)
		if (fs->whiteouts[i] == in) {
			memmove(fs->whiteouts + i, fs->whiteouts + i + 1,
				(fs->nwhiteouts - i - 1) * sizeof(*fs->whiteouts));
			fs->nwhiteouts--;
			break;
		}
	in->whiteout = false;
}

static void free_tree(struct mpfs_fs *fs, struct inode *in)
{
	while (in) {
		struct inode *next = in->next;
		free_tree(fs, in->kids);
		inode_free(fs, in);
		in = next;
	}
}

void mpfs_inode_free_all(struct mpfs_fs *fs)
{
	free_tree(fs, fs->root);
	fs->root = NULL;
	free(fs->whiteouts);
	fs->whiteouts = NULL;
	fs->nwhiteouts = 0;
}
