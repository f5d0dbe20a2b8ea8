/* The mounted filesystem: a view of the archive as committed, plus pending
 * edits kept by path.
 *
 * A file opened for writing gets a pending buffer holding its whole content;
 * writes, truncates and reads go there. A flush (or fsync, or a release after
 * late writes through a shared mapping) turns the buffer into a MsgPack value
 * and commits: the archive is rewritten with that one edit and the view is
 * replaced by one of the new archive. Directory operations commit at once.
 * Scratch files (editor swap files, sed's temporaries) only ever live here.
 *
 * One rwlock guards the view and the pending list: reads share it, anything
 * that changes either takes it alone. */
#define _GNU_SOURCE
#include "fs/fs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/encode.h"
#include "codec/json.h"
#include "codec/model.h"
#include "codec/npy.h"
#include "fs/commit.h"
#include "fs/names.h"
#include "fs/view.h"

struct pending {
	struct pending *next;
	char *path;
	uint8_t *data;
	size_t len, cap;
	unsigned refs;  /* open handles */
	bool dirty;     /* differs from the archive */
	bool scratch;   /* memory only */
	bool fresh;     /* not in the archive yet */
	bool detached;  /* unlinked or renamed away while open */
	bool refused;   /* the last commit was refused, nothing written since */
};

struct handle {
	char *path;
	struct pending *p; /* NULL for a read-only handle on an archive file */
	bool late;         /* written since the last commit attempt */
};

struct mpfs_fs {
	char *archive;
	struct mpfs_view *view;
	struct pending *pending;
	/* Archive files renamed to a scratch name: gone from the tree, but kept
	 * in the archive until a file of that name replaces them in place (an
	 * editor's backup-rename save) or the mount ends (then deleted). */
	char **hidden;
	size_t nhidden;
	struct mpfs_fs_opts opts;
	pthread_rwlock_t lock;
};

static int delete_entry(struct mpfs_fs *fs, const char *path, uint32_t id, uint32_t dir);

static void nolog(const char *fmt, ...)
{
	(void)fmt;
}

/* ---- names ----------------------------------------------------------------- */

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

static const char *base_of(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* The parent directory's path, in caller storage. */
static void parent_of(const char *path, char *out, size_t cap)
{
	const char *s = strrchr(path, '/');
	size_t n = s && s != path ? (size_t)(s - path) : 1;
	if (n >= cap)
		n = cap - 1;
	memcpy(out, path, n);
	out[n] = '\0';
}

/* ---- hidden entries -------------------------------------------------------- */

static bool is_hidden(const struct mpfs_fs *fs, const char *path)
{
	for (size_t i = 0; i < fs->nhidden; i++)
		if (!strcmp(fs->hidden[i], path))
			return true;
	return false;
}

static int hide(struct mpfs_fs *fs, const char *path)
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

static void unhide(struct mpfs_fs *fs, const char *path)
{
	for (size_t i = 0; i < fs->nhidden; i++)
		if (!strcmp(fs->hidden[i], path)) {
			free(fs->hidden[i]);
			fs->hidden[i] = fs->hidden[--fs->nhidden];
			return;
		}
}

/* Looks path up as the user sees the tree: hidden entries are absent. */
static int lookup(const struct mpfs_fs *fs, const char *path, uint32_t *id)
{
	if (fs->nhidden && is_hidden(fs, path))
		return -ENOENT;
	return mpfs_view_lookup(fs->view, path, id);
}

/* ---- pending buffers ---------------------------------------------------- */

static struct pending *find_pending(struct mpfs_fs *fs, const char *path)
{
	for (struct pending *p = fs->pending; p; p = p->next)
		if (!strcmp(p->path, path))
			return p;
	return NULL;
}

/* What others than its writers see of a pending file: its buffer while it
 * holds something the archive does not (yet), else the archive's content,
 * which may read differently from what was written ("300" shows "300\n"). */
static struct pending *shown_pending(struct mpfs_fs *fs, const char *path)
{
	struct pending *p = find_pending(fs, path);
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

static void free_pending(struct pending *p)
{
	free(p->path);
	free(p->data);
	free(p);
}

/* Takes p out of the namespace; it is freed when its last handle goes. */
static void drop_pending(struct mpfs_fs *fs, struct pending *p)
{
	unlist(fs, p);
	if (p->refs)
		p->detached = true;
	else
		free_pending(p);
}

static int resize(struct pending *p, size_t len)
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
static int load_content(struct mpfs_fs *fs, struct pending *p, uint32_t id)
{
	struct stat st;
	long got;
	int rc;

	if ((rc = mpfs_view_stat(fs->view, id, &st)) || (rc = resize(p, (size_t)st.st_size)))
		return rc;
	got = mpfs_view_read(fs->view, id, (char *)p->data, p->len, 0);
	if (got < 0)
		return (int)got;
	p->len = (size_t)got;
	return 0;
}

static struct pending *new_pending(struct mpfs_fs *fs, const char *path)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (!p || !(p->path = strdup(path))) {
		free(p);
		return NULL;
	}
	p->scratch = mpfs_fs_is_scratch(base_of(path));
	p->next = fs->pending;
	fs->pending = p;
	return p;
}

/* ---- commit ------------------------------------------------------------------ */

/* Runs one commit and, on success, swaps in the new view. */
static bool edited(const struct mpfs_edit *edits, size_t n, const struct mpfs_node *e,
		   const struct mpfs_val *dir, uint32_t index)
{
	for (size_t i = 0; i < n; i++)
		if (edits[i].target == e->val || (e->key && edits[i].target == e->key) ||
		    (edits[i].op == MPFS_EDIT_DELETE && edits[i].target == dir &&
		     edits[i].index == index))
			return true;
	return false;
}

/* Runs one commit and, on success, swaps in the new view. Entries hidden by
 * a rename to a scratch name go with it, unless the edits replace them. */
static int commit(struct mpfs_fs *fs, const struct mpfs_edit *edits, size_t n, const char *what)
{
	struct mpfs_edit *all = NULL;
	struct mpfs_view *nv;
	struct mpfs_error err;
	size_t total = n;
	int rc;

	if (fs->nhidden) {
		all = malloc((n + fs->nhidden) * sizeof(*all));
		if (!all)
			return -ENOMEM;
		if (n)
			memcpy(all, edits, n * sizeof(*all));
		for (size_t i = 0; i < fs->nhidden; i++) {
			char d[PATH_MAX];
			uint32_t id, dir;

			parent_of(fs->hidden[i], d, sizeof(d));
			if (mpfs_view_lookup(fs->view, d, &dir) ||
			    mpfs_view_lookup(fs->view, fs->hidden[i], &id))
				continue;
			const struct mpfs_node *dn = mpfs_view_node(fs->view, dir);
			const struct mpfs_node *e = mpfs_view_node(fs->view, id);
			uint32_t index = (uint32_t)(e - dn->children);
			if (!edited(edits, n, e, dn->val, index))
				all[total++] = (struct mpfs_edit){.op = MPFS_EDIT_DELETE,
								  .target = dn->val, .index = index};
		}
		edits = all;
	}
	rc = mpfs_commit(fs->archive, fs->view, edits, total, &nv, &err);
	free(all);
	if (rc) {
		fs->opts.log("%s: %s", what, err.msg);
		return rc;
	}
	mpfs_view_close(fs->view);
	fs->view = nv;
	while (fs->nhidden)
		unhide(fs, fs->hidden[0]);
	return 0;
}

/* Encodes content as the new value of archive entry id (kind kept). */
static int encode_for(struct mpfs_fs *fs, uint32_t id, const uint8_t *data, size_t len,
		      struct mpfs_strbuf *out, const char *path)
{
	const struct mpfs_doc *doc = mpfs_view_doc(fs->view);
	const struct mpfs_node *n = mpfs_view_node(fs->view, id);
	struct mpfs_array a;
	struct mpfs_error err = {0};
	const uint8_t *elems = data;
	uint8_t *copy = NULL;
	int rc = -EINVAL;

	switch (n->kind) {
	case MPFS_N_TEXT:
		if (mpfs_encode_json(doc, n->val, (const char *)data, len, out, &err))
			goto refuse;
		return 0;
	case MPFS_N_BYTES:
		mpfs_encode_bytes(doc, n->val, data, len, out);
		return 0;
	case MPFS_N_ARRAY:
		if (mpfs_view_raw(fs->view)) {
			a = *n->array;
			if (len != a.nbytes) {
				mpfs_error_set(&err, MPFS_E_ARRAY, 0,
					       "raw array of %llu bytes expected, got %zu",
					       (unsigned long long)a.nbytes, len);
				goto refuse;
			}
		} else if (mpfs_npy_parse(data, len, &a, &elems, &copy, &err)) {
			goto refuse;
		}
		rc = mpfs_encode_array(doc, n->array, &a, elems, out, &err) ? -EINVAL : 0;
		free(copy);
		if (rc)
			goto refuse;
		return 0;
	default:
		return -EISDIR;
	}
refuse:
	if (err.code == MPFS_E_NOMEM)
		return -ENOMEM;
	fs->opts.log("%s: refused: %s", path, err.msg);
	return -EINVAL;
}

/* Encodes the key a new entry named name gets in map dir: escaped names are
 * decoded; a decimal name in a map whose keys are all integers is an int. */
static int encode_key(struct mpfs_fs *fs, const struct mpfs_node *dir, const char *name,
		      bool array, struct mpfs_strbuf *out)
{
	const struct mpfs_doc *doc = mpfs_view_doc(fs->view);
	size_t n = strlen(name), sl = 4;
	bool ints = dir->val->len > 0, digits = n > 0;
	uint8_t *raw;
	long k;

	if (array && n > sl && (!strcmp(name + n - sl, ".npy") || !strcmp(name + n - sl, ".bin")))
		n -= sl;
	if (name[0] == '%') {
		if (n >= 2 && name[1] == '~')
			return -EINVAL; /* a truncated name has no key */
		bool json = n >= 2 && name[1] == '#';
		size_t skip = json ? 2 : 1;
		raw = malloc(n + 1);
		if (!raw)
			return -ENOMEM;
		k = mpfs_name_unescape(name + skip, n - skip, raw);
		if (k < 0) {
			free(raw);
			return -EINVAL;
		}
		if (json) {
			struct mpfs_error err;
			int rc = mpfs_encode_json(doc, &(struct mpfs_val){.type = MPFS_NIL},
						  (char *)raw, (size_t)k, out, &err) ? -EINVAL : 0;
			free(raw);
			return rc;
		}
		mpfs_encode_key(doc, raw, (size_t)k, false, out);
		free(raw);
		return 0;
	}
	for (uint32_t i = 0; i < dir->val->len; i++) {
		uint8_t t = dir->val->items[2 * i].type;
		ints &= t == MPFS_INT || t == MPFS_UINT;
	}
	for (size_t i = 0; i < n; i++)
		digits &= isdigit((unsigned char)name[i]) || (i == 0 && name[0] == '-' && n > 1);
	mpfs_encode_key(doc, (const uint8_t *)name, n, ints && digits && n < 19, out);
	return out->oom ? -ENOMEM : 0;
}

/* True if path lies under a "weights" map, where lists are arrays. */
static bool in_weights(const char *path)
{
	return strstr(path, "/weights/") != NULL;
}

/* Puts content under path: replaces the entry's value, or adds a key. */
static int commit_content(struct mpfs_fs *fs, const char *path, const uint8_t *data, size_t len)
{
	struct mpfs_strbuf val, key;
	struct mpfs_edit ed = {0};
	char dir[PATH_MAX];
	uint32_t id, did;
	int rc;

	mpfs_strbuf_init(&val);
	mpfs_strbuf_init(&key);
	if (mpfs_view_lookup(fs->view, path, &id) == 0) {
		if ((rc = encode_for(fs, id, data, len, &val, path)))
			goto out;
		ed = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
					.target = mpfs_view_node(fs->view, id)->val};
	} else {
		const struct mpfs_doc *doc = mpfs_view_doc(fs->view);
		const struct mpfs_node *d;
		const char *name = base_of(path);
		size_t n = strlen(name);
		bool npy = n > 4 && !strcmp(name + n - 4, ".npy");
		struct mpfs_error err = {0};

		parent_of(path, dir, sizeof(dir));
		if ((rc = mpfs_view_lookup(fs->view, dir, &did)))
			goto out;
		d = mpfs_view_node(fs->view, did);
		rc = -EPERM;
		if (d->kind != MPFS_N_MAP)
			goto out; /* lists and csr matrices have fixed members */
		if (mpfs_view_raw(fs->view) && n > 4 && !strcmp(name + n - 4, ".bin")) {
			fs->opts.log("%s: refused: a new raw array has no dtype or shape; "
				     "create NAME.npy on a mount without -o raw", path);
			rc = -EINVAL;
			goto out;
		}
		if (npy && !mpfs_view_raw(fs->view)) {
			struct mpfs_array a;
			const uint8_t *elems;
			uint8_t *copy = NULL;
			/* A new array under weights takes the archive's style
			 * (elsewhere a nested list would read back as plain
			 * data); nested lists cannot hold every dtype, compact
			 * maps can. */
			struct mpfs_array style = {.encoding = MPFS_ENC_NESTED};
			bool bad = mpfs_npy_parse(data, len, &a, &elems, &copy, &err);
			if (!bad && !(in_weights(path) &&
				      mpfs_view_new_array_encoding(fs->view) == MPFS_ENC_NESTED &&
				      !mpfs_encode_array(doc, &style, &a, elems, &val, &err))) {
				val.len = 0;
				bad = mpfs_encode_array(doc, NULL, &a, elems, &val, &err);
			}
			free(copy);
			if (bad) {
				fs->opts.log("%s: refused: %s", path, err.msg);
				rc = err.code == MPFS_E_NOMEM ? -ENOMEM : -EINVAL;
				goto out;
			}
		} else if (mpfs_encode_json(doc, NULL, (const char *)data, len, &val, &err)) {
			rc = -EINVAL;
			goto out;
		}
		if ((rc = encode_key(fs, d, name, npy, &key)))
			goto out;
		ed = (struct mpfs_edit){.op = MPFS_EDIT_INSERT, .target = d->val,
					.key = (uint8_t *)key.p, .key_len = key.len};
	}
	rc = -ENOMEM;
	if (val.oom || key.oom)
		goto out;
	ed.bytes = (uint8_t *)val.p;
	ed.len = val.len;
	/* The same value encoded the same way: nothing to write. */
	if (ed.op == MPFS_EDIT_REPLACE && ed.len == ed.target->end - ed.target->off &&
	    !memcmp(ed.bytes, mpfs_view_doc(fs->view)->buf + ed.target->off, ed.len))
		rc = 0;
	else
		rc = commit(fs, &ed, 1, path);
	if (rc == 0) {
		unhide(fs, path);
		if (fs->opts.changed)
			fs->opts.changed(path);
	}
out:
	mpfs_strbuf_destroy(&val);
	mpfs_strbuf_destroy(&key);
	return rc;
}

/* Commits a pending buffer; an empty one (left by a truncation) waits. */
static int commit_pending(struct mpfs_fs *fs, struct pending *p)
{
	int rc;

	/* A refusal sticks until new writes arrive: numpy writes through a
	 * dup'ed descriptor whose close error it ignores, so the close it does
	 * see must still fail. */
	if (p->refused && !p->dirty)
		return -EINVAL;
	if (!p->dirty || p->scratch || p->detached || p->len == 0)
		return 0;
	rc = commit_content(fs, p->path, p->data, p->len);
	if (rc == 0) {
		p->dirty = false;
		p->fresh = false;
		return 0;
	}
	/* Refused: the file reads back as the archive holds it. */
	uint32_t id;
	p->dirty = false;
	p->refused = rc == -EINVAL;
	if (lookup(fs, p->path, &id) == 0)
		load_content(fs, p, id);
	else
		p->len = 0;
	return rc;
}

/* ---- open, close ------------------------------------------------------- */

int mpfs_fs_open(struct mpfs_fs **out, const char *archive, const struct mpfs_fs_opts *opts,
		 struct mpfs_error *err)
{
	struct mpfs_view_opts vo = {.raw = opts->raw};
	struct mpfs_fs *fs = calloc(1, sizeof(*fs));
	char *dir;
	int rc;

	if (!fs || !(fs->archive = realpath(archive, NULL))) {
		rc = fs ? -errno : -ENOMEM;
		snprintf(err->msg, sizeof(err->msg), "%s", strerror(-rc));
		free(fs);
		return rc;
	}
	if ((rc = mpfs_view_open(&fs->view, fs->archive, &vo, err))) {
		free(fs->archive);
		free(fs);
		return rc;
	}
	fs->opts = *opts;
	if (!fs->opts.log)
		fs->opts.log = nolog;
	/* Commits write a file beside the archive and rename it over. */
	dir = strdup(fs->archive);
	if (!dir || access(fs->archive, W_OK) || access(dirname(dir), W_OK | X_OK))
		fs->opts.ro = true;
	free(dir);
	if (!fs->opts.ro)
		mpfs_commit_cleanup(fs->archive, fs->opts.log);
	pthread_rwlock_init(&fs->lock, NULL);
	*out = fs;
	return 0;
}

void mpfs_fs_finish(struct mpfs_fs *fs)
{
	pthread_rwlock_wrlock(&fs->lock);
	while (fs->pending) {
		struct pending *p = fs->pending;
		if (commit_pending(fs, p))
			fs->opts.log("%s: not committed at unmount", p->path);
		fs->pending = p->next;
		free_pending(p);
	}
	while (fs->nhidden) {
		char *path = fs->hidden[0];
		uint32_t id, dir;
		char d[PATH_MAX];

		parent_of(path, d, sizeof(d));
		if (mpfs_view_lookup(fs->view, d, &dir) == 0 &&
		    mpfs_view_lookup(fs->view, path, &id) == 0 && delete_entry(fs, path, id, dir))
			fs->opts.log("%s: moved away, but not removed at unmount", path);
		unhide(fs, path);
	}
	pthread_rwlock_unlock(&fs->lock);
}

void mpfs_fs_close(struct mpfs_fs *fs)
{
	if (!fs)
		return;
	mpfs_fs_finish(fs);
	free(fs->hidden);
	mpfs_view_close(fs->view);
	pthread_rwlock_destroy(&fs->lock);
	free(fs->archive);
	free(fs);
}

bool mpfs_fs_readonly(const struct mpfs_fs *fs)
{
	return fs->opts.ro;
}

/* ---- reading ------------------------------------------------------------ */

static void file_stat(const struct mpfs_fs *fs, const struct pending *p, struct stat *st)
{
	const struct stat *a = mpfs_view_archive_stat(fs->view);

	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_size = (off_t)p->len;
	st->st_blocks = (blkcnt_t)((p->len + 511) / 512);
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = a->st_mtim;
}

int mpfs_fs_getattr(struct mpfs_fs *fs, const char *path, struct stat *st)
{
	struct pending *p;
	uint32_t id;
	int rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((p = shown_pending(fs, path))) {
		file_stat(fs, p, st);
		rc = 0;
	} else if ((rc = lookup(fs, path, &id)) == 0 &&
		   (rc = mpfs_view_stat(fs->view, id, st)) == 0 && !fs->opts.ro) {
		st->st_mode |= S_IWUSR;
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

static bool hidden_child(const struct mpfs_fs *fs, const char *dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", name);
	return is_hidden(fs, path);
}

int mpfs_fs_readdir(struct mpfs_fs *fs, const char *path,
		    int (*fill)(void *ctx, const char *name, bool dir), void *ctx)
{
	char dir[PATH_MAX];
	uint32_t id, n, child;
	int rc;

	pthread_rwlock_rdlock(&fs->lock);
	if ((rc = mpfs_view_lookup(fs->view, path, &id)))
		goto out;
	if (!mpfs_view_is_dir(fs->view, id)) {
		rc = -ENOTDIR;
		goto out;
	}
	n = mpfs_view_nchildren(fs->view, id);
	for (uint32_t i = 0; i < n; i++) {
		const char *name = mpfs_view_child(fs->view, id, i, &child);
		if (fs->nhidden && hidden_child(fs, path, name))
			continue;
		if (fill(ctx, name, mpfs_view_is_dir(fs->view, child)))
			goto out;
	}
	/* Files that exist only here: new, not yet valid, or scratch. */
	for (struct pending *p = fs->pending; p; p = p->next) {
		parent_of(p->path, dir, sizeof(dir));
		if (strcmp(dir, path) || lookup(fs, p->path, &child) == 0)
			continue;
		if (fill(ctx, base_of(p->path), false))
			break;
	}
out:
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

long mpfs_fs_read(struct mpfs_fs *fs, uint64_t fh, char *buf, size_t size, uint64_t off)
{
	struct handle *h = (struct handle *)(uintptr_t)fh;
	struct pending *p;
	uint32_t id;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	p = h->p ? h->p : shown_pending(fs, h->path);
	if (p) {
		rc = 0;
		if (off < p->len) {
			rc = (long)(size < p->len - off ? size : p->len - off);
			memcpy(buf, p->data + off, (size_t)rc);
		}
	} else if ((rc = lookup(fs, h->path, &id)) == 0) {
		rc = mpfs_view_read(fs->view, id, buf, size, off);
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

long mpfs_fs_getxattr(struct mpfs_fs *fs, const char *path, const char *name, char *buf,
		      size_t size)
{
	uint32_t id;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	rc = lookup(fs, path, &id);
	if (rc == 0)
		rc = mpfs_view_getxattr(fs->view, id, name, buf, size);
	else if (find_pending(fs, path))
		rc = -ENODATA;
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

long mpfs_fs_listxattr(struct mpfs_fs *fs, const char *path, char *buf, size_t size)
{
	uint32_t id;
	long rc;

	pthread_rwlock_rdlock(&fs->lock);
	rc = lookup(fs, path, &id);
	if (rc == 0)
		rc = mpfs_view_listxattr(fs->view, id, buf, size);
	else if (find_pending(fs, path))
		rc = 0;
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

/* ---- files ---------------------------------------------------------------- */

int mpfs_fs_open_file(struct mpfs_fs *fs, const char *path, int flags, bool create, uint64_t *fh)
{
	bool wr = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) || create;
	struct handle *h = calloc(1, sizeof(*h));
	struct pending *p;
	uint32_t id;
	int rc = 0;

	if (!h || !(h->path = strdup(path))) {
		free(h);
		return -ENOMEM;
	}
	if (wr && fs->opts.ro) {
		rc = -EROFS;
		goto out_free;
	}
	pthread_rwlock_wrlock(&fs->lock);
	p = find_pending(fs, path);
	bool exists = p || lookup(fs, path, &id) == 0;
	if (!exists && !create) {
		rc = -ENOENT;
	} else if (exists && create && (flags & O_EXCL)) {
		rc = -EEXIST;
	} else if (!p && exists && mpfs_view_is_dir(fs->view, id)) {
		rc = wr ? -EISDIR : 0;
	} else if (wr && !p) {
		p = new_pending(fs, path);
		if (!p)
			rc = -ENOMEM;
		else if (!exists)
			p->fresh = true;
		else if (!(flags & O_TRUNC) && (rc = load_content(fs, p, id)))
			drop_pending(fs, p);
	}
	if (rc == 0 && p && (wr || p == shown_pending(fs, path))) {
		p->refs++;
		h->p = p;
		if (flags & O_TRUNC && wr) {
			p->len = 0;
			p->dirty = true;
			p->refused = false;
		}
	}
	pthread_rwlock_unlock(&fs->lock);
	if (rc == 0) {
		*fh = (uint64_t)(uintptr_t)h;
		return 0;
	}
out_free:
	free(h->path);
	free(h);
	return rc;
}

long mpfs_fs_write(struct mpfs_fs *fs, uint64_t fh, const char *buf, size_t size, uint64_t off)
{
	struct handle *h = (struct handle *)(uintptr_t)fh;
	struct pending *p = h->p;
	long rc;

	if (!p)
		return -EBADF;
	if (off + size < off || off + size > SIZE_MAX / 2)
		return -EFBIG;
	pthread_rwlock_wrlock(&fs->lock);
	rc = off + size > p->len ? resize(p, (size_t)(off + size)) : 0;
	if (rc == 0) {
		memcpy(p->data + off, buf, size);
		p->dirty = h->late = true;
		p->refused = false;
		rc = (long)size;
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_truncate(struct mpfs_fs *fs, const char *path, uint64_t fh, uint64_t size)
{
	struct handle *h = (struct handle *)(uintptr_t)fh;
	struct pending *p;
	uint32_t id;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	if (size > SIZE_MAX / 2)
		return -EFBIG;
	pthread_rwlock_wrlock(&fs->lock);
	p = h && h->p ? h->p : find_pending(fs, path);
	if (p) {
		rc = resize(p, (size_t)size);
		p->dirty = true;
		p->refused = false;
	} else if ((rc = lookup(fs, path, &id)) == 0) {
		/* truncate(2) on a closed file: nothing to keep if it is
		 * emptied; otherwise the cut content is committed at once. */
		if (mpfs_view_is_dir(fs->view, id))
			rc = -EISDIR;
		else if (size > 0 && (p = new_pending(fs, path))) {
			if (!(rc = load_content(fs, p, id)) && !(rc = resize(p, (size_t)size))) {
				p->dirty = true;
				rc = commit_pending(fs, p);
			}
			drop_pending(fs, p);
		}
	}
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_flush(struct mpfs_fs *fs, uint64_t fh)
{
	struct handle *h = (struct handle *)(uintptr_t)fh;
	int rc = 0;

	if (!h->p)
		return 0;
	pthread_rwlock_wrlock(&fs->lock);
	if (h->p->len)
		h->late = false;
	rc = commit_pending(fs, h->p);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_release(struct mpfs_fs *fs, uint64_t fh)
{
	struct handle *h = (struct handle *)(uintptr_t)fh;
	struct pending *p = h->p;

	if (p) {
		pthread_rwlock_wrlock(&fs->lock);
		/* Writes through a shared mapping can land after the last flush. */
		if (h->late && commit_pending(fs, p))
			fs->opts.log("%s: the last writes were not committed", p->path);
		if (--p->refs == 0) {
			if (p->detached)
				free_pending(p);
			else if (!p->scratch && !p->fresh)
				drop_pending(fs, p); /* the archive holds it now */
		}
		pthread_rwlock_unlock(&fs->lock);
	}
	free(h->path);
	free(h);
	return 0;
}

/* ---- namespace -------------------------------------------------------------- */

/* The entry at path and its parent directory. */
static int locate(struct mpfs_fs *fs, const char *path, uint32_t *id, uint32_t *dir)
{
	char d[PATH_MAX];
	int rc;

	parent_of(path, d, sizeof(d));
	if ((rc = mpfs_view_lookup(fs->view, d, dir)))
		return rc;
	return lookup(fs, path, id);
}

/* The index of child id among dir's entries, in archive order. */
static uint32_t index_in(const struct mpfs_fs *fs, uint32_t dir, uint32_t id)
{
	const struct mpfs_node *d = mpfs_view_node(fs->view, dir);
	const struct mpfs_node *c = mpfs_view_node(fs->view, id);
	return (uint32_t)(c - d->children);
}

static int delete_entry(struct mpfs_fs *fs, const char *path, uint32_t id, uint32_t dir)
{
	const struct mpfs_node *d = mpfs_view_node(fs->view, dir);
	struct mpfs_edit ed = {.op = MPFS_EDIT_DELETE, .target = d->val,
			       .index = index_in(fs, dir, id)};

	if (d->kind == MPFS_N_CSR)
		return -EPERM; /* its members are fixed */
	return commit(fs, &ed, 1, path);
}

int mpfs_fs_unlink(struct mpfs_fs *fs, const char *path)
{
	struct pending *p;
	uint32_t id, dir;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	pthread_rwlock_wrlock(&fs->lock);
	p = find_pending(fs, path);
	rc = locate(fs, path, &id, &dir);
	if (rc == 0)
		rc = mpfs_view_is_dir(fs->view, id) ? -EISDIR : delete_entry(fs, path, id, dir);
	else if (p)
		rc = 0;
	if (rc == 0 && p)
		drop_pending(fs, p);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

int mpfs_fs_mkdir(struct mpfs_fs *fs, const char *path)
{
	struct mpfs_strbuf key, val;
	char d[PATH_MAX];
	uint32_t dir, id;
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	mpfs_strbuf_init(&key);
	mpfs_strbuf_init(&val);
	pthread_rwlock_wrlock(&fs->lock);
	parent_of(path, d, sizeof(d));
	if ((rc = mpfs_view_lookup(fs->view, d, &dir)))
		goto out;
	if (mpfs_view_lookup(fs->view, path, &id) == 0 || find_pending(fs, path)) {
		rc = -EEXIST; /* also over a hidden file: its key still exists */
		goto out;
	}
	const struct mpfs_node *dn = mpfs_view_node(fs->view, dir);
	if (dn->kind != MPFS_N_MAP) {
		rc = -EPERM;
		goto out;
	}
	if ((rc = encode_key(fs, dn, base_of(path), false, &key)))
		goto out;
	mpfs_encode_empty_map(&val);
	struct mpfs_edit ed = {.op = MPFS_EDIT_INSERT, .target = dn->val, .key = (uint8_t *)key.p,
			       .key_len = key.len, .bytes = (uint8_t *)val.p, .len = val.len};
	rc = val.oom ? -ENOMEM : commit(fs, &ed, 1, path);
out:
	pthread_rwlock_unlock(&fs->lock);
	mpfs_strbuf_destroy(&key);
	mpfs_strbuf_destroy(&val);
	return rc;
}

int mpfs_fs_rmdir(struct mpfs_fs *fs, const char *path)
{
	uint32_t id, dir;
	char d[PATH_MAX];
	int rc;

	if (fs->opts.ro)
		return -EROFS;
	pthread_rwlock_wrlock(&fs->lock);
	rc = locate(fs, path, &id, &dir);
	if (rc == 0 && !mpfs_view_is_dir(fs->view, id))
		rc = -ENOTDIR;
	for (uint32_t i = 0, child; rc == 0 && i < mpfs_view_nchildren(fs->view, id); i++)
		if (!hidden_child(fs, path, mpfs_view_child(fs->view, id, i, &child)))
			rc = -ENOTEMPTY;
	for (struct pending *p = fs->pending; rc == 0 && p; p = p->next) {
		parent_of(p->path, d, sizeof(d));
		if (!strcmp(d, path))
			rc = -ENOTEMPTY;
	}
	if (rc == 0)
		rc = id == MPFS_ROOT_ID ? -EBUSY : delete_entry(fs, path, id, dir);
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}

static bool is_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && path[n] == '/';
}

/* True if an entry hidden by a rename lies inside directory dir. */
static bool any_under(const struct mpfs_fs *fs, const char *dir)
{
	for (size_t i = 0; i < fs->nhidden; i++)
		if (is_under(fs->hidden[i], dir))
			return true;
	return false;
}

/* Files held here inside a directory that moved from from to to follow it. */
static void move_pending_under(struct mpfs_fs *fs, const char *from, const char *to)
{
	size_t fl = strlen(from);

	for (struct pending *p = fs->pending; p; p = p->next) {
		char *np;
		if (!is_under(p->path, from) || asprintf(&np, "%s%s", to, p->path + fl) < 0)
			continue;
		free(p->path);
		p->path = np;
	}
}

/* Renames archive entry (id in dir) to path to. */
static int move_entry(struct mpfs_fs *fs, const char *from, uint32_t id, uint32_t dir,
		      const char *to)
{
	const struct mpfs_doc *doc = mpfs_view_doc(fs->view);
	const struct mpfs_node *n = mpfs_view_node(fs->view, id);
	const struct mpfs_node *dn = mpfs_view_node(fs->view, dir), *tn;
	struct mpfs_edit ed[2];
	struct mpfs_strbuf key;
	uint32_t tid, tdir;
	char td[PATH_MAX];
	size_t ne = 0;
	int rc;

	parent_of(to, td, sizeof(td));
	if ((rc = mpfs_view_lookup(fs->view, td, &tdir)))
		return rc;
	tn = mpfs_view_node(fs->view, tdir);
	if (dn->kind != MPFS_N_MAP || tn->kind != MPFS_N_MAP)
		return -EPERM;
	mpfs_strbuf_init(&key);
	if (mpfs_view_lookup(fs->view, to, &tid) == 0) {
		const struct mpfs_node *t = mpfs_view_node(fs->view, tid);
		if (mpfs_node_is_dir(t) != mpfs_node_is_dir(n)) {
			rc = mpfs_node_is_dir(t) ? -EISDIR : -ENOTDIR;
			goto out;
		}
		if (mpfs_node_is_dir(t) && t->nchildren) {
			rc = -ENOTEMPTY;
			goto out;
		}
		if (tid == id)
			goto out;
		/* Over an existing entry: it takes the moved value. */
		ed[ne++] = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE, .target = t->val,
					      .bytes = doc->buf + n->val->off,
					      .len = n->val->end - n->val->off};
		ed[ne++] = (struct mpfs_edit){.op = MPFS_EDIT_DELETE, .target = dn->val,
					      .index = index_in(fs, dir, id)};
	} else {
		if ((rc = encode_key(fs, tn, base_of(to), n->kind == MPFS_N_ARRAY, &key)))
			goto out;
		if (tdir == dir) { /* a new key, in place */
			ed[ne++] = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE, .target = n->key,
						      .bytes = (uint8_t *)key.p, .len = key.len};
		} else {
			ed[ne++] = (struct mpfs_edit){.op = MPFS_EDIT_DELETE, .target = dn->val,
						      .index = index_in(fs, dir, id)};
			ed[ne++] = (struct mpfs_edit){.op = MPFS_EDIT_INSERT, .target = tn->val,
						      .key = (uint8_t *)key.p, .key_len = key.len,
						      .bytes = doc->buf + n->val->off,
						      .len = n->val->end - n->val->off};
		}
	}
	rc = key.oom ? -ENOMEM : commit(fs, ed, ne, from);
out:
	mpfs_strbuf_destroy(&key);
	return rc;
}

int mpfs_fs_rename(struct mpfs_fs *fs, const char *from, const char *to, bool noreplace)
{
	bool to_scratch = mpfs_fs_is_scratch(base_of(to));
	struct pending *p, *q;
	uint32_t id, dir, tid;
	int rc = 0;

	if (fs->opts.ro)
		return -EROFS;
	pthread_rwlock_wrlock(&fs->lock);
	p = find_pending(fs, from);
	q = find_pending(fs, to);
	if (noreplace && (q || lookup(fs, to, &tid) == 0)) {
		rc = -EEXIST;
		goto out;
	}
	if (p && (p->fresh || p->scratch)) {
		/* Content that lives here: to a scratch name it just moves; to a
		 * real name it is committed there. */
		if (!to_scratch) {
			if (p->len == 0) {
				fs->opts.log("%s: refused: renaming an empty file onto %s", from, to);
				rc = -EINVAL;
				goto out;
			}
			if ((rc = commit_content(fs, to, p->data, p->len)))
				goto out;
			drop_pending(fs, p);
			if (q)
				drop_pending(fs, q);
			goto out;
		}
		if (q && q != p)
			drop_pending(fs, q);
		char *np = strdup(to);
		if (!np) {
			rc = -ENOMEM;
			goto out;
		}
		free(p->path);
		p->path = np;
		p->scratch = true;
		goto out;
	}
	if ((rc = locate(fs, from, &id, &dir)))
		goto out;
	if (to_scratch) {
		/* Out of the archive into memory (a backup copy, say). */
		if (mpfs_view_is_dir(fs->view, id)) {
			rc = -EXDEV;
			goto out;
		}
		struct pending *s = new_pending(fs, to);
		if (!s || (rc = load_content(fs, s, id)) || (rc = hide(fs, from))) {
			if (s)
				drop_pending(fs, s);
			rc = rc ? rc : -ENOMEM;
			goto out;
		}
		if (q)
			drop_pending(fs, q);
		goto out;
	}
	/* A directory's bytes move as they are: entries hidden inside it must
	 * be gone from the archive first. */
	if (mpfs_view_is_dir(fs->view, id) && any_under(fs, from) &&
	    (rc = commit(fs, NULL, 0, from)) == 0)
		rc = locate(fs, from, &id, &dir); /* the view is a new one */
	if (rc == 0 && (rc = move_entry(fs, from, id, dir, to)) == 0) {
		unhide(fs, to);
		if (p)
			drop_pending(fs, p);
		if (q)
			drop_pending(fs, q);
		move_pending_under(fs, from, to);
	}
out:
	pthread_rwlock_unlock(&fs->lock);
	return rc;
}
