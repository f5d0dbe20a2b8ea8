/* The view: names, attributes and contents of the model tree's entries.
 *
 * The archive is mapped read-only and never copied: compact arrays, bins and
 * exts are served straight from the mapping. What must be produced (the JSON
 * of a text file, the bytes of a nested-list array) is made the first time
 * it is needed and kept; a mutex guards that, since FUSE runs many threads. */
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
#include "fs/guard.h"
#include "fs/names.h"

struct vnode {
	const struct mpfs_node *node;
	char *name;	   /* NULL for the root */
	uint32_t *sorted;  /* directories: child indexes in name order */
	uint32_t nsubdirs; /* directories: children that are directories */
	uint32_t hdr_len;  /* arrays: NPY header bytes (0 with -o raw) */
	bool ready;	   /* text and nested arrays: data below is made */
	uint8_t *data;	   /* the made content, owned */
	uint64_t size;	   /* content size, once known (always, but for text) */
};

struct mpfs_view {
	struct mpfs_model model;
	struct vnode *vn; /* indexed by node id */
	void *map;
	size_t map_len;
	int fd;		/* the archive, to notice it being cut short under the mapping */
	struct stat st; /* the archive's */
	bool raw;
	pthread_mutex_t lock;
};

/* ---- building ---------------------------------------------------------- */

static const char *suffix_of(const struct mpfs_view *v, const struct mpfs_node *n)
{
	if (n->kind != MPFS_N_ARRAY)
		return "";
	return v->raw ? ".bin" : ".npy";
}

/* The name an entry would have if nothing clashed; escaped if unsafe. */
static char *base_name(const struct mpfs_view *v, const struct mpfs_node *n, uint32_t index)
{
	const struct mpfs_doc *doc = &v->model.doc;
	const char *suffix = suffix_of(v, n);
	char buf[MPFS_NAME_MAX + 1];
	struct mpfs_strbuf json;

	if (!n->key) {
		if (n->label)
			snprintf(buf, sizeof(buf), "%s%s", n->label, suffix);
		else
			snprintf(buf, sizeof(buf), "%" PRIu32 "%s", index, suffix);
		return strdup(buf);
	}
	if (n->key->type == MPFS_STR || n->key->type == MPFS_BIN) {
		const uint8_t *k = mpfs_val_data(doc, n->key);
		if (!mpfs_name_is_plain(k, n->key->len, suffix))
			mpfs_name_escape(k, n->key->len, "", suffix, index, buf);
		else
			snprintf(buf, sizeof(buf), "%.*s%s", (int)n->key->len, k, suffix);
		return strdup(buf);
	}
	/* Other keys (ints, mostly) are named by their JSON text. */
	mpfs_strbuf_init(&json);
	mpfs_json_render(doc, n->key, &json);
	if (json.oom) {
		mpfs_strbuf_destroy(&json);
		return NULL;
	}
	if (mpfs_name_is_plain((uint8_t *)json.p, json.len, suffix))
		snprintf(buf, sizeof(buf), "%s%s", json.p, suffix);
	else
		mpfs_name_escape((uint8_t *)json.p, json.len, "#", suffix, index, buf);
	mpfs_strbuf_destroy(&json);
	return strdup(buf);
}

static int by_name(const void *a, const void *b, void *kids_arg)
{
	const struct vnode *kids = kids_arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(kids[x].name, kids[y].name);
	return c ? c : (x > y) - (x < y);
}

/* Names the children of directory node n; the later of two clashing entries
 * (in archive order) is escaped. */
static int name_children(struct mpfs_view *v, struct vnode *dir)
{
	const struct mpfs_node *n = dir->node;
	const struct mpfs_doc *doc = &v->model.doc;
	struct vnode *vn = v->vn;
	uint32_t *order;
	struct vnode *kids;
	bool clash = true;

	order = malloc((n->nchildren ? n->nchildren : 1) * sizeof(*order));
	kids = malloc((n->nchildren ? n->nchildren : 1) * sizeof(*kids));
	if (!order || !kids)
		goto out_nomem;
	for (uint32_t i = 0; i < n->nchildren; i++) {
		const struct mpfs_node *c = &n->children[i];
		vn[c->id].name = base_name(v, c, i);
		if (!vn[c->id].name)
			goto out_nomem;
		kids[i].name = vn[c->id].name;
		order[i] = i;
		if (mpfs_node_is_dir(c))
			dir->nsubdirs++;
	}
	while (clash) {
		clash = false;
		qsort_r(order, n->nchildren, sizeof(*order), by_name, kids);
		for (uint32_t i = 1; i < n->nchildren; i++) {
			uint32_t later = order[i];
			const struct mpfs_node *c = &n->children[later];
			char buf[MPFS_NAME_MAX + 1];

			if (strcmp(kids[order[i - 1]].name, kids[later].name))
				continue;
			/* Escape the later entry: the sort keeps archive order. */
			if (c->key && (c->key->type == MPFS_STR || c->key->type == MPFS_BIN)) {
				mpfs_name_escape(mpfs_val_data(doc, c->key), c->key->len, "",
						 suffix_of(v, c), later, buf);
			} else {
				const char *s = kids[later].name;
				mpfs_name_escape((const uint8_t *)s,
						 strlen(s) - strlen(suffix_of(v, c)), "#",
						 suffix_of(v, c), later, buf);
			}
			if (!strcmp(buf, kids[later].name)) /* equal keys: name by position */
				snprintf(buf, sizeof(buf), "%%~%u~%s", later, suffix_of(v, c));
			free(vn[c->id].name);
			vn[c->id].name = kids[later].name = strdup(buf);
			if (!kids[later].name)
				goto out_nomem;
			clash = true;
		}
	}
	free(kids);
	dir->sorted = order;
	return 0;

out_nomem:
	free(kids);
	free(order);
	return -ENOMEM;
}

static int build(struct mpfs_view *v, const struct mpfs_node *n)
{
	struct vnode *vn = &v->vn[n->id];
	char hdr[MPFS_NPY_HEADER_MAX];

	vn->node = n;
	switch (n->kind) {
	case MPFS_N_ARRAY:
		vn->hdr_len = v->raw ? 0 : (uint32_t)mpfs_npy_header(n->array, hdr);
		vn->size = vn->hdr_len + n->array->nbytes;
		return 0;
	case MPFS_N_BYTES: vn->size = n->val->len; return 0;
	case MPFS_N_TEXT: return 0;
	default: break;
	}
	if (name_children(v, vn))
		return -ENOMEM;
	for (uint32_t i = 0; i < n->nchildren; i++)
		if (build(v, &n->children[i]))
			return -ENOMEM;
	return 0;
}

int mpfs_view_open(struct mpfs_view **out, const char *path, const struct mpfs_view_opts *opts,
		   struct mpfs_error *err)
{
	struct mpfs_view *v;
	int fd, rc;

	memset(err, 0, sizeof(*err));
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->raw = opts->raw;
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
	if (mpfs_model_init(&v->model, v->map, v->map_len, err)) {
		rc = err->code == MPFS_E_NOMEM ? -ENOMEM : -EINVAL;
		goto out_unmap;
	}
	v->vn = calloc(v->model.nnodes, sizeof(*v->vn));
	if (!v->vn || build(v, &v->model.root)) {
		rc = -ENOMEM;
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		goto out_free_view;
	}
	pthread_mutex_init(&v->lock, NULL);
	*out = v;
	return 0;

out_free_view:
	if (v->vn)
		for (uint32_t i = 0; i < v->model.nnodes; i++)
			free(v->vn[i].name), free(v->vn[i].sorted);
	free(v->vn);
	mpfs_model_destroy(&v->model);
out_unmap:
	if (v->map)
		munmap(v->map, v->map_len);
	close(v->fd);
out_close:
	if (fd >= 0)
		close(fd);
	free(v);
	return rc;
}

void mpfs_view_close(struct mpfs_view *v)
{
	if (!v)
		return;
	for (uint32_t i = 0; i < v->model.nnodes; i++) {
		free(v->vn[i].name);
		free(v->vn[i].sorted);
		free(v->vn[i].data);
	}
	free(v->vn);
	mpfs_model_destroy(&v->model);
	if (v->map)
		munmap(v->map, v->map_len);
	close(v->fd);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

/* ---- lookup and attributes --------------------------------------------- */

static int find_child(const struct mpfs_view *v, uint32_t dir, const char *name, size_t len,
		      uint32_t *id)
{
	const struct vnode *d = &v->vn[dir];
	const struct mpfs_node *n = d->node;
	size_t lo = 0, hi = n->nchildren;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint32_t cid = n->children[d->sorted[mid]].id;
		const char *cn = v->vn[cid].name;
		int c = strncmp(cn, name, len);
		if (c == 0 && cn[len])
			c = 1;
		if (c == 0) {
			*id = cid;
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

int mpfs_view_lookup(const struct mpfs_view *v, const char *path, uint32_t *id)
{
	uint32_t cur = MPFS_ROOT_ID;

	while (*path) {
		const char *end;
		size_t len;

		while (*path == '/')
			path++;
		if (!*path)
			break;
		end = strchr(path, '/');
		len = end ? (size_t)(end - path) : strlen(path);
		if (len > MPFS_NAME_MAX)
			return -ENAMETOOLONG;
		if (!mpfs_node_is_dir(v->vn[cur].node))
			return -ENOTDIR;
		if (find_child(v, cur, path, len, &cur))
			return -ENOENT;
		path += len;
	}
	*id = cur;
	return 0;
}

bool mpfs_view_is_dir(const struct mpfs_view *v, uint32_t id)
{
	return mpfs_node_is_dir(v->vn[id].node);
}

struct making {
	struct mpfs_view *v;
	struct vnode *vn;
	struct mpfs_strbuf text; /* freed by make() whatever happens */
	uint8_t *bytes;
};

/* Reads the archive to make a content (under the SIGBUS guard). */
static int make_guarded(void *arg)
{
	struct making *m = arg;
	const struct mpfs_node *n = m->vn->node;

	if (n->kind == MPFS_N_TEXT) {
		mpfs_json_render(&m->v->model.doc, n->val, &m->text);
		mpfs_strbuf_add(&m->text, "\n", 1);
		return m->text.oom ? -ENOMEM : 0;
	}
	m->bytes = malloc(n->array->nbytes ? n->array->nbytes : 1);
	if (!m->bytes)
		return -ENOMEM;
	if (n->array->encoding == MPFS_ENC_NESTED)
		mpfs_array_fill(&m->v->model.doc, n->array, m->bytes);
	else /* a big-endian array shown raw: little-endian bytes */
		mpfs_array_swap(n->array, m->v->model.doc.buf + n->array->data_off, m->bytes);
	return 0;
}

/* -EIO if the archive was cut short in place since it was mapped: past its
 * new end the mapping gives zeros or SIGBUS, not the archive. A fstat is
 * cheap next to the FUSE request that brought us here. */
static int intact(const struct mpfs_view *v)
{
	struct stat st;
	return fstat(v->fd, &st) == 0 && (uint64_t)st.st_size >= v->map_len ? 0 : -EIO;
}

/* Makes the content of a text file or nested array; called with the lock. */
static int make(struct mpfs_view *v, struct vnode *vn)
{
	struct making m = {.v = v, .vn = vn};
	int rc;

	if ((rc = intact(v)))
		return rc;
	mpfs_strbuf_init(&m.text);
	rc = mpfs_guard_run(make_guarded, &m);
	if (rc) {
		mpfs_strbuf_destroy(&m.text);
		free(m.bytes);
		return rc;
	}
	if (vn->node->kind == MPFS_N_TEXT) {
		vn->data = (uint8_t *)m.text.p;
		vn->size = m.text.len;
	} else {
		vn->data = m.bytes;
	}
	vn->ready = true;
	return 0;
}

/* With -o raw, arrays are little-endian bytes: a big-endian one is swapped. */
static bool swapped(const struct mpfs_view *v, const struct mpfs_node *n)
{
	return v->raw && n->kind == MPFS_N_ARRAY && n->array->descr[0] == '>';
}

/* Content that is made, not served from the mapping as it is. */
static bool needs_making(const struct mpfs_view *v, const struct vnode *vn)
{
	const struct mpfs_node *n = vn->node;
	return n->kind == MPFS_N_TEXT ||
	       (n->kind == MPFS_N_ARRAY && n->array->encoding == MPFS_ENC_NESTED) || swapped(v, n);
}

static int ensure(struct mpfs_view *v, struct vnode *vn)
{
	int rc = 0;

	if (!needs_making(v, vn))
		return 0;
	pthread_mutex_lock(&v->lock);
	if (!vn->ready)
		rc = make(v, vn);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

int mpfs_view_stat(struct mpfs_view *v, uint32_t id, struct stat *st)
{
	struct vnode *vn = &v->vn[id];
	bool text = vn->node->kind == MPFS_N_TEXT;
	int rc;

	/* A text file's size is its rendered length; arrays know theirs. */
	if (text && (rc = ensure(v, vn)))
		return rc;
	memset(st, 0, sizeof(*st));
	st->st_ino = id + 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_atim = v->st.st_atim;
	st->st_mtim = v->st.st_mtim;
	st->st_ctim = v->st.st_ctim;
	st->st_blksize = 4096;
	if (mpfs_node_is_dir(vn->node)) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2 + vn->nsubdirs;
		st->st_size = 0;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)vn->size;
		st->st_blocks = (blkcnt_t)((vn->size + 511) / 512);
	}
	return 0;
}

uint32_t mpfs_view_nchildren(const struct mpfs_view *v, uint32_t id)
{
	return v->vn[id].node->nchildren;
}

const char *mpfs_view_child(const struct mpfs_view *v, uint32_t id, uint32_t i, uint32_t *child)
{
	const struct mpfs_node *c = &v->vn[id].node->children[i];
	*child = c->id;
	return v->vn[c->id].name;
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
	struct vnode *vn = &v->vn[id];
	const struct mpfs_node *n = vn->node;
	const uint8_t *data;
	char hdr[MPFS_NPY_HEADER_MAX];
	size_t got = 0;
	int rc;

	if (mpfs_node_is_dir(n))
		return -EISDIR;
	if ((rc = ensure(v, vn)))
		return rc;
	switch (n->kind) {
	case MPFS_N_TEXT: return copy_span(buf, size, off, vn->data, vn->size);
	case MPFS_N_BYTES:
		if ((rc = intact(v)))
			return rc;
		return copy_span(buf, size, off, mpfs_val_data(&v->model.doc, n->val), n->val->len);
	default: break;
	}
	if (off < vn->hdr_len) {
		mpfs_npy_header(n->array, hdr);
		got = (size_t)copy_span(buf, size, off, hdr, vn->hdr_len);
		off += got;
	}
	data = needs_making(v, vn) ? vn->data : v->model.doc.buf + n->array->data_off;
	if (data != vn->data && (rc = intact(v)))
		return rc;
	long more = copy_span(buf + got, size - got, off - vn->hdr_len, data, n->array->nbytes);
	return more < 0 ? more : (long)got + more;
}

/* ---- extended attributes ----------------------------------------------- */

static long xattr_value(struct mpfs_view *v, const struct vnode *vn, const char *name,
			struct mpfs_strbuf *out)
{
	const struct mpfs_node *n = vn->node;
	char shape[MPFS_MAX_DIMS * 21];

	if (!strcmp(name, "user.mpfs.key") && n->key) {
		mpfs_json_render(&v->model.doc, n->key, out);
	} else if (n->kind == MPFS_N_ARRAY && !strcmp(name, "user.mpfs.dtype")) {
		if (swapped(v, n)) /* what the .bin file holds */
			mpfs_strbuf_add(out, "<", 1);
		mpfs_strbuf_puts(out, n->array->descr + swapped(v, n));
	} else if (n->kind == MPFS_N_ARRAY && !strcmp(name, "user.mpfs.shape")) {
		mpfs_array_shape_str(n->array, shape, sizeof(shape));
		mpfs_strbuf_puts(out, shape);
	} else if (n->kind == MPFS_N_ARRAY && !strcmp(name, "user.mpfs.encoding")) {
		mpfs_strbuf_puts(out, n->array->encoding == MPFS_ENC_NESTED ? "nested" : "compact");
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

struct xattr_call {
	struct mpfs_view *v;
	const struct vnode *vn;
	const char *name;
	struct mpfs_strbuf *out;
};

static int xattr_guarded(void *arg)
{
	struct xattr_call *c = arg;
	return (int)xattr_value(c->v, c->vn, c->name, c->out);
}

long mpfs_view_getxattr(struct mpfs_view *v, uint32_t id, const char *name, char *buf, size_t size)
{
	struct mpfs_strbuf out;
	struct xattr_call c = {v, &v->vn[id], name, &out};
	long rc;

	mpfs_strbuf_init(&out);
	rc = mpfs_guard_run(xattr_guarded, &c); /* keys lie in the mapping */
	if (rc == 0)
		rc = give(out.p ? out.p : "", out.len, buf, size);
	mpfs_strbuf_destroy(&out);
	return rc;
}

long mpfs_view_listxattr(struct mpfs_view *v, uint32_t id, char *buf, size_t size)
{
	static const char *const names[] = {"user.mpfs.key", "user.mpfs.dtype", "user.mpfs.shape",
					    "user.mpfs.encoding", "user.mpfs.ext"};
	struct mpfs_strbuf list, val;
	long rc;

	mpfs_strbuf_init(&list);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		mpfs_strbuf_init(&val);
		if (xattr_value(v, &v->vn[id], names[i], &val) == 0)
			mpfs_strbuf_add(&list, names[i], strlen(names[i]) + 1);
		mpfs_strbuf_destroy(&val);
	}
	rc = list.oom ? -ENOMEM : give(list.p ? list.p : "", list.len, buf, size);
	mpfs_strbuf_destroy(&list);
	return rc;
}

/* ---- for the edit layer -------------------------------------------------- */

const struct mpfs_node *mpfs_view_node(const struct mpfs_view *v, uint32_t id)
{
	return v->vn[id].node;
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
