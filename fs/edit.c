/* Turning what users do into archive edits: content into values, names
 * into keys, renames into moves; and the commit that applies them. See
 * fs_i.h; callers hold fs->lock as writers. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "codec/npy.h"
#include "fs/commit.h"
#include "fs/fs_i.h"
#include "fs/names.h"

/* The index of child id among dir's entries, in archive order. */
static uint32_t index_in(const struct mpfs_fs *fs, uint32_t dir, uint32_t id)
{
	const struct mpfs_node *d = mpfs_view_node(fs->view, dir);
	const struct mpfs_node *c = mpfs_view_node(fs->view, id);
	return (uint32_t)(c - d->children);
}

/* True if the edits already take care of entry e (at index of directory
 * value dir): they replace its value or key, or delete it. */
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
int mpfs_edit_commit(struct mpfs_fs *fs, const struct mpfs_edit *edits, size_t n, const char *what)
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

			mpfs_path_parent(fs->hidden[i], d, sizeof(d));
			if (mpfs_view_lookup(fs->view, d, &dir) ||
			    mpfs_view_lookup(fs->view, fs->hidden[i], &id))
				continue;
			const struct mpfs_node *dn = mpfs_view_node(fs->view, dir);
			const struct mpfs_node *e = mpfs_view_node(fs->view, id);
			uint32_t index = index_in(fs, dir, id);
			if (!edited(edits, n, e, dn->val, index))
				all[total++] = (struct mpfs_edit){
					.op = MPFS_EDIT_DELETE, .target = dn->val, .index = index};
		}
		edits = all;
	}
	if (total == 0) { /* nothing left to write: no new archive for it */
		free(all);
		goto done;
	}
	rc = mpfs_commit(fs->archive, fs->view, edits, total, &nv, &err);
	free(all);
	if (rc) {
		fs->opts.log("%s: %s", what, err.msg);
		return rc;
	}
	mpfs_view_close(fs->view);
	fs->view = nv;
done:
	while (fs->nhidden)
		mpfs_hidden_del(fs, fs->hidden[0]);
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
	bool bad;

	switch (n->kind) {
	case MPFS_N_TEXT:
		if (mpfs_encode_json(doc, n->val, (const char *)data, len, out, &err))
			goto refuse;
		return 0;
	case MPFS_N_BYTES: mpfs_encode_bytes(doc, n->val, data, len, out); return 0;
	case MPFS_N_ARRAY:
		if (mpfs_view_raw(fs->view)) {
			a = *n->array;
			if (len != a.nbytes) {
				mpfs_error_set(&err, MPFS_E_ARRAY, 0,
					       "raw array of %llu bytes expected, got %zu",
					       (unsigned long long)a.nbytes, len);
				goto refuse;
			}
			if (a.descr[0] == '>') { /* the file is little-endian */
				if (!(copy = malloc(len ? len : 1)))
					return -ENOMEM;
				mpfs_array_swap(&a, data, copy);
				elems = copy;
			}
		} else if (mpfs_npy_parse(data, len, &a, &elems, &copy, &err)) {
			goto refuse;
		}
		bad = mpfs_encode_array(doc, n->array, &a, elems, out, &err) != MPFS_OK;
		free(copy);
		if (bad)
			goto refuse;
		return 0;
	default: return -EISDIR;
	}
refuse:
	if (err.code == MPFS_E_NOMEM)
		return -ENOMEM;
	fs->opts.log("%s: refused: %s", path, err.msg);
	return -EINVAL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && !strcmp(s + n - k, suffix);
}

/* Encodes the key a new entry named name gets in map dir: escaped names are
 * decoded; a decimal name in a map whose keys are all integers is an int. */
int mpfs_edit_key(struct mpfs_fs *fs, const struct mpfs_node *dir, const char *name, bool array,
		  struct mpfs_strbuf *out)
{
	const struct mpfs_doc *doc = mpfs_view_doc(fs->view);
	size_t n = strlen(name);
	bool ints = dir->val->len > 0, digits = n > 0;
	uint8_t *raw;
	long k;

	if (array && (ends_with(name, ".npy") || ends_with(name, ".bin")))
		n -= 4;
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
						  (char *)raw, (size_t)k, out, &err)
					 ? -EINVAL
					 : 0;
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

/* Encodes the content of a new file named by path: NAME.npy an array (under
 * weights in the archive's style, elsewhere compact, which reads back as an
 * array anywhere), any other name a JSON value or else a string. */
static int encode_new(struct mpfs_fs *fs, const char *path, const uint8_t *data, size_t len,
		      struct mpfs_strbuf *out)
{
	const struct mpfs_doc *doc = mpfs_view_doc(fs->view);
	const char *name = mpfs_path_base(path);
	bool raw = mpfs_view_raw(fs->view);
	struct mpfs_array a, nested = {.encoding = MPFS_ENC_NESTED};
	struct mpfs_error err = {0};
	const uint8_t *elems;
	uint8_t *copy = NULL;
	bool bad;

	if (!ends_with(name, raw ? ".bin" : ".npy")) {
		bad = mpfs_encode_json(doc, NULL, (const char *)data, len, out, &err) != MPFS_OK;
	} else if (raw) {
		mpfs_error_set(&err, MPFS_E_ARRAY, 0,
			       "a new raw array has no dtype or shape; "
			       "create NAME.npy on a mount without -o raw");
		bad = true;
	} else {
		bad = mpfs_npy_parse(data, len, &a, &elems, &copy, &err) != MPFS_OK;
		/* nested lists cannot hold every dtype: then compact */
		if (!bad && !(in_weights(path) &&
			      mpfs_view_new_array_encoding(fs->view) == MPFS_ENC_NESTED &&
			      mpfs_encode_array(doc, &nested, &a, elems, out, &err) == MPFS_OK)) {
			out->len = 0;
			bad = mpfs_encode_array(doc, NULL, &a, elems, out, &err) != MPFS_OK;
		}
		free(copy);
	}
	if (!bad)
		return 0;
	if (err.code == MPFS_E_NOMEM)
		return -ENOMEM;
	fs->opts.log("%s: refused: %s", path, err.msg);
	return -EINVAL;
}

/* -ESTALE (logged) if the archive is no longer the file the view was read
 * from: refuse before encoding, which reads the old archive's mapping. */
static int still_ours(struct mpfs_fs *fs, const char *what)
{
	if (mpfs_commit_unchanged(fs->archive, fs->view))
		return 0;
	fs->opts.log("%s: %s", what, MPFS_STALE_MSG);
	return -ESTALE;
}

/* Puts content under path: replaces the entry's value, or adds a key. */
int mpfs_edit_put(struct mpfs_fs *fs, const char *path, const uint8_t *data, size_t len)
{
	struct mpfs_strbuf val, key;
	struct mpfs_edit ed = {0};
	char dir[PATH_MAX];
	uint32_t id, did;
	int rc;

	if ((rc = still_ours(fs, path)))
		return rc;
	mpfs_strbuf_init(&val);
	mpfs_strbuf_init(&key);
	if (mpfs_view_lookup(fs->view, path, &id) == 0) {
		if ((rc = encode_for(fs, id, data, len, &val, path)))
			goto out;
		ed = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
					.target = mpfs_view_node(fs->view, id)->val};
	} else {
		const struct mpfs_node *d;
		const char *name = mpfs_path_base(path);

		mpfs_path_parent(path, dir, sizeof(dir));
		if ((rc = mpfs_view_lookup(fs->view, dir, &did)))
			goto out;
		d = mpfs_view_node(fs->view, did);
		rc = -EPERM;
		if (d->kind != MPFS_N_MAP)
			goto out; /* lists and csr matrices have fixed members */
		if ((rc = encode_new(fs, path, data, len, &val)) ||
		    (rc = mpfs_edit_key(fs, d, name, ends_with(name, ".npy"), &key)))
			goto out;
		ed = (struct mpfs_edit){.op = MPFS_EDIT_INSERT,
					.target = d->val,
					.key = (uint8_t *)key.p,
					.key_len = key.len};
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
		rc = mpfs_edit_commit(fs, &ed, 1, path);
	if (rc == 0) {
		mpfs_hidden_del(fs, path);
		if (fs->opts.changed)
			fs->opts.changed(path);
	}
out:
	mpfs_strbuf_destroy(&val);
	mpfs_strbuf_destroy(&key);
	return rc;
}

/* Commits a pending buffer; an empty one (left by a truncation) waits. */
int mpfs_edit_commit_pending(struct mpfs_fs *fs, struct pending *p)
{
	int rc;

	/* A refusal sticks until new writes arrive: numpy writes through a
	 * dup'ed descriptor whose close error it ignores, so the close it does
	 * see must still fail. */
	if (p->refused && !p->dirty)
		return -EINVAL;
	if (!p->dirty || p->scratch || p->detached || p->len == 0)
		return 0;
	rc = mpfs_edit_put(fs, p->path, p->data, p->len);
	if (rc == 0) {
		p->dirty = false;
		p->fresh = false;
		return 0;
	}
	/* Refused: the file reads back as the archive holds it. */
	uint32_t id;
	p->dirty = false;
	p->refused = rc == -EINVAL;
	if (mpfs_fs_lookup(fs, p->path, &id) == 0)
		mpfs_pending_load(fs, p, id);
	else
		p->len = 0;
	return rc;
}

/* The entry at path and its parent directory. */
int mpfs_fs_locate(struct mpfs_fs *fs, const char *path, uint32_t *id, uint32_t *dir)
{
	char d[PATH_MAX];
	int rc;

	mpfs_path_parent(path, d, sizeof(d));
	if ((rc = mpfs_view_lookup(fs->view, d, dir)))
		return rc;
	return mpfs_fs_lookup(fs, path, id);
}

/* Entries of maps and lists can go; a csr_matrix's members are fixed (and
 * its entries are not its map's pairs, so no index would name them). */
static int deletable(const struct mpfs_fs *fs, uint32_t dir)
{
	return mpfs_view_node(fs->view, dir)->kind == MPFS_N_CSR ? -EPERM : 0;
}

int mpfs_edit_delete(struct mpfs_fs *fs, const char *path, uint32_t id, uint32_t dir)
{
	const struct mpfs_node *d = mpfs_view_node(fs->view, dir);
	struct mpfs_edit ed = {
		.op = MPFS_EDIT_DELETE, .target = d->val, .index = index_in(fs, dir, id)};
	int rc = deletable(fs, dir);

	return rc ? rc : mpfs_edit_commit(fs, &ed, 1, path);
}

int mpfs_edit_hide(struct mpfs_fs *fs, const char *path, uint32_t dir)
{
	int rc = deletable(fs, dir);
	return rc ? rc : mpfs_hidden_add(fs, path);
}

/* Renames archive entry (id in dir) to path to. */
int mpfs_edit_move(struct mpfs_fs *fs, const char *from, uint32_t id, uint32_t dir, const char *to)
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

	mpfs_path_parent(to, td, sizeof(td));
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
		ed[ne++] = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
					      .target = t->val,
					      .bytes = doc->buf + n->val->off,
					      .len = n->val->end - n->val->off};
		ed[ne++] = (struct mpfs_edit){
			.op = MPFS_EDIT_DELETE, .target = dn->val, .index = index_in(fs, dir, id)};
	} else {
		if ((rc = mpfs_edit_key(fs, tn, mpfs_path_base(to), n->kind == MPFS_N_ARRAY, &key)))
			goto out;
		if (tdir == dir) { /* a new key, in place */
			ed[ne++] = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
						      .target = n->key,
						      .bytes = (uint8_t *)key.p,
						      .len = key.len};
		} else {
			ed[ne++] = (struct mpfs_edit){.op = MPFS_EDIT_DELETE,
						      .target = dn->val,
						      .index = index_in(fs, dir, id)};
			ed[ne++] = (struct mpfs_edit){.op = MPFS_EDIT_INSERT,
						      .target = tn->val,
						      .key = (uint8_t *)key.p,
						      .key_len = key.len,
						      .bytes = doc->buf + n->val->off,
						      .len = n->val->end - n->val->off};
		}
	}
	rc = key.oom ? -ENOMEM : mpfs_edit_commit(fs, ed, ne, from);
out:
	mpfs_strbuf_destroy(&key);
	return rc;
}
