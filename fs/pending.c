/* Paths, pending buffers and hidden entries: what the filesystem holds
 * beside the archive. See fs_i.h; callers hold fs->lock. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/fs_i.h"

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

const char *mpfs_path_base(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* The parent directory's path, in caller storage. */
void mpfs_path_parent(const char *path, char *out, size_t cap)
{
	const char *s = strrchr(path, '/');
	size_t n = s && s != path ? (size_t)(s - path) : 1;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, path, n);
	out[n] = '\0';
}

bool mpfs_path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && path[n] == '/';
}

bool mpfs_hidden_has(const struct mpfs_fs *fs, const char *path)
{
	for (size_t i = 0; i < fs->nhidden; i++)
		if (!strcmp(fs->hidden[i], path))
			return true;
	return false;
}

int mpfs_hidden_add(struct mpfs_fs *fs, const char *path)
{
	char **h = realloc(fs->hidden, (fs->nhidden + 1) * sizeof(*h));

	if (!h)
		return -ENOMEM;
	fs->hidden = h;
	if (!(h[fs->nhidden] = strdup(path)))
		return -ENOMEM;
	fs->nhidden++;
	return 0;
}

void mpfs_hidden_del(struct mpfs_fs *fs, const char *path)
{
	for (size_t i = 0; i < fs->nhidden; i++)
		if (!strcmp(fs->hidden[i], path)) {
			free(fs->hidden[i]);
			fs->hidden[i] = fs->hidden[--fs->nhidden];
			return;
		}
}

/* Looks path up as the user sees the tree: hidden entries are absent. */
int mpfs_fs_lookup(const struct mpfs_fs *fs, const char *path, uint32_t *id)
{
	if (fs->nhidden && mpfs_hidden_has(fs, path))
		return -ENOENT;
	return mpfs_view_lookup(fs->view, path, id);
}

/* True if an entry hidden by a rename lies inside directory dir. */
bool mpfs_hidden_under(const struct mpfs_fs *fs, const char *dir)
{
	for (size_t i = 0; i < fs->nhidden; i++)
		if (mpfs_path_under(fs->hidden[i], dir))
			return true;
	return false;
}

bool mpfs_hidden_child(const struct mpfs_fs *fs, const char *dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", name);
	return mpfs_hidden_has(fs, path);
}

struct pending *mpfs_pending_find(struct mpfs_fs *fs, const char *path)
{
	for (struct pending *p = fs->pending; p; p = p->next)
		if (!strcmp(p->path, path))
			return p;
	return NULL;
}

/* What others than its writers see of a pending file: its buffer while it
 * holds something the archive does not (yet), else the archive's content,
 * which may read differently from what was written ("300" shows "300\n"). */
struct pending *mpfs_pending_shown(struct mpfs_fs *fs, const char *path)
{
	struct pending *p = mpfs_pending_find(fs, path);
	return p && (p->dirty || p->fresh || p->scratch) ? p : NULL;
}

static void unlist(struct mpfs_fs *fs, struct pending *p)
{
	for (struct pending **pp = &fs->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	p->next = NULL;
}

void mpfs_pending_free(struct pending *p)
{
	free(p->path);
	free(p->data);
	free(p);
}

/* Takes p out of the namespace; it is freed when its last handle goes. */
void mpfs_pending_drop(struct mpfs_fs *fs, struct pending *p)
{
	unlist(fs, p);
	if (p->refs)
		p->detached = true;
	else
		mpfs_pending_free(p);
}

int mpfs_pending_resize(struct pending *p, size_t len)
{
	if (len > p->cap) {
		size_t cap = p->cap ? p->cap : 256;
		while (cap < len)
			cap *= 2;
		uint8_t *d = realloc(p->data, cap);
		if (!d)
			return -ENOMEM;
		p->data = d;
		p->cap = cap;
	}
	if (len > p->len)
		memset(p->data + p->len, 0, len - p->len);
	p->len = len;
	return 0;
}

/* Fills p with the committed content of the archive file id. */
int mpfs_pending_load(struct mpfs_fs *fs, struct pending *p, uint32_t id)
{
	struct stat st;
	long got;
	int rc;

	if ((rc = mpfs_view_stat(fs->view, id, &st)) ||
	    (rc = mpfs_pending_resize(p, (size_t)st.st_size)))
		return rc;
	got = mpfs_view_read(fs->view, id, (char *)p->data, p->len, 0);
	if (got < 0)
		return (int)got;
	p->len = (size_t)got;
	return 0;
}

struct pending *mpfs_pending_new(struct mpfs_fs *fs, const char *path)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p || !(p->path = strdup(path))) {
		free(p);
		return NULL;
	}
	p->scratch = mpfs_fs_is_scratch(mpfs_path_base(path));
	p->next = fs->pending;
	fs->pending = p;
	return p;
}

/* Files held here inside a directory that moved from from to to follow it. */
void mpfs_pending_move_under(struct mpfs_fs *fs, const char *from, const char *to)
{
	size_t fl = strlen(from);

	for (struct pending *p = fs->pending; p; p = p->next) {
		char *np;
		if (!mpfs_path_under(p->path, from) || asprintf(&np, "%s%s", to, p->path + fl) < 0)
			continue;
		free(p->path);
		p->path = np;
	}
}
