/* The view, naming: a directory's entry names, made when it is first
 * looked up or listed (keys escaped where unsafe, suffixes by kind, clashes
 * resolved), sorted once for binary search. */
#define _GNU_SOURCE /* qsort_r */
#include "fs/view_i.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "fs/guard.h"
#include "fs/names.h"

/* Directories without entries share this: naming them costs nothing. */
static struct vdir empty_dir;

void mpfs_vdir_free(struct vdir *d)
{
	if (!d || d == &empty_dir)
		return;
	free(d->pool);
	free(d->off);
	free(d->sorted);
	free(d);
}

static const char *suffix_of(const struct mpfs_view *v, const struct mpfs_node *n)
{
	if (n->kind == MPFS_N_PICKLE)
		return ".pickle";
	if (n->kind != MPFS_N_ARRAY)
		return "";
	return v->raw ? ".bin" : ".npy";
}

struct naming {
	struct mpfs_view *v;
	const struct mpfs_node *dir;
	struct vdir *d;		 /* being made: freed by the caller on failure */
	struct mpfs_strbuf json; /* a key's JSON text: likewise */
	size_t pool_len, pool_cap;
};

/* Writes into buf the name entry i of the directory would have if nothing
 * clashed (escaped if unsafe); returns its length, or -ENOMEM. */
static long base_name(struct naming *g, uint32_t i, char buf[MPFS_NAME_MAX + 1])
{
	const struct mpfs_node *n = &g->dir->children[i];
	const struct mpfs_doc *doc = &g->v->model.doc;
	const char *suffix = suffix_of(g->v, n);
	size_t len;

	if (!n->key) {
		const char *label = mpfs_node_label(n);
		if (label)
			return snprintf(buf, MPFS_NAME_MAX + 1, "%s%s", label, suffix);
		return snprintf(buf, MPFS_NAME_MAX + 1, "%" PRIu32 "%s", i, suffix);
	}
	if (n->key->type == MPFS_STR || n->key->type == MPFS_BIN) {
		const uint8_t *k = mpfs_val_data(doc, n->key);
		if (!mpfs_name_is_plain(k, n->key->len, suffix))
			return (long)mpfs_name_escape(k, n->key->len, "", suffix, i, buf);
		return snprintf(buf, MPFS_NAME_MAX + 1, "%.*s%s", (int)n->key->len, k, suffix);
	}
	/* Other keys (ints, mostly) are named by their JSON text. */
	g->json.len = 0;
	mpfs_json_render(doc, n->key, &g->json);
	mpfs_strbuf_add(&g->json, "", 1); /* NUL-terminated */
	if (g->json.oom)
		return -ENOMEM;
	len = g->json.len - 1;
	if (mpfs_name_is_plain((uint8_t *)g->json.p, len, suffix))
		return snprintf(buf, MPFS_NAME_MAX + 1, "%s%s", g->json.p, suffix);
	return (long)mpfs_name_escape((uint8_t *)g->json.p, len, "#", suffix, i, buf);
}

/* Appends name[0..len] (with its NUL) to the pool as entry i's name. */
static int pool_put(struct naming *g, uint32_t i, const char *name, size_t len)
{
	if (len + 1 > g->pool_cap - g->pool_len) {
		size_t cap = g->pool_cap + g->pool_cap / 2 + len + 1;
		char *p;
		if (cap > UINT32_MAX)
			return -ENOMEM; /* offsets are 32 bits: 4 GiB of names */
		if (!(p = realloc(g->d->pool, cap)))
			return -ENOMEM;
		g->d->pool = p;
		g->pool_cap = cap;
	}
	memcpy(g->d->pool + g->pool_len, name, len + 1);
	g->d->off[i] = (uint32_t)g->pool_len;
	g->pool_len += len + 1;
	return 0;
}

static int by_name(const void *a, const void *b, void *arg)
{
	const struct vdir *d = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(d->pool + d->off[x], d->pool + d->off[y]);
	return c ? c : (x > y) - (x < y);
}

/* Sorts the entries by name, escaping the later (in archive order) of two
 * clashing names until no two are equal. A list's names (its indexes) never
 * clash, and it is searched by index: it is not sorted. */
static int resolve_clashes(struct naming *g)
{
	const struct mpfs_node *n = g->dir;
	const struct mpfs_doc *doc = &g->v->model.doc;
	struct vdir *d = g->d;
	bool clash = true;
	int rc;

	if (!(d->sorted = malloc(n->nchildren * sizeof(*d->sorted))))
		return -ENOMEM;
	for (uint32_t i = 0; i < n->nchildren; i++)
		d->sorted[i] = i;
	while (clash) {
		clash = false;
		qsort_r(d->sorted, n->nchildren, sizeof(*d->sorted), by_name, d);
		for (uint32_t i = 1; i < n->nchildren; i++) {
			uint32_t later = d->sorted[i];
			const struct mpfs_node *c = &n->children[later];
			const char *suffix = suffix_of(g->v, c);
			char buf[MPFS_NAME_MAX + 1];
			size_t len;

			if (strcmp(d->pool + d->off[d->sorted[i - 1]], d->pool + d->off[later]))
				continue;
			/* Escape the later entry: the sort keeps archive order. */
			if (c->key && (c->key->type == MPFS_STR || c->key->type == MPFS_BIN)) {
				len = mpfs_name_escape(mpfs_val_data(doc, c->key), c->key->len, "",
						       suffix, later, buf);
			} else {
				const char *s = d->pool + d->off[later];
				len = mpfs_name_escape((const uint8_t *)s,
						       strlen(s) - strlen(suffix), "#", suffix,
						       later, buf);
			}
			if (!strcmp(buf, d->pool + d->off[later])) /* equal keys: by position */
				len = (size_t)snprintf(buf, sizeof(buf), "%%~%u~%s", later, suffix);
			if ((rc = pool_put(g, later, buf, len)))
				return rc;
			clash = true;
		}
	}
	return 0;
}

/* Names the entries of g->dir into g->d; reads keys from the mapping, so
 * it runs under the guard, and everything it allocates hangs from g. */
static int name_guarded(void *arg)
{
	struct naming *g = arg;
	const struct mpfs_node *n = g->dir;
	char buf[MPFS_NAME_MAX + 1];
	size_t total = 0;
	long len;
	int rc;

	if (!(g->d->off = malloc(n->nchildren * sizeof(*g->d->off))))
		return -ENOMEM;
	/* Sized by a first pass, so the pool is allocated once. */
	for (uint32_t i = 0; i < n->nchildren; i++) {
		if ((len = base_name(g, i, buf)) < 0)
			return (int)len;
		total += (size_t)len + 1;
		g->d->nsubdirs += mpfs_node_is_dir(&n->children[i]);
	}
	if (total > UINT32_MAX || !(g->d->pool = malloc(total)))
		return -ENOMEM;
	g->pool_cap = total;
	for (uint32_t i = 0; i < n->nchildren; i++) {
		if ((len = base_name(g, i, buf)) < 0)
			return (int)len;
		if ((rc = pool_put(g, i, buf, (size_t)len)))
			return rc;
	}
	return n->kind == MPFS_N_LIST ? 0 : resolve_clashes(g);
}

int mpfs_view_named(const struct mpfs_view *cv, uint32_t id, const struct vdir **out)
{
	struct mpfs_view *v = (struct mpfs_view *)cv; /* naming is a cache */
	const struct mpfs_node *n = node_of(v, id);
	struct naming g = {.v = v, .dir = n};
	struct mpfs_scalar_bound outer;
	int rc = 0;

	if ((*out = lazy_get(v, id)))
		return 0;
	if (n->nchildren == 0) {
		*out = &empty_dir;
		return 0;
	}
	pthread_mutex_lock(&v->lock);
	if ((*out = lazy_get(v, id)))
		goto out_unlock;
	if ((rc = intact(v)))
		goto out_unlock;
	if (!(g.d = calloc(1, sizeof(*g.d)))) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	mpfs_strbuf_init(&g.json);
	mpfs_scalar_bound(v->model.doc.buf, v->model.doc.size, &outer);
	rc = mpfs_guard_run(name_guarded, &g);
	mpfs_scalar_unbound(&outer);
	mpfs_strbuf_destroy(&g.json);
	if (rc) {
		mpfs_vdir_free(g.d);
		goto out_unlock;
	}
	lazy_set(v, id, g.d);
	*out = g.d;
out_unlock:
	pthread_mutex_unlock(&v->lock);
	return rc;
}
