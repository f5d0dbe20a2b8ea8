/* The view: names, attributes and contents of the model tree's entries.
 *
 * The archive is mapped read-only and never copied: compact arrays, bins and
 * exts are served straight from the mapping. What must be produced is made
 * the first time it is needed and kept: the names of a directory's entries
 * when it is first looked up or listed, the JSON of a text file and the
 * bytes of a nested-list array when first read or stat'ed. Opening costs
 * the decoded values and the model's entries (40 + 32 bytes per entry)
 * plus 8 bytes per entry here; see docs/performance.md.
 *
 * FUSE calls in from many threads: what is made is made under the view's
 * mutex and published with a release store into lazy[id], which readers
 * load with acquire, so a made thing is read without the lock.
 *
 * Whatever reads the mapping (names come from keys, text and nested arrays
 * from values, xattrs from keys) runs under the SIGBUS guard, so an archive
 * truncated in place gives -EIO, and bounded by the mapping's size, so one
 * rewritten in place cannot lead a walk past its end. */
#define _GNU_SOURCE /* qsort_r */
#include "fs/view.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "codec/json.h"
#include "codec/model.h"
#include "codec/npy.h"
#include "codec/numpy.h"
#include "fs/fill.h"
#include "fs/guard.h"
#include "fs/names.h"

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

/* Directories without entries share this: naming them costs nothing. */
static struct vdir empty_dir;

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

static const struct mpfs_node *node_of(const struct mpfs_view *v, uint32_t id)
{
	return mpfs_model_node(&v->model, id);
}

static void *lazy_get(const struct mpfs_view *v, uint32_t id)
{
	return __atomic_load_n(&v->lazy[id], __ATOMIC_ACQUIRE);
}

static void lazy_set(const struct mpfs_view *v, uint32_t id, void *p)
{
	__atomic_store_n(&v->lazy[id], p, __ATOMIC_RELEASE);
}

static void vdir_free(struct vdir *d)
{
	if (!d || d == &empty_dir)
		return;
	free(d->pool);
	free(d->off);
	free(d->sorted);
	free(d);
}

static void vfile_free(struct vfile *f)
{
	if (f && f->filled)
		mpfs_fill_free(f->data, f->size);
	else if (f)
		free(f->data);
	free(f);
}

/* -EIO if the archive was cut short in place since it was mapped: past its
 * new end the mapping gives zeros or SIGBUS, not the archive. A fstat is
 * cheap next to the FUSE request that brought us here. Every walk of the
 * mapping is bounded by its size in any case. */
static int intact(const struct mpfs_view *v)
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
static int unwritten(const struct mpfs_view *v)
{
	struct stat st;
	return fstat(v->fd, &st) == 0 && (uint64_t)st.st_size >= v->map_len &&
			       st.st_mtim.tv_sec == v->st.st_mtim.tv_sec &&
			       st.st_mtim.tv_nsec == v->st.st_mtim.tv_nsec
		       ? 0
		       : -EIO;
}

/* ---- naming -------------------------------------------------------------- */

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

/* The named directory id: named now if it was not. 0, -ENOMEM, -EIO. */
static int named(const struct mpfs_view *cv, uint32_t id, const struct vdir **out)
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
		vdir_free(g.d);
		goto out_unlock;
	}
	lazy_set(v, id, g.d);
	*out = g.d;
out_unlock:
	pthread_mutex_unlock(&v->lock);
	return rc;
}

static const char *name_at(const struct vdir *d, uint32_t i)
{
	return d->pool + d->off[i];
}

/* ---- opening ------------------------------------------------------------- */

struct opening {
	struct mpfs_view *v;
	struct mpfs_error *err;
	bool started; /* mpfs_model_init ran: destroy the model, whatever it holds */
};

static int open_guarded(void *arg)
{
	struct opening *o = arg;
	o->started = true;
	return mpfs_model_init(&o->v->model, o->v->map, o->v->map_len, o->err);
}

int mpfs_view_open(struct mpfs_view **out, const char *path, const struct mpfs_view_opts *opts,
		   struct mpfs_error *err)
{
	struct opening o = {.err = err};
	const struct vdir *root;
	struct mpfs_view *v;
	int fd, rc;

	memset(err, 0, sizeof(*err));
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	o.v = v;
	v->raw = opts->raw;
	v->fd = -1;
	pthread_mutex_init(&v->lock, NULL);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &v->st) < 0) {
		rc = -errno;
		snprintf(err->msg, sizeof(err->msg), "%s", strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(v->st.st_mode)) {
		rc = -EINVAL;
		snprintf(err->msg, sizeof(err->msg), "not a regular file");
		goto out_close;
	}
	v->map_len = (size_t)v->st.st_size;
	if (v->map_len) {
		v->map = mmap(NULL, v->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (v->map == MAP_FAILED) {
			rc = -errno;
			v->map = NULL;
			snprintf(err->msg, sizeof(err->msg), "cannot map: %s", strerror(errno));
			goto out_close;
		}
	}
	v->fd = fd;
	fd = -1;
	mpfs_guard_init();
	/* Decoding reads the whole mapping: someone may cut the file short. */
	rc = mpfs_guard_run(open_guarded, &o);
	if (rc == -EIO) {
		snprintf(err->msg, sizeof(err->msg), "the archive was cut short while being read");
		goto out_free_view;
	}
	if (rc) {
		o.started = false; /* mpfs_model_init freed what it made */
		rc = err->code == MPFS_E_NOMEM ? -ENOMEM : -EINVAL;
		goto out_free_view;
	}
	v->lazy = calloc(v->model.nnodes, sizeof(*v->lazy));
	if (!v->lazy) {
		rc = -ENOMEM;
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		goto out_free_view;
	}
	/* The root is always listed: name it while the archive is at hand. */
	if ((rc = named(v, MPFS_ROOT_ID, &root))) {
		snprintf(err->msg, sizeof(err->msg), "%s",
			 rc == -ENOMEM ? "out of memory"
				       : "the archive was cut short while being read");
		goto out_free_view;
	}
	*out = v;
	return 0;

out_free_view:
	if (v->lazy)
		vdir_free(v->lazy[MPFS_ROOT_ID]);
	free(v->lazy);
	if (o.started)
		mpfs_model_destroy(&v->model);
	if (v->map)
		munmap(v->map, v->map_len);
out_close:
	if (fd >= 0)
		close(fd);
	if (v->fd >= 0)
		close(v->fd);
	pthread_mutex_destroy(&v->lock);
	free(v);
	return rc;
}

static void *close_fd(void *fd)
{
	close((int)(intptr_t)fd);
	return NULL;
}

/* Closing the last descriptor of an archive that a commit replaced frees
 * its blocks, which takes a while for a big one (0.17 s for 512 MiB on
 * ext4): a thread of its own pays for that, not the writer whose close
 * committed. */
static void close_archive(int fd)
{
	pthread_attr_t attr;
	pthread_t t;
	struct stat st;
	bool later = fstat(fd, &st) == 0 && st.st_nlink == 0 && pthread_attr_init(&attr) == 0;

	if (later) {
		later = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
			pthread_create(&t, &attr, close_fd, (void *)(intptr_t)fd) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!later)
		close(fd);
}

void mpfs_view_close(struct mpfs_view *v)
{
	if (!v)
		return;
	for (uint32_t id = 0; id < v->model.nnodes; id++) {
		if (mpfs_node_is_dir(node_of(v, id)))
			vdir_free(v->lazy[id]);
		else
			vfile_free(v->lazy[id]);
	}
	free(v->lazy);
	mpfs_model_destroy(&v->model);
	if (v->map)
		munmap(v->map, v->map_len);
	close_archive(v->fd);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

/* ---- lookup and attributes --------------------------------------------- */

/* Entry i's id, for directory node n. */
static uint32_t child_id(const struct mpfs_view *v, const struct mpfs_node *n, uint32_t i)
{
	return mpfs_model_id(&v->model, &n->children[i]);
}

/* The entry of a list called name[0..len): its index, with its suffix. */
static int find_in_list(const struct mpfs_view *v, const struct mpfs_node *n, const struct vdir *d,
			const char *name, size_t len, uint32_t *id)
{
	uint64_t i = 0;
	size_t k = 0;

	if (len == 0 || (name[0] == '0' && len > 1 && name[1] >= '0' && name[1] <= '9'))
		return -ENOENT;
	for (; k < len && name[k] >= '0' && name[k] <= '9' && i < n->nchildren; k++)
		i = i * 10 + (uint64_t)(name[k] - '0');
	if (k == 0 || i >= n->nchildren)
		return -ENOENT;
	if (strncmp(name_at(d, (uint32_t)i), name, len) || name_at(d, (uint32_t)i)[len])
		return -ENOENT;
	*id = child_id(v, n, (uint32_t)i);
	return 0;
}

static int find_child(const struct mpfs_view *v, uint32_t dir, const char *name, size_t len,
		      uint32_t *id)
{
	const struct mpfs_node *n = node_of(v, dir);
	const struct vdir *d;
	size_t lo = 0, hi = n->nchildren;
	int rc;

	if ((rc = named(v, dir, &d)))
		return rc;
	if (!d->sorted)
		return n->nchildren ? find_in_list(v, n, d, name, len, id) : -ENOENT;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *cn = name_at(d, d->sorted[mid]);
		int c = strncmp(cn, name, len);
		if (c == 0 && cn[len])
			c = 1;
		if (c == 0) {
			*id = child_id(v, n, d->sorted[mid]);
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

/* The child of directory dir named name[0..len). A directory is named when
 * it is first looked up, so that listing it (mpfs_view_child) cannot fail
 * afterwards. */
static int child_of(const struct mpfs_view *v, uint32_t dir, const char *name, size_t len,
		    uint32_t *id)
{
	const struct vdir *d;
	uint32_t cur;
	int rc;

	if (len > MPFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (!mpfs_node_is_dir(node_of(v, dir)))
		return -ENOTDIR;
	if ((rc = find_child(v, dir, name, len, &cur)))
		return rc;
	if (mpfs_node_is_dir(node_of(v, cur)) && (rc = named(v, cur, &d)))
		return rc;
	*id = cur;
	return 0;
}

int mpfs_view_lookup(const struct mpfs_view *v, const char *path, uint32_t *id)
{
	uint32_t cur = MPFS_ROOT_ID;
	const struct vdir *d;
	int rc;

	while (*path) {
		const char *end;
		size_t len;

		while (*path == '/')
			path++;
		if (!*path)
			break;
		end = strchr(path, '/');
		len = end ? (size_t)(end - path) : strlen(path);
		if ((rc = child_of(v, cur, path, len, &cur)))
			return rc;
		path += len;
	}
	if (cur == MPFS_ROOT_ID && (rc = named(v, cur, &d)))
		return rc;
	*id = cur;
	return 0;
}

int mpfs_view_lookup_child(const struct mpfs_view *v, uint32_t dir, const char *name, uint32_t *id)
{
	return child_of(v, dir, name, strlen(name), id);
}

bool mpfs_view_is_dir(const struct mpfs_view *v, uint32_t id)
{
	return mpfs_node_is_dir(node_of(v, id));
}

struct making {
	struct mpfs_view *v;
	const struct mpfs_node *n;
	struct mpfs_strbuf text; /* freed by make() whatever happens */
	uint8_t *bytes;
};

/* Reads the archive to make a content (under the SIGBUS guard). */
static int make_guarded(void *arg)
{
	struct making *m = arg;
	const struct mpfs_node *n = m->n;

	if (n->kind == MPFS_N_TEXT || n->kind == MPFS_N_SCALAR) {
		if (n->kind == MPFS_N_SCALAR)
			mpfs_numpy_scalar_render(&m->v->model.doc, n->array, &m->text);
		else
			mpfs_json_render(&m->v->model.doc, n->val, &m->text);
		mpfs_strbuf_add(&m->text, "\n", 1);
		return m->text.oom ? -ENOMEM : 0;
	}
	/* a big-endian array shown raw: little-endian bytes */
	mpfs_array_swap(n->array, m->v->model.doc.buf + n->array->data_off, m->bytes);
	return 0;
}

/* Makes the content of file n under the guard; a nested array's threads
 * each have their own guard (mpfs_fill_nested). */
static int make_content(struct making *m)
{
	const struct mpfs_node *n = m->n;

	if (n->kind == MPFS_N_TEXT || n->kind == MPFS_N_SCALAR)
		return mpfs_guard_run(make_guarded, m);
	if (!(m->bytes = mpfs_fill_alloc(n->array->nbytes)))
		return -ENOMEM;
	if (n->array->encoding == MPFS_ENC_NESTED)
		return mpfs_fill_nested(&m->v->model.doc, n->array, m->bytes, 0);
	return mpfs_guard_run(make_guarded, m);
}

/* Makes the content of a text file or nested array; called with the lock. */
static int make(struct mpfs_view *v, uint32_t id, struct vfile **out)
{
	struct making m = {.v = v, .n = node_of(v, id)};
	struct mpfs_scalar_bound outer;
	struct vfile *f;
	int rc;

	if ((rc = unwritten(v)))
		return rc;
	if (!(f = calloc(1, sizeof(*f))))
		return -ENOMEM;
	mpfs_strbuf_init(&m.text);
	mpfs_scalar_bound(v->model.doc.buf, v->model.doc.size, &outer);
	rc = make_content(&m);
	mpfs_scalar_unbound(&outer);
	if (rc) {
		mpfs_strbuf_destroy(&m.text);
		if (m.bytes)
			mpfs_fill_free(m.bytes, m.n->array->nbytes);
		free(f);
		return rc;
	}
	if (m.n->kind == MPFS_N_TEXT || m.n->kind == MPFS_N_SCALAR) {
		f->data = (uint8_t *)m.text.p;
		f->size = m.text.len;
	} else {
		f->data = m.bytes;
		f->size = m.n->array->nbytes;
		f->filled = true;
	}
	lazy_set(v, id, f);
	*out = f;
	return 0;
}

/* With -o raw, arrays are little-endian bytes: a big-endian one is swapped. */
static bool swapped(const struct mpfs_view *v, const struct mpfs_node *n)
{
	return v->raw && n->kind == MPFS_N_ARRAY && n->array->descr[0] == '>';
}

/* Content that is made, not served from the mapping as it is. */
static bool needs_making(const struct mpfs_view *v, const struct mpfs_node *n)
{
	return n->kind == MPFS_N_TEXT || n->kind == MPFS_N_SCALAR ||
	       (n->kind == MPFS_N_ARRAY && n->array->encoding == MPFS_ENC_NESTED) || swapped(v, n);
}

/* The made content of file id, made now if it was not. */
static int ensure(struct mpfs_view *v, uint32_t id, struct vfile **out)
{
	int rc = 0;

	if ((*out = lazy_get(v, id)))
		return 0;
	pthread_mutex_lock(&v->lock);
	if (!(*out = lazy_get(v, id)))
		rc = make(v, id, out);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

/* NPY header length of array n (0 with -o raw); fills hdr. */
static size_t header(const struct mpfs_view *v, const struct mpfs_node *n,
		     char hdr[MPFS_NPY_HEADER_MAX])
{
	return v->raw ? 0 : mpfs_npy_header(n->array, hdr);
}

int mpfs_view_stat(struct mpfs_view *v, uint32_t id, struct stat *st)
{
	const struct mpfs_node *n = node_of(v, id);
	char hdr[MPFS_NPY_HEADER_MAX];
	const struct vdir *d = NULL;
	struct vfile *f;
	uint64_t size = 0;
	int rc;

	switch (n->kind) {
	case MPFS_N_TEXT: /* its size is its rendered length */
	case MPFS_N_SCALAR:
		if ((rc = ensure(v, id, &f)))
			return rc;
		size = f->size;
		break;
	case MPFS_N_ARRAY: size = header(v, n, hdr) + n->array->nbytes; break;
	case MPFS_N_BYTES: size = n->val->len; break;
	case MPFS_N_PICKLE: size = n->array->nbytes; break;
	default: /* link counts need the subdirectories */
		if ((rc = named(v, id, &d)))
			return rc;
	}
	memset(st, 0, sizeof(*st));
	st->st_ino = id + 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_atim = v->st.st_atim;
	st->st_mtim = v->st.st_mtim;
	st->st_ctim = v->st.st_ctim;
	st->st_blksize = 4096;
	if (d) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2 + d->nsubdirs;
		st->st_size = 0;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)size;
		st->st_blocks = (blkcnt_t)((size + 511) / 512);
	}
	return 0;
}

uint32_t mpfs_view_nchildren(const struct mpfs_view *v, uint32_t id)
{
	return node_of(v, id)->nchildren;
}

const char *mpfs_view_child(const struct mpfs_view *v, uint32_t id, uint32_t i, uint32_t *child)
{
	const struct mpfs_node *n = node_of(v, id);
	const struct vdir *d;

	*child = child_id(v, n, i);
	/* Named already if id came from mpfs_view_lookup; if naming fails
	 * now, a name that no lookup finds (the caller has no error path). */
	if (named(v, id, &d))
		return "%~unnamed~";
	return name_at(d, i);
}

/* ---- contents ------------------------------------------------------------ */

/* Copies what of src[0..len) lies at off into buf; -EIO if src is part of
 * the mapping and the archive was cut short under it. */
static long copy_span(char *buf, size_t size, uint64_t off, const void *src, uint64_t len)
{
	if (off >= len)
		return 0;
	if (size > len - off)
		size = (size_t)(len - off);
	return mpfs_guard_copy(buf, (const uint8_t *)src + off, size) ? (long)size : -EIO;
}

long mpfs_view_read(struct mpfs_view *v, uint32_t id, char *buf, size_t size, uint64_t off)
{
	const struct mpfs_node *n = node_of(v, id);
	char hdr[MPFS_NPY_HEADER_MAX];
	struct vfile *f = NULL;
	const uint8_t *data;
	size_t got = 0, hdr_len;
	int rc;

	if (mpfs_node_is_dir(n))
		return -EISDIR;
	if (needs_making(v, n) && (rc = ensure(v, id, &f)))
		return rc;
	switch (n->kind) {
	case MPFS_N_TEXT:
	case MPFS_N_SCALAR: return copy_span(buf, size, off, f->data, f->size);
	case MPFS_N_BYTES:
		if ((rc = intact(v)))
			return rc;
		return copy_span(buf, size, off, mpfs_val_data(&v->model.doc, n->val), n->val->len);
	case MPFS_N_PICKLE: /* the bytes as stored */
		if ((rc = intact(v)))
			return rc;
		return copy_span(buf, size, off, v->model.doc.buf + n->array->data_off,
				 n->array->nbytes);
	default: break;
	}
	hdr_len = header(v, n, hdr);
	if (off < hdr_len) {
		got = (size_t)copy_span(buf, size, off, hdr, hdr_len);
		off += got;
	}
	if (f) {
		data = f->data;
	} else {
		if ((rc = intact(v)))
			return rc;
		data = v->model.doc.buf + n->array->data_off;
	}
	long more = copy_span(buf + got, size - got, off - hdr_len, data, n->array->nbytes);
	return more < 0 ? more : (long)got + more;
}

int mpfs_view_spans(struct mpfs_view *v, uint32_t id, size_t size, uint64_t off,
		    char hdr[MPFS_SPAN_HDR_MAX], struct mpfs_span sp[2], bool made)
{
	const struct mpfs_node *n = node_of(v, id);
	uint64_t start = 0, len, hdr_len = 0;
	struct vfile *f = NULL;
	int k = 0, rc;

	_Static_assert(MPFS_NPY_HEADER_MAX <= MPFS_SPAN_HDR_MAX, "NPY header fits a span");
	if (mpfs_node_is_dir(n))
		return -EISDIR;
	if (n->kind != MPFS_N_ARRAY && n->kind != MPFS_N_BYTES)
		return -EAGAIN;
	if (needs_making(v, n) && !(made && mpfs_fill_lasting(n->array->nbytes)))
		return -EAGAIN; /* made: text, and small arrays */
	if (needs_making(v, n) && (rc = ensure(v, id, &f)))
		return rc;
	if (n->kind == MPFS_N_BYTES) {
		start = (uint64_t)(mpfs_val_data(&v->model.doc, n->val) - v->model.doc.buf);
		len = n->val->len;
	} else {
		hdr_len = header(v, n, hdr);
		start = f ? 0 : n->array->data_off;
		len = n->array->nbytes;
	}
	if (off < hdr_len && size) {
		size_t got = (size_t)(hdr_len - off) < size ? (size_t)(hdr_len - off) : size;
		sp[k++] = (struct mpfs_span){.mem = hdr + off, .fd = -1, .len = got};
		off += got;
		size -= got;
	}
	off -= hdr_len;
	if (size && off < len) {
		/* The splice reads the file after this returns: a file cut short
		 * by then gives a short read, never SIGBUS. One cut short before
		 * gives EIO, as the copying read does. */
		if (!f && (rc = intact(v)))
			return rc;
		if (size > len - off)
			size = (size_t)(len - off);
		sp[k++] = f ? (struct mpfs_span){.mem = f->data + off,
						 .fd = -1,
						 .len = size,
						 .lasting = true}
			    : (struct mpfs_span){.fd = v->fd, .off = start + off, .len = size};
	}
	return k;
}

int mpfs_view_fd(const struct mpfs_view *v)
{
	return v->fd;
}

/* ---- extended attributes ----------------------------------------------- */

/* Arrays and pickled object arrays have a shape and an encoding; numpy
 * scalars only a dtype. */
static bool has_shape(const struct mpfs_node *n)
{
	return n->kind == MPFS_N_ARRAY || n->kind == MPFS_N_PICKLE;
}

/* Reads the mapping (keys): run under the guard. */
static long xattr_value(struct mpfs_view *v, const struct mpfs_node *n, const char *name,
			struct mpfs_strbuf *out)
{
	char shape[MPFS_MAX_DIMS * 21];

	if (!strcmp(name, "user.mpfs.key") && n->key) {
		mpfs_json_render(&v->model.doc, n->key, out);
	} else if (mpfs_node_has_array(n) && !strcmp(name, "user.mpfs.dtype")) {
		if (swapped(v, n)) /* what the .bin file holds */
			mpfs_strbuf_add(out, "<", 1);
		mpfs_strbuf_puts(out, n->array->descr + swapped(v, n));
	} else if (has_shape(n) && !strcmp(name, "user.mpfs.shape")) {
		mpfs_array_shape_str(n->array, shape, sizeof(shape));
		mpfs_strbuf_puts(out, shape);
	} else if (has_shape(n) && !strcmp(name, "user.mpfs.encoding")) {
		mpfs_strbuf_puts(out, n->kind == MPFS_N_PICKLE		      ? "pickle"
				      : n->array->encoding == MPFS_ENC_NESTED ? "nested"
									      : "compact");
	} else if (n->val->type == MPFS_EXT && !strcmp(name, "user.mpfs.ext")) {
		mpfs_strbuf_printf(out, "%d", n->val->ext_type);
	} else {
		return -ENODATA;
	}
	return out->oom ? -ENOMEM : 0;
}

static long give(const char *val, size_t len, char *buf, size_t size)
{
	if (size == 0)
		return (long)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, val, len);
	return (long)len;
}

static const char *const xattr_names[] = {"user.mpfs.key", "user.mpfs.dtype", "user.mpfs.shape",
					  "user.mpfs.encoding", "user.mpfs.ext"};
#define NXATTRS (sizeof(xattr_names) / sizeof(xattr_names[0]))

/* Whether entry n has the i-th xattr: from the model alone, so listing
 * reads nothing of the mapping. (Checked against xattr_value by a test.) */
static bool has_xattr(const struct mpfs_node *n, size_t i)
{
	switch (i) {
	case 0: return n->key != NULL;
	case 1: return mpfs_node_has_array(n);
	case 2:
	case 3: return has_shape(n);
	default: return n->val->type == MPFS_EXT;
	}
}

struct xattr_call {
	struct mpfs_view *v;
	const struct mpfs_node *n;
	const char *name;
	struct mpfs_strbuf *out;
};

static int xattr_guarded(void *arg)
{
	struct xattr_call *c = arg;
	return (int)xattr_value(c->v, c->n, c->name, c->out);
}

long mpfs_view_getxattr(struct mpfs_view *v, uint32_t id, const char *name, char *buf, size_t size)
{
	struct mpfs_strbuf out;
	struct xattr_call c = {v, node_of(v, id), name, &out};
	struct mpfs_scalar_bound outer;
	long rc;

	mpfs_strbuf_init(&out);
	if (!strcmp(name, "user.mpfs.key")) { /* the only one that reads the mapping */
		if ((rc = intact(v)) == 0) {
			mpfs_scalar_bound(v->model.doc.buf, v->model.doc.size, &outer);
			rc = mpfs_guard_run(xattr_guarded, &c);
			mpfs_scalar_unbound(&outer);
		}
	} else {
		rc = xattr_value(v, c.n, name, &out);
	}
	if (rc == 0)
		rc = give(out.p ? out.p : "", out.len, buf, size);
	mpfs_strbuf_destroy(&out);
	return rc;
}

long mpfs_view_listxattr(struct mpfs_view *v, uint32_t id, char *buf, size_t size)
{
	const struct mpfs_node *n = node_of(v, id);
	char list[128];
	size_t len = 0;

	for (size_t i = 0; i < NXATTRS; i++) {
		if (!has_xattr(n, i))
			continue;
		memcpy(list + len, xattr_names[i], strlen(xattr_names[i]) + 1);
		len += strlen(xattr_names[i]) + 1;
	}
	return give(list, len, buf, size);
}

/* ---- for the edit layer -------------------------------------------------- */

const struct mpfs_node *mpfs_view_node(const struct mpfs_view *v, uint32_t id)
{
	return node_of(v, id);
}

const struct mpfs_doc *mpfs_view_doc(const struct mpfs_view *v)
{
	return &v->model.doc;
}

const struct stat *mpfs_view_archive_stat(const struct mpfs_view *v)
{
	return &v->st;
}

bool mpfs_view_raw(const struct mpfs_view *v)
{
	return v->raw;
}

int mpfs_view_new_array_encoding(const struct mpfs_view *v)
{
	const uint32_t *n = v->model.narrays;
	return n[MPFS_ENC_NESTED] && !n[MPFS_ENC_COMPACT] ? MPFS_ENC_NESTED : MPFS_ENC_COMPACT;
}

bool mpfs_view_new_array_bin_keys(const struct mpfs_view *v)
{
	return v->model.nbin_keyed > 0;
}
