/* test_fs_model (see test_fs_model.c): what is checked against fs/, the tree
 * and the archive after every step, and the return code and result of each
 * commit against its allowed outcomes. */
#include "fs_model.h"

/* ---- fs helpers ------------------------------------------------------------ */

/* Reads the whole content through fh into out (at most MAXC bytes; more is
 * reported as MAXC + 1). Returns 0 or the error. */
long read_all(struct model *m, uint64_t fh, struct bytes *out)
{
	char chunk[97];
	uint64_t off = 0;
	long r;
	out->n = 0;
	while ((r = mpfs_fs_read(m->fs, fh, chunk, sizeof(chunk), off)) > 0) {
		if (out->n + (size_t)r > MAXC) {
			out->n = MAXC + 1;
			return 0;
		}
		memcpy(out->p + out->n, chunk, (size_t)r);
		out->n += (size_t)r;
		off += (uint64_t)r;
	}
	return r;
}

struct names {
	int n;
	char name[64][NAMEMAX + 8];
	bool dir[64];
};

static int fill(void *ctx, const char *name, bool dir)
{
	struct names *ns = ctx;
	if (ns->n < 64) {
		snprintf(ns->name[ns->n], sizeof(ns->name[0]), "%s", name);
		ns->dir[ns->n] = dir;
	}
	ns->n++;
	return 0;
}

static int names_find(const struct names *ns, const char *name)
{
	for (int i = 0; i < ns->n && i < 64; i++)
		if (!strcmp(ns->name[i], name))
			return i;
	return -1;
}

/* ---- checks after every step ------------------------------------------------- */

static const char *const kind_names[] = {"none", "int", "float", "str", "bin", "npy"};

void check_tree(struct model *m)
{
	char p[1200], a[300], b[300];
	struct stat st;
	for (int x = 0; x < MAXN; x++) {
		const struct node *n = &m->n[x];
		if (!n->live)
			continue;
		path_of(m, x, p, sizeof(p));
		int rc = mpfs_fs_getattr(m->fs, p, &st);
		if (rc)
			fail(m, "getattr of a file in the model fails", "getattr %s: %s (%s %s)", p,
			     strerror(-rc), ntype_names[n->t], n->dir ? "dir" : "file");
		if (n->dir != !!S_ISDIR(st.st_mode))
			fail(m, "wrong file type", "getattr %s: %s, expected a %s", p,
			     S_ISDIR(st.st_mode) ? "directory" : "file",
			     n->dir ? "directory" : "file");
		if (n->dir) {
			struct names ns = {0};
			rc = mpfs_fs_readdir(m->fs, p, fill, &ns);
			if (rc)
				fail(m, "readdir fails", "readdir %s: %s", p, strerror(-rc));
			for (int i = 0; i < ns.n && i < 64; i++) {
				int c = child(m, x, ns.name[i]);
				if (c < 0)
					fail(m, "readdir lists a name the model does not have",
					     "readdir %s lists %s", p, ns.name[i]);
				if (names_find(&ns, ns.name[i]) != i)
					fail(m, "readdir lists a name twice",
					     "readdir %s: %s twice", p, ns.name[i]);
				if (ns.dir[i] != m->n[c].dir)
					fail(m, "readdir: wrong file type", "readdir %s: %s", p,
					     ns.name[i]);
			}
			if (ns.n != nchildren(m, x)) {
				for (int c = 1; c < MAXN; c++)
					if (m->n[c].live && m->n[c].parent == x &&
					    names_find(&ns, m->n[c].name) < 0)
						fail(m, "readdir misses a file of the model",
						     "readdir %s does not list %s (%s)", p,
						     m->n[c].name, ntype_names[m->n[c].t]);
			}
		} else {
			struct bytes see[2];
			int k = reader_sees(m, x, see);
			if ((size_t)st.st_size != see[0].n &&
			    (k < 2 || (size_t)st.st_size != see[1].n))
				fail(m, "getattr: wrong size",
				     "getattr %s: size %lld, expected %zu (%s)%s%s", p,
				     (long long)st.st_size, see[0].n, show(&see[0], a, sizeof(a)),
				     k == 2 ? " or " : "",
				     k == 2 ? show(&see[1], b, sizeof(b)) : "");
		}
	}
	for (int i = 0; i < MAXHID; i++) {
		if (!m->hd[i].live || child(m, m->hd[i].dir, m->hd[i].name) >= 0)
			continue;
		child_path(m, m->hd[i].dir, m->hd[i].name, p, sizeof(p));
		if (mpfs_fs_getattr(m->fs, p, &st) != -ENOENT)
			fail(m, "a hidden entry is shown",
			     "getattr %s (renamed to a scratch name) "
			     "does not fail with ENOENT",
			     p);
	}
}

static bool dup_keys(const struct mpfs_doc *d, const struct mpfs_val *v, char *which, size_t cap)
{
	if (v->type == MPFS_MAP) {
		for (uint32_t i = 0; i < v->len; i++) {
			const struct mpfs_val *k = &v->items[2 * i];
			for (uint32_t j = i + 1; j < v->len; j++) {
				const struct mpfs_val *l = &v->items[2 * j];
				if (k->end - k->off == l->end - l->off &&
				    !memcmp(d->buf + k->off, d->buf + l->off, k->end - k->off)) {
					snprintf(which, cap, "%.*s",
						 (int)(k->end - k->off - k->hdr),
						 (const char *)d->buf + k->off + k->hdr);
					return true;
				}
			}
			if (dup_keys(d, &v->items[2 * i + 1], which, cap))
				return true;
		}
	} else if (v->type == MPFS_ARRAY && v->items) {
		for (uint32_t i = 0; i < v->len; i++)
			if (dup_keys(d, &v->items[i], which, cap))
				return true;
	}
	return false;
}

/* The content of path in a fresh view: 0, or -ENOENT / -EISDIR. */
static int view_content(struct mpfs_view *v, const char *path, struct bytes *out)
{
	uint32_t id;
	struct stat st;
	int rc = mpfs_view_lookup(v, path, &id);
	if (rc)
		return rc;
	if (mpfs_view_is_dir(v, id))
		return -EISDIR;
	cr_assert_eq(mpfs_view_stat(v, id, &st), 0);
	if (st.st_size > MAXC) {
		out->n = MAXC + 1;
		return 0;
	}
	long r = mpfs_view_read(v, id, (char *)out->p, (size_t)st.st_size, 0);
	cr_assert_eq(r, st.st_size);
	out->n = (size_t)r;
	return 0;
}

static struct mpfs_view *fresh_view(struct model *m)
{
	struct mpfs_view *v;
	struct mpfs_view_opts o = {0};
	struct mpfs_error err;
	int rc = mpfs_view_open(&v, m->archive, &o, &err);
	if (rc)
		fail(m, "the archive does not open", "a fresh view of the archive: %s (%s)",
		     strerror(-rc), err.msg);
	return v;
}

/* The MsgPack type of the value at tree path p (".npy" dropped), or -1. */
static int doc_type(const struct mpfs_doc *doc, const char *p)
{
	char copy[1200], *save = NULL;
	const struct mpfs_val *v = &doc->root;
	snprintf(copy, sizeof(copy), "%s", p);
	for (char *k = strtok_r(copy, "/", &save); k && v; k = strtok_r(NULL, "/", &save)) {
		if (v->type != MPFS_MAP)
			return -1;
		if (ends_npy(k))
			k[strlen(k) - 4] = '\0';
		v = mpfs_map_get(doc, v, k);
	}
	return v ? v->type : -1;
}

static bool kind_ok(enum kind k, int type)
{
	switch (k) {
	case K_INT: return type == MPFS_INT || type == MPFS_UINT;
	case K_FLOAT: return type == MPFS_FLOAT;
	case K_STR: return type == MPFS_STR;
	case K_BIN: return type == MPFS_BIN;
	case K_NPY: return type == MPFS_MAP || type == MPFS_ARRAY;
	default: return false;
	}
}

/* The type of the archive's value at tree path p, or -1. */
static int arc_type(struct model *m, const char *p)
{
	size_t len;
	uint8_t *buf = tu_read_file(m->archive, &len);
	struct mpfs_doc doc;
	struct mpfs_error err;
	int t = -1;
	if (mpfs_doc_init(&doc, buf, len, &err) == MPFS_OK) {
		t = doc_type(&doc, p);
		mpfs_doc_destroy(&doc);
	}
	free(buf);
	return t;
}

void check_archive(struct model *m)
{
	struct stat st;
	char p[1200], a[300], b[300];
	cr_assert_eq(stat(m->archive, &st), 0);
	if (!m->arc_dirty && !m->final && st.st_ino == m->arc_st.st_ino &&
	    st.st_size == m->arc_st.st_size && st.st_mtim.tv_nsec == m->arc_st.st_mtim.tv_nsec &&
	    st.st_mtim.tv_sec == m->arc_st.st_mtim.tv_sec &&
	    st.st_ctim.tv_nsec == m->arc_st.st_ctim.tv_nsec &&
	    st.st_ctim.tv_sec == m->arc_st.st_ctim.tv_sec)
		return;
	m->arc_st = st;
	m->arc_dirty = false;

	size_t len;
	uint8_t *buf = tu_read_file(m->archive, &len);
	struct mpfs_doc doc;
	struct mpfs_error err;
	if (mpfs_doc_init(&doc, buf, len, &err) != MPFS_OK)
		fail(m, "the archive does not decode", "mpfs_doc_init: %s", err.msg);
	char which[100];
	if (dup_keys(&doc, &doc.root, which, sizeof(which)))
		fail(m, "the archive holds a key twice", "a map of the archive holds key %s twice",
		     which);

	struct mpfs_view *v = fresh_view(m);
	for (int x = 0; x < MAXN; x++) {
		const struct node *n = &m->n[x];
		if (!n->live || n->t != N_REAL)
			continue;
		path_of(m, x, p, sizeof(p));
		uint32_t id;
		if (mpfs_view_lookup(v, p, &id)) {
			mpfs_view_close(v);
			fail(m, "a committed entry is missing from the archive",
			     "the archive has no %s", p);
		}
		if (n->dir != mpfs_view_is_dir(v, id)) {
			mpfs_view_close(v);
			fail(m, "an entry of the archive has the wrong type", "archive: %s is a %s",
			     p, n->dir ? "file" : "directory");
		}
		if (n->dir) {
			uint32_t nc = mpfs_view_nchildren(v, id), c;
			for (uint32_t i = 0; i < nc; i++) {
				const char *name = mpfs_view_child(v, id, i, &c);
				int y = child(m, x, name);
				if ((y >= 0 && m->n[y].t == N_REAL) ||
				    (!m->final && hidden_at(m, x, name) >= 0))
					continue;
				snprintf(a, sizeof(a), "%s", name);
				mpfs_view_close(v);
				fail(m,
				     y >= 0 ? "the archive holds a file that must be in memory only"
					    : "the archive holds a key the model does not have",
				     "the archive holds %s%s%s (%s)", p, strcmp(p, "/") ? "/" : "",
				     a,
				     y >= 0	? ntype_names[m->n[y].t]
				     : m->final ? "unmounted"
						: "");
			}
		} else {
			struct bytes got, want;
			view_content(v, p, &got);
			render(&n->v, &want);
			if (!b_eq(&got, &want)) {
				mpfs_view_close(v);
				fail(m, "the archive holds a wrong value",
				     "the archive holds %s = %s, expected %s (%s)", p,
				     show(&got, a, sizeof(a)), show(&want, b, sizeof(b)),
				     kind_names[n->v.k]);
			}
			int t = doc_type(&doc, p);
			if (!kind_ok(n->v.k, t)) {
				mpfs_view_close(v);
				fail(m, "the archive holds a value of the wrong type",
				     "the archive holds %s as MsgPack type %d, expected a %s", p, t,
				     kind_names[n->v.k]);
			}
		}
	}
	mpfs_view_close(v);
	mpfs_doc_destroy(&doc);
	free(buf);
}

/* ---- commits ---------------------------------------------------------------- */

/* The archive's content at path (0, or -ENOENT / -EISDIR). */
static int arc_content(struct model *m, const char *path, struct bytes *out)
{
	struct mpfs_view *v = fresh_view(m);
	int rc = view_content(v, path, out);
	mpfs_view_close(v);
	return rc;
}

/* After a writer read: its buffer is what was written or, after a commit,
 * the value as now shown. */
void resolve_buf(struct model *m, int x)
{
	struct node *n = &m->n[x];
	struct bytes got, alt;
	char a[300], b[300], c[300];
	if (!n->has_buf || n->t == N_SCRATCH)
		return;
	render(&n->v, &alt);
	if (b_eq(&alt, &n->buf))
		return;
	for (int i = 0; i < MAXHD; i++) {
		struct handle *h = &m->h[i];
		if (!h->live || h->orphan || !h->w || h->node != x)
			continue;
		long r = read_all(m, h->fh, &got);
		mlog(m, "        (read h%d after the commit: %s -> %ld)", i,
		     show(&got, a, sizeof(a)), r);
		if (r == 0 && b_eq(&got, &alt))
			n->buf = alt;
		else if (r != 0 || !b_eq(&got, &n->buf))
			fail(m, "a writer reads neither what it wrote nor the committed value",
			     "read h%d after a commit: %s (rc %ld), expected %s or %s", i,
			     show(&got, a, sizeof(a)), r, show(&n->buf, b, sizeof(b)),
			     show(&alt, c, sizeof(c)));
		return;
	}
}

/* Checks rc and the archive against the allowed outcomes of a commit of
 * node x, and applies the one that happened. */
void settle(struct model *m, int x, int rc, const struct cand *c, int nc, const char *what)
{
	struct node *n = &m->n[x];
	char p[1200], a[300], b[300];
	int pick = -1;
	path_of(m, x, p, sizeof(p));
	if (nc == 1) {
		if (!c[0].any_rc && rc != c[0].rc)
			fail(m, what, "%s: rc %d (%s), expected %d (%s)", p, rc, strerror(-rc),
			     c[0].rc, strerror(-c[0].rc));
		pick = 0;
	} else {
		struct bytes got, want, old;
		int arc = arc_content(m, p, &got), type = arc_type(m, p);
		closed_content(m, x, &old);
		for (int i = 0; i < nc && pick < 0; i++) {
			if (!c[i].any_rc && rc != c[i].rc)
				continue;
			if (c[i].commit) {
				render(&c[i].v, &want);
				if (arc == 0 && b_eq(&got, &want) && kind_ok(c[i].v.k, type))
					pick = i;
			} else if (n->t == N_REAL) {
				if (arc == 0 && b_eq(&got, &old))
					pick = i;
			} else {
				int h = n->hid;
				if (arc == -ENOENT)
					pick = i;
				else if (h >= 0 && arc == 0) {
					render(&m->hd[h].v, &want);
					if (b_eq(&got, &want))
						pick = i;
				}
			}
		}
		if (pick < 0) {
			char opts[1000];
			size_t o = 0;
			for (int i = 0; i < nc; i++) {
				render(&c[i].v, &want);
				o += (size_t)snprintf(opts + o, sizeof(opts) - o,
						      "%s[rc %s%d, %s%s]", i ? " or " : "",
						      c[i].any_rc ? "any/" : "", c[i].rc,
						      c[i].commit ? "commit " : "no commit",
						      c[i].commit ? show(&want, a, sizeof(a)) : "");
			}
			fail(m, what, "%s: rc %d, archive %s%s; allowed: %s", p, rc,
			     arc ? strerror(-arc) : "holds ", arc ? "" : show(&got, b, sizeof(b)),
			     opts);
		}
	}
	if (c[pick].commit) {
		n->v = c[pick].v;
		if (n->t == N_NEW) {
			n->t = N_REAL;
			if (n->hid >= 0)
				m->hd[n->hid].live = false;
			n->hid = -1;
		}
		n->ck = ck_of(n->v.k);
		n->dirty = false;
		m->arc_dirty = true;
		resolve_buf(m, x);
	}
}

/* Adds the outcomes of committing content c over node x's kind(s). */
int commit_cands(struct model *m, int x, const struct bytes *c, struct cand *out)
{
	const struct node *n = &m->n[x];
	enum kind kinds[2];
	int nk = 0, nc = 0;
	if (n->t == N_REAL)
		kinds[nk++] = n->v.k;
	else {
		kinds[nk++] = K_NONE;
		if (n->hid >= 0)
			kinds[nk++] = m->hd[n->hid].v.k;
	}
	for (int i = 0; i < nk; i++) {
		struct cand cd = {0};
		enum res r = judge(c, kinds[i], ends_npy(n->name), &cd.v);
		if (r == R_UNKNOWN) {
			char a[300];
			fail(m, "model: content it cannot judge", "node %s: %s", n->name,
			     show(c, a, sizeof(a)));
		}
		cd.commit = r == R_VALID;
		cd.rc = r == R_VALID ? 0 : -EINVAL;
		bool dup = false;
		for (int j = 0; j < nc; j++)
			dup |= out[j].commit == cd.commit &&
			       (!cd.commit || val_same(&out[j].v, &cd.v));
		if (!dup)
			out[nc++] = cd;
	}
	return nc;
}
