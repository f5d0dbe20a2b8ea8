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
 * rewritten in place cannot lead a walk past its end.
 *
 * Here: opening, lookup, attributes and contents; naming directories is in
 * view_names.c, extended attributes in view_xattr.c, what they share in
 * view_i.h. */
#include "fs/view_i.h"

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

static void vfile_free(struct vfile *f)
{
	if (f && f->filled)
		mpfs_fill_free(f->data, f->size);
	else if (f)
		free(f->data);
	free(f);
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
	if ((rc = mpfs_view_named(v, MPFS_ROOT_ID, &root))) {
		snprintf(err->msg, sizeof(err->msg), "%s",
			 rc == -ENOMEM ? "out of memory"
				       : "the archive was cut short while being read");
		goto out_free_view;
	}
	*out = v;
	return 0;

out_free_view:
	if (v->lazy)
		mpfs_vdir_free(v->lazy[MPFS_ROOT_ID]);
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
			mpfs_vdir_free(v->lazy[id]);
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
	if (strncmp(mpfs_vdir_name(d, (uint32_t)i), name, len) ||
	    mpfs_vdir_name(d, (uint32_t)i)[len])
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

	if ((rc = mpfs_view_named(v, dir, &d)))
		return rc;
	if (!d->sorted)
		return n->nchildren ? find_in_list(v, n, d, name, len, id) : -ENOENT;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *cn = mpfs_vdir_name(d, d->sorted[mid]);
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
	if (mpfs_node_is_dir(node_of(v, cur)) && (rc = mpfs_view_named(v, cur, &d)))
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
	if (cur == MPFS_ROOT_ID && (rc = mpfs_view_named(v, cur, &d)))
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
		if ((rc = mpfs_view_named(v, id, &d)))
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
	if (mpfs_view_named(v, id, &d))
		return "%~unnamed~";
	return mpfs_vdir_name(d, i);
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
