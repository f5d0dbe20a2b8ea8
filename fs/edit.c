/* Turning what users do into archive edits: content into values, names
 * into keys, renames into moves; and the transaction that commits them.
 * See fs_i.h; callers hold fs->commit_mu, and fs->lock as writers. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "codec/npy.h"
#include "codec/numpy.h"
#include "fs/commit.h"
#include "fs/fs_i.h"
#include "fs/guard.h"
#include "fs/names.h"

static const struct mpfs_doc *doc_of(struct mpfs_fs *fs)
{
	return mpfs_view_doc(fs->snap->v);
}

static const struct mpfs_node *node_of(struct mpfs_fs *fs, uint32_t id)
{
	return mpfs_view_node(fs->snap->v, id);
}

/* ---- transactions ------------------------------------------------------ */

void mpfs_txn_init(struct txn *t, const char *what)
{
	memset(t, 0, sizeof(*t));
	t->what = what;
}

void mpfs_txn_destroy(struct txn *t)
{
	for (size_t i = 0; i < t->nbufs; i++)
		mpfs_strbuf_destroy(&t->bufs[i]);
	t->nbufs = 0;
	mpfs_content_unflatten(t->split.map, t->split.map_len, (void *)1);
	free(t->split.pieces);
	t->split = (struct content_split){0};
}

static struct mpfs_strbuf *txn_buf(struct txn *t)
{
	struct mpfs_strbuf *b = &t->bufs[t->nbufs++];
	mpfs_strbuf_init(b);
	return b;
}

uint32_t mpfs_edit_index(struct mpfs_fs *fs, uint32_t dir, uint32_t id)
{
	return (uint32_t)(node_of(fs, id) - node_of(fs, dir)->children);
}

/* ---- content into values ----------------------------------------------- */

static int refuse(struct mpfs_fs *fs, const char *path, const struct mpfs_error *err)
{
	if (err->code == MPFS_E_NOMEM)
		return -ENOMEM;
	fs->opts.log("%s: refused: %s", path, err->msg);
	return -EINVAL;
}

/* With -o raw, NAME.bin holds exactly the array's data. */
static int refuse_raw_size(struct mpfs_fs *fs, const char *path, uint64_t want, uint64_t got)
{
	struct mpfs_error err;

	mpfs_error_set(&err, MPFS_E_ARRAY, 0, "raw array of %llu bytes expected, got %llu",
		       (unsigned long long)want, (unsigned long long)got);
	return refuse(fs, path, &err);
}

/* Encodes content as the new value of archive entry id (kind kept). */
static int encode_for(struct mpfs_fs *fs, uint32_t id, const uint8_t *data, size_t len,
		      struct mpfs_strbuf *out, const char *path)
{
	const struct mpfs_doc *doc = doc_of(fs);
	const struct mpfs_node *n = node_of(fs, id);
	struct mpfs_array a;
	struct mpfs_error err = {0};
	const uint8_t *elems = data;
	uint8_t *copy = NULL;
	bool bad;

	switch (n->kind) {
	case MPFS_N_TEXT:
		if (mpfs_encode_json(doc, n->val, (const char *)data, len, out, &err))
			return refuse(fs, path, &err);
		return 0;
	case MPFS_N_BYTES: mpfs_encode_bytes(doc, n->val, data, len, out); return 0;
	case MPFS_N_SCALAR: /* the dtype kept where the value fits */
		if (mpfs_numpy_scalar_encode(doc, n->array, (const char *)data, len, out, &err))
			return refuse(fs, path, &err);
		return 0;
	case MPFS_N_PICKLE: return -EPERM; /* never written: see mpfs_fs_open_file */
	case MPFS_N_ARRAY:
		if (mpfs_view_raw(fs->snap->v)) {
			a = *n->array;
			if (len != a.nbytes)
				return refuse_raw_size(fs, path, a.nbytes, len);
			if (a.descr[0] == '>') { /* the file is little-endian */
				if (!(copy = malloc(len ? len : 1)))
					return -ENOMEM;
				mpfs_array_swap(&a, data, copy);
				elems = copy;
			}
		} else if (mpfs_npy_parse(data, len, &a, &elems, &copy, &err)) {
			return refuse(fs, path, &err);
		} else if (n->array->ndim == 0 && a.ndim != 0 &&
			   mpfs_numpy_scalar(doc, n->array->src, &(struct mpfs_array){0})) {
			/* A complex numpy scalar's map has no shape to change. */
			free(copy);
			mpfs_error_set(&err, MPFS_E_ARRAY, 0,
				       "a numpy scalar holds one value: write a 0-d array");
			return refuse(fs, path, &err);
		}
		bad = mpfs_encode_array(doc, n->array, &a, elems, out, &err) != MPFS_OK;
		free(copy);
		return bad ? refuse(fs, path, &err) : 0;
	default: return -EISDIR;
	}
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && !strcmp(s + n - k, suffix);
}

bool mpfs_edit_array_name(struct mpfs_fs *fs, const char *name)
{
	return ends_with(name, mpfs_view_raw(fs->snap->v) ? ".bin" : ".npy");
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
	const struct mpfs_doc *doc = doc_of(fs);
	const char *name = mpfs_path_base(path);
	bool raw = mpfs_view_raw(fs->snap->v);
	struct mpfs_array a, nested = {.encoding = MPFS_ENC_NESTED};
	struct mpfs_error err = {0};
	const uint8_t *elems;
	uint8_t *copy = NULL;
	bool bad;

	if (!mpfs_edit_array_name(fs, name)) {
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
			      mpfs_view_new_array_encoding(fs->snap->v) == MPFS_ENC_NESTED &&
			      mpfs_encode_array(doc, &nested, &a, elems, out, &err) == MPFS_OK)) {
			out->len = 0;
			if (mpfs_view_new_array_bin_keys(fs->snap->v)) /* msgpack-numpy's style */
				mpfs_numpy_encode_array(&a, elems, out);
			else
				bad = mpfs_encode_array(doc, NULL, &a, elems, out, &err) != MPFS_OK;
		}
		free(copy);
	}
	return bad ? refuse(fs, path, &err) : 0;
}

/* ---- keys ------------------------------------------------------------- */

/* Encodes the key a new entry named name gets in map dir: escaped names are
 * decoded; a decimal name in a map whose keys are all integers is an int. */
static int edit_key(struct mpfs_fs *fs, const struct mpfs_node *dir, const char *name, bool array,
		    struct mpfs_strbuf *out)
{
	const struct mpfs_doc *doc = doc_of(fs);
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
		return out->oom ? -ENOMEM : 0;
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

/* True if the keys a (of doc) and b (of kd) are the same key: strings by
 * their bytes (str and bin alike), numbers by value, others by encoding. */
static bool same_key(const struct mpfs_doc *doc, const struct mpfs_val *a,
		     const struct mpfs_doc *kd, const struct mpfs_val *b)
{
	bool sa = a->type == MPFS_STR || a->type == MPFS_BIN;
	bool sb = b->type == MPFS_STR || b->type == MPFS_BIN;

	if (sa || sb)
		return sa && sb && a->len == b->len &&
		       !memcmp(mpfs_val_data(doc, a), mpfs_val_data(kd, b), a->len);
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case MPFS_INT: return a->i == b->i;
	case MPFS_UINT: return a->u == b->u;
	case MPFS_BOOL: return a->b == b->b;
	case MPFS_NIL: return true;
	default:
		return a->end - a->off == b->end - b->off &&
		       !memcmp(doc->buf + a->off, kd->buf + b->off, a->end - a->off);
	}
}

uint32_t mpfs_edit_same_key(struct mpfs_fs *fs, uint32_t dir, const char *name)
{
	const struct mpfs_node *d = node_of(fs, dir);
	struct mpfs_strbuf key;
	struct mpfs_doc kd;
	struct mpfs_error err;
	uint32_t found = NO_ID;

	if (name[0] != '%' || d->kind != MPFS_N_MAP)
		return NO_ID;
	mpfs_strbuf_init(&key);
	if (edit_key(fs, d, name, mpfs_edit_array_name(fs, name), &key) == 0 &&
	    mpfs_doc_init(&kd, (const uint8_t *)key.p, key.len, &err) == MPFS_OK) {
		for (uint32_t i = 0; i < d->nchildren && found == NO_ID; i++)
			if (d->children[i].key &&
			    same_key(doc_of(fs), d->children[i].key, &kd, &kd.root))
				mpfs_view_child(fs->snap->v, dir, i, &found);
		mpfs_doc_destroy(&kd);
	}
	mpfs_strbuf_destroy(&key);
	return found;
}

/* ---- edits ------------------------------------------------------------- */

struct replace_args {
	struct mpfs_fs *fs;
	uint32_t id;
	const uint8_t *data;
	size_t len;
	struct mpfs_strbuf *val;
	const char *path;
	bool same;
};

/* Encodes the new value and compares it with the old: both read the
 * archive's mapping, so this runs under the SIGBUS guard. */
static int encode_replace(void *arg)
{
	struct replace_args *a = arg;
	const struct mpfs_val *target = node_of(a->fs, a->id)->val;
	int rc = encode_for(a->fs, a->id, a->data, a->len, a->val, a->path);

	if (rc == 0 && !a->val->oom)
		a->same = a->val->len == target->end - target->off &&
			  !memcmp(a->val->p, doc_of(a->fs)->buf + target->off, a->val->len);
	return rc;
}

int mpfs_edit_replace(struct mpfs_fs *fs, struct txn *t, uint32_t id, const uint8_t *data,
		      size_t len, const char *path)
{
	const struct mpfs_val *target = node_of(fs, id)->val;
	struct mpfs_strbuf *val = txn_buf(t);
	struct replace_args a = {fs, id, data, len, val, path, false};
	int rc;

	if ((rc = mpfs_guard_run(encode_replace, &a)))
		return rc;
	if (val->oom)
		return -ENOMEM;
	/* The same value encoded the same way: nothing to write. */
	if (a.same)
		return 0;
	t->ed[t->ned++] = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
					     .target = target,
					     .bytes = (uint8_t *)val->p,
					     .len = val->len};
	return 0;
}

int mpfs_edit_payload(struct mpfs_fs *fs, struct txn *t, uint32_t id, struct content *c)
{
	const struct mpfs_node *n = node_of(fs, id);
	const struct mpfs_doc *doc = doc_of(fs);
	const struct mpfs_val *data = NULL, *m;
	uint8_t old[MPFS_NPY_HEADER_MAX], now[MPFS_NPY_HEADER_MAX];
	struct mpfs_piece head;
	const uint8_t *base;
	struct stat st;
	uint64_t hdr;
	int rc;

	if (n->kind != MPFS_N_ARRAY || n->array->encoding != MPFS_ENC_COMPACT)
		return 0;
	/* Raw files are little-endian: a big-endian array is swapped. */
	if (mpfs_view_raw(fs->snap->v) && n->array->descr[0] == '>')
		return 0;
	if ((rc = mpfs_view_stat(fs->snap->v, id, &st)))
		return rc;
	hdr = (uint64_t)st.st_size - n->array->nbytes;
	if (c->len != (uint64_t)st.st_size || hdr > sizeof(old))
		return 0;
	/* The same header, byte for byte: the same dtype, shape and order. */
	if (mpfs_view_read(fs->snap->v, id, (char *)old, (size_t)hdr, 0) != (long)hdr ||
	    mpfs_content_read(c, (char *)now, (size_t)hdr, 0) != (long)hdr ||
	    memcmp(old, now, (size_t)hdr))
		return 0;
	m = n->array->src;
	for (uint32_t i = 0; m && m->type == MPFS_MAP && i < m->len; i++)
		if (mpfs_val_is(doc, &m->items[2 * i], "data"))
			data = &m->items[2 * i + 1];
	if (!data || data->type != MPFS_BIN || data->off + data->hdr != n->array->data_off)
		return 0;
	/* The data value: its bin header as stored, then the new bytes, which
	 * lie where the old ones did, so those not written since the open are
	 * pieces of the old archive (copied, or shared, by the kernel). */
	base = c->base == fs->snap && c->base_id == id ? doc->buf + n->array->data_off : NULL;
	head = (struct mpfs_piece){doc->buf + data->off, data->hdr};
	if ((rc = mpfs_content_split(fs, c, hdr, base, &head, &t->split)))
		return rc;
	t->ed[t->ned++] = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
					     .target = data,
					     .pieces = t->split.pieces,
					     .npieces = t->split.n};
	return 1;
}

int mpfs_edit_check_size(struct mpfs_fs *fs, uint32_t id, const char *name, struct content *c,
			 const char *path)
{
	size_t avail = c->len < MPFS_NPY_HEAD_MAX ? (size_t)c->len : MPFS_NPY_HEAD_MAX, off;
	struct mpfs_error err = {0};
	struct mpfs_array a;
	uint8_t *head;
	bool fortran;
	long got;
	int rc = 0;

	if (id != NO_ID ? node_of(fs, id)->kind != MPFS_N_ARRAY : !mpfs_edit_array_name(fs, name))
		return 0;
	if (mpfs_view_raw(fs->snap->v))
		return id != NO_ID && c->len != node_of(fs, id)->array->nbytes
			       ? refuse_raw_size(fs, path, node_of(fs, id)->array->nbytes, c->len)
			       : 0;
	if (!(head = malloc(avail ? avail : 1)))
		return -ENOMEM;
	got = mpfs_content_read(c, (char *)head, avail, 0);
	if (got < 0)
		rc = (int)got;
	else if (mpfs_npy_parse_header(head, (size_t)got, c->len, &a, &off, &fortran, &err))
		rc = refuse(fs, path, &err);
	free(head);
	return rc;
}

/* A new entry whose key a pickled object array of map dir holds replaces
 * it (NAME.npy written beside NAME.pickle): that pair is dropped, the new
 * one comes last. Pickles are never written, so this is how a user cleans
 * one out of an archive. */
static int drop_pickled(struct mpfs_fs *fs, struct txn *t, const struct mpfs_node *d,
			const struct mpfs_strbuf *key)
{
	struct mpfs_doc kd;
	struct mpfs_error err;

	if (mpfs_doc_init(&kd, (const uint8_t *)key->p, key->len, &err))
		return err.code == MPFS_E_NOMEM ? -ENOMEM : -EINVAL;
	for (uint32_t i = 0; i < d->nchildren; i++) {
		const struct mpfs_node *c = &d->children[i];
		if (c->kind == MPFS_N_PICKLE && c->key &&
		    same_key(doc_of(fs), c->key, &kd, &kd.root)) {
			t->ed[t->ned++] = (struct mpfs_edit){
				.op = MPFS_EDIT_DELETE, .target = d->val, .index = i};
			break; /* the view shows later equal keys escaped */
		}
	}
	mpfs_doc_destroy(&kd);
	return 0;
}

int mpfs_edit_insert(struct mpfs_fs *fs, struct txn *t, uint32_t dir, const char *name,
		     const uint8_t *data, size_t len, const char *path)
{
	const struct mpfs_node *d = node_of(fs, dir);
	struct mpfs_strbuf *val = txn_buf(t), *key = txn_buf(t);
	int rc;

	if (d->kind != MPFS_N_MAP)
		return -EPERM; /* lists and csr matrices have fixed members */
	if ((rc = encode_new(fs, path, data, len, val)) ||
	    (rc = edit_key(fs, d, name, mpfs_edit_array_name(fs, name), key)))
		return rc;
	if (val->oom || key->oom)
		return -ENOMEM;
	if ((rc = drop_pickled(fs, t, d, key)))
		return rc;
	t->ed[t->ned++] = (struct mpfs_edit){.op = MPFS_EDIT_INSERT,
					     .target = d->val,
					     .key = (uint8_t *)key->p,
					     .key_len = key->len,
					     .bytes = (uint8_t *)val->p,
					     .len = val->len};
	return 0;
}

int mpfs_edit_mkdir(struct mpfs_fs *fs, struct txn *t, uint32_t dir, const char *name)
{
	const struct mpfs_node *d = node_of(fs, dir);
	struct mpfs_strbuf *val = txn_buf(t), *key = txn_buf(t);
	int rc;

	if (d->kind != MPFS_N_MAP)
		return -EPERM;
	if ((rc = edit_key(fs, d, name, false, key)))
		return rc;
	mpfs_encode_empty_map(val);
	if (val->oom || key->oom)
		return -ENOMEM;
	t->ed[t->ned++] = (struct mpfs_edit){.op = MPFS_EDIT_INSERT,
					     .target = d->val,
					     .key = (uint8_t *)key->p,
					     .key_len = key->len,
					     .bytes = (uint8_t *)val->p,
					     .len = val->len};
	return 0;
}

int mpfs_edit_delete(struct mpfs_fs *fs, struct txn *t, uint32_t dir, uint32_t id)
{
	const struct mpfs_node *d = node_of(fs, dir);

	/* A csr_matrix's members are fixed (and its entries are not its map's
	 * pairs, so no index would name them). */
	if (d->kind == MPFS_N_CSR)
		return -EPERM;
	t->ed[t->ned++] = (struct mpfs_edit){
		.op = MPFS_EDIT_DELETE, .target = d->val, .index = mpfs_edit_index(fs, dir, id)};
	return 0;
}

int mpfs_edit_move(struct mpfs_fs *fs, struct txn *t, uint32_t dir, uint32_t id, uint32_t tdir,
		   uint32_t tid, const char *name)
{
	const struct mpfs_doc *doc = doc_of(fs);
	const struct mpfs_node *n = node_of(fs, id);
	const struct mpfs_node *dn = node_of(fs, dir), *tn = node_of(fs, tdir);
	const uint8_t *bytes = doc->buf + n->val->off;
	size_t len = n->val->end - n->val->off;
	struct mpfs_strbuf *key;
	int rc;

	if (dn->kind != MPFS_N_MAP || tn->kind != MPFS_N_MAP)
		return -EPERM;
	if (tid != NO_ID) { /* over an existing entry: it takes the moved value */
		t->ed[t->ned++] = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
						     .target = node_of(fs, tid)->val,
						     .bytes = bytes,
						     .len = len};
		return mpfs_edit_delete(fs, t, dir, id);
	}
	key = txn_buf(t);
	char bare[NAME_MAX + 1]; /* a pickle renamed to Y.pickle gets key Y */
	if (n->kind == MPFS_N_PICKLE && ends_with(name, ".pickle") && strlen(name) <= NAME_MAX) {
		memcpy(bare, name, strlen(name) - strlen(".pickle"));
		bare[strlen(name) - strlen(".pickle")] = '\0';
		name = bare;
	}
	if ((rc = edit_key(fs, tn, name, n->kind == MPFS_N_ARRAY, key)))
		return rc;
	if (key->oom)
		return -ENOMEM;
	if (tdir == dir) { /* a new key, in place */
		t->ed[t->ned++] = (struct mpfs_edit){.op = MPFS_EDIT_REPLACE,
						     .target = n->key,
						     .bytes = (uint8_t *)key->p,
						     .len = key->len};
		return 0;
	}
	mpfs_edit_delete(fs, t, dir, id);
	t->ed[t->ned++] = (struct mpfs_edit){.op = MPFS_EDIT_INSERT,
					     .target = tn->val,
					     .key = (uint8_t *)key->p,
					     .key_len = key->len,
					     .bytes = bytes,
					     .len = len};
	return 0;
}
