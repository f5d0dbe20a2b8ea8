/* The tree as a flat list of entries in directory order, parents first:
 * what unpack, show, diff, check and apply walk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool/tool.h"

struct names {
	char **v;
	bool *dir;
	size_t n, cap;
	int err;
};

static int add_name(void *ctx, const char *name, bool dir)
{
	struct names *s = ctx;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		char **v = realloc(s->v, cap * sizeof(*v));
		bool *d = v ? realloc(s->dir, cap * sizeof(*d)) : NULL;
		if (v)
			s->v = v;
		if (!d)
			return s->err = -ENOMEM;
		s->dir = d;
		s->cap = cap;
	}
	s->v[s->n] = strdup(name);
	if (!s->v[s->n])
		return s->err = -ENOMEM;
	s->dir[s->n++] = dir;
	return 0;
}

static int push(struct mpfs_tool_tree *t, char *path, const struct stat *st)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct mpfs_tool_entry *e = realloc(t->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		t->e = e;
		t->cap = cap;
	}
	t->e[t->n].path = path;
	t->e[t->n].st = *st;
	t->e[t->n++].dir = S_ISDIR(st->st_mode);
	return 0;
}

int mpfs_tool_walk(struct mpfs_fs *fs, const char *dir, struct mpfs_tool_tree *t)
{
	struct names s = {0};
	struct stat st;
	char *path;
	size_t i;
	int rc;

	rc = mpfs_fs_readdir(fs, dir, add_name, &s);
	if (!rc)
		rc = s.err;
	for (i = 0; i < s.n && !rc; i++) {
		if (asprintf(&path, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", s.v[i]) < 0) {
			rc = -ENOMEM;
			break;
		}
		rc = mpfs_fs_getattr(fs, path, &st);
		if (!rc)
			rc = push(t, path, &st);
		if (rc) {
			free(path);
			break;
		}
		if (S_ISDIR(st.st_mode))
			rc = mpfs_tool_walk(fs, path, t);
	}
	for (i = 0; i < s.n; i++)
		free(s.v[i]);
	free(s.v);
	free(s.dir);
	return rc;
}

void mpfs_tool_tree_free(struct mpfs_tool_tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->e[i].path);
	free(t->e);
	t->e = NULL;
	t->n = t->cap = 0;
}

const struct mpfs_tool_entry *mpfs_tool_tree_find(const struct mpfs_tool_tree *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->e[i].path, path))
			return &t->e[i];
	return NULL;
}
