/* test_fs_model (see test_fs_model.c): the operations on files, open, create,
 * write and truncate, flush and fsync, release and close, read and cat. */
#include "fs_model.h"

/* ---- the operations ----------------------------------------------------------------------- */

void expect_rc(struct model *m, const char *what, long rc, long want)
{
	if (rc != want)
		fail(m, what, "rc %ld (%s), expected %ld (%s)", rc, strerror((int)-rc), want,
		     strerror((int)-want));
}

bool op_open(struct model *m)
{
	char p[1200];
	uint64_t fh = 0;
	int rc, hi = free_handle(m);
	if (hi < 0)
		return false;
	if (rnd(m, 12) == 0) {
		int d = pick_node(m, true, false);
		if (d < 0)
			d = 0;
		path_of(m, d, p, sizeof(p));
		rc = mpfs_fs_open_file(m->fs, p, O_WRONLY, false, &fh);
		mlog(m, "open %s O_WRONLY -> %d", p, rc);
		expect_rc(m, "open of a directory for writing", rc, -EISDIR);
		return true;
	}
	if (rnd(m, 12) == 0) {
		int d = pick_node(m, true, false);
		child_path(m, d < 0 ? 0 : d, "nothere", p, sizeof(p));
		rc = mpfs_fs_open_file(m->fs, p, O_RDONLY, false, &fh);
		mlog(m, "open %s O_RDONLY -> %d", p, rc);
		expect_rc(m, "open of a missing file", rc, -ENOENT);
		return true;
	}
	int x = pick_node(m, false, false);
	if (x < 0)
		return false;
	struct node *n = &m->n[x];
	int mode = (int)rnd(m, 3);
	bool w = mode != 0, trunc = w && rnd(m, 3) == 0;
	if (!w && !m->mix[F_READER] && n->nw > 0)
		return false;
	if (w && n->nw > 0 && !m->mix[F_MULTI])
		return false;
	if (w && n->nr > 0 && !m->mix[F_READER])
		return false;
	int flags = (mode == 0 ? O_RDONLY : mode == 1 ? O_WRONLY : O_RDWR) | (trunc ? O_TRUNC : 0);
	path_of(m, x, p, sizeof(p));
	rc = mpfs_fs_open_file(m->fs, p, flags, false, &fh);
	mlog(m, "open %s %s%s -> h%d rc %d", p,
	     mode == 0	 ? "O_RDONLY"
	     : mode == 1 ? "O_WRONLY"
			 : "O_RDWR",
	     trunc ? "|O_TRUNC" : "", hi, rc);
	expect_rc(m, "open fails", rc, 0);
	m->h[hi] = (struct handle){.live = true, .w = w, .fh = fh, .node = x};
	if (!w) {
		n->nr++;
		return true;
	}
	if (!n->has_buf) {
		closed_content(m, x, &n->buf);
		n->has_buf = true;
	}
	n->nw++;
	if (trunc) {
		if (n->buf.n)
			n->dirty = true;
		n->buf.n = 0;
		n->cut = true;
	}
	return true;
}

const char *const text_names[] = {"n1", "n2", "i", "s", "t", "f"};
const char *const npy_names[] = {"u.npy", "v.npy", "c.npy", "w.npy"};
static const char *const new_scratch[] = {".n1.swp", "n1~",   "4913",	   "sedq1w2e3",
					  "#n1#",    "x.tmp", ".u.npy.swp"};

bool op_create(struct model *m)
{
	char p[1200], name[NAMEMAX];
	uint64_t fh = 0;
	int hi = free_handle(m), d = pick_map_dir(m);
	if (hi < 0 || d < 0 || nlive(m) >= MAXN - 2)
		return false;
	if (m->mix[F_SCRATCH] && rnd(m, 3) == 0)
		snprintf(name, sizeof(name), "%s", new_scratch[rnd(m, 7)]);
	else if (rnd(m, 4) == 0)
		snprintf(name, sizeof(name), "%s", npy_names[rnd(m, 4)]);
	else
		snprintf(name, sizeof(name), "%s", text_names[rnd(m, 6)]);
	/* often where an entry was hidden (the backup-rename save of editors) */
	for (int k = (int)rnd(m, MAXHID), i = 0; i < MAXHID && rnd(m, 2); i++, k = (k + 1) % MAXHID)
		if (m->hd[k].live && m->mix[F_SCRATCH] &&
		    (ends_npy(m->hd[k].name) || m->hd[k].dir != weights_dir(m))) {
			d = m->hd[k].dir;
			memcpy(name, m->hd[k].name, sizeof(name));
			break;
		}
	int y = child(m, d, name), hid = hidden_at(m, d, name);
	int flags = O_CREAT | (rnd(m, 2) ? O_WRONLY : O_RDWR) | (rnd(m, 3) == 0 ? O_EXCL : 0) |
		    (rnd(m, 4) == 0 ? O_TRUNC : 0);
	child_path(m, d, name, p, sizeof(p));
	if (y >= 0) {
		if (m->n[y].dir || rnd(m, 2))
			return false;
		flags |= O_EXCL;
		int rc = mpfs_fs_open_file(m->fs, p, flags, true, &fh);
		mlog(m, "create %s O_EXCL (exists) -> %d", p, rc);
		expect_rc(m, "create O_EXCL of an existing file", rc, -EEXIST);
		return true;
	}
	if (hid >= 0 && is_scratch(name))
		return false;
	int rc = mpfs_fs_open_file(m->fs, p, flags, true, &fh);
	mlog(m, "create %s%s -> h%d rc %d", p, flags & O_EXCL ? " O_EXCL" : "", hi, rc);
	expect_rc(m, "create fails", rc, 0);
	int x = new_node(m);
	struct node *n = &m->n[x];
	n->parent = d;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->t = is_scratch(name) ? N_SCRATCH : N_NEW;
	n->ck = ends_npy(name) ? C_NPY : C_TEXT;
	n->has_buf = true;
	n->nw = 1;
	n->hid = n->t == N_NEW ? hid : -1;
	m->h[hi] = (struct handle){.live = true, .w = true, .fh = fh, .node = x};
	return true;
}

bool op_write(struct model *m, bool trunc)
{
	char a[300];
	int hi = pick_handle(m, 1, m->mix[F_ORPHAN]);
	if (hi < 0)
		return false;
	struct handle *h = &m->h[hi];
	if (h->orphan) {
		const char *s = "7\n";
		long r = trunc ? mpfs_fs_truncate(m->fs, "/orphan", h->fh, 1)
			       : mpfs_fs_write(m->fs, h->fh, s, 2, 0);
		mlog(m, "%s h%d (orphaned) -> %ld", trunc ? "truncate" : "write", hi, r);
		return true;
	}
	int x = h->node;
	struct node *n = &m->n[x];
	struct bytes c, w;
	uint64_t off = 0, size = 0;
	for (int tries = 0;; tries++) {
		if (tries == 8)
			return false;
		c = n->buf;
		if (trunc) {
			size = gen_size(m, x, &c);
			if (size > MAXC - 40)
				continue;
			apply_trunc(&c, size);
		} else {
			gen_write(m, x, &c, &off, &w);
			if (off + w.n > MAXC - 40)
				continue;
			apply_write(&c, off, &w);
		}
		if (judgeable(m, x, &c))
			break;
	}
	if (trunc) {
		int rc = mpfs_fs_truncate(m->fs, "/by-handle", h->fh, size);
		mlog(m, "truncate h%d %" PRIu64 " -> %d", hi, size, rc);
		expect_rc(m, "truncate through a handle fails", rc, 0);
	} else {
		long r = mpfs_fs_write(m->fs, h->fh, (const char *)w.p, w.n, off);
		mlog(m, "pwrite h%d off %" PRIu64 " %s -> %ld", hi, off, show(&w, a, sizeof(a)), r);
		expect_rc(m, "write fails", r, (long)w.n);
	}
	n->buf = c;
	n->dirty = true;
	n->cut |= trunc;
	return true;
}

bool op_truncp(struct model *m)
{
	char p[1200], a[300];
	int x = pick_node(m, false, false);
	if (x < 0)
		return false;
	struct node *n = &m->n[x];
	struct bytes c;
	uint64_t size = 0;
	closed_content(m, x, &c);
	if (n->has_buf)
		c = n->buf;
	for (int tries = 0;; tries++) {
		if (tries == 8)
			return false;
		struct bytes t = c;
		size = gen_size(m, x, &t);
		if (size > MAXC - 40)
			continue;
		apply_trunc(&t, size);
		if (judgeable(m, x, &t)) {
			c = t;
			break;
		}
	}
	if (!n->has_buf && n->t == N_NEW && size)
		return false; /* a closed new file is empty: not reached */
	/* A closed file: left open whether this commits the cut content. */
	struct cand cd[3] = {{.any_rc = true}};
	int nc = 1;
	if (!n->has_buf && n->t == N_REAL) {
		if (c.n == 0) {
			if (n->v.k == K_STR || n->v.k == K_BIN) {
				cd[nc] = (struct cand){.any_rc = true, .commit = true};
				cd[nc].v.k = n->v.k;
				nc++;
			}
		} else {
			struct val v;
			if (judge(&c, n->v.k, false, &v) == R_VALID)
				cd[nc++] = (struct cand){.rc = 0, .commit = true, .v = v};
			else if (!m->mix[F_REFUSE])
				return false;
		}
	}
	path_of(m, x, p, sizeof(p));
	int rc = mpfs_fs_truncate(m->fs, p, 0, size);
	mlog(m, "truncate %s %" PRIu64 " -> %d", p, size, rc);
	if (n->has_buf) {
		expect_rc(m, "truncate by path of an open file fails", rc, 0);
		n->buf = c;
		n->dirty = n->t != N_SCRATCH;
		n->cut = true;
		return true;
	}
	if (n->t == N_NEW) {
		expect_rc(m, "truncate of an empty new file fails", rc, 0);
		return true;
	}
	mlog(m, "        (content cut to %s)", show(&c, a, sizeof(a)));
	settle(m, x, rc, cd, nc, "truncate by path of a closed file");
	return true;
}

/* Would committing node x's buffer be refused (for some kind it may have)? */
static bool is_invalid(struct model *m, int x)
{
	struct node *n = &m->n[x];
	struct val v;
	if (n->t == N_SCRATCH || !n->dirty || !n->buf.n)
		return false;
	if (judge(&n->buf, n->t == N_REAL ? n->v.k : K_NONE, ends_npy(n->name), &v) != R_VALID)
		return true;
	return n->t == N_NEW && n->hid >= 0 &&
	       judge(&n->buf, m->hd[n->hid].v.k, ends_npy(n->name), &v) != R_VALID;
}

/* Without "refuse": before a handle commits, its content is made valid
 * (truncated and written again). */
static void make_valid(struct model *m, int hi)
{
	struct handle *h = &m->h[hi];
	char a[300];
	if (m->mix[F_REFUSE] || !h->live || !h->w || h->orphan || !is_invalid(m, h->node))
		return;
	struct node *n = &m->n[h->node];
	struct bytes w;
	do {
		if (n->ck == C_NPY)
			gen_npy(m, &w);
		else
			gen_text(m, &w);
		n->buf = w;
	} while (is_invalid(m, h->node) || !judgeable(m, h->node, &w));
	int rc = mpfs_fs_truncate(m->fs, "/by-handle", h->fh, 0);
	mlog(m, "truncate h%d 0 -> %d", hi, rc);
	expect_rc(m, "truncate through a handle fails", rc, 0);
	long r = mpfs_fs_write(m->fs, h->fh, (const char *)w.p, w.n, 0);
	mlog(m, "pwrite h%d off 0 %s -> %ld", hi, show(&w, a, sizeof(a)), r);
	expect_rc(m, "write fails", r, (long)w.n);
	n->cut = true;
}

static void do_flush(struct model *m, int hi, const char *name)
{
	struct handle *h = &m->h[hi];
	make_valid(m, hi);
	int rc = mpfs_fs_flush(m->fs, h->fh);
	if (h->orphan) {
		mlog(m, "%s h%d (orphaned) -> %d", name, hi, rc);
		return;
	}
	int x = h->node;
	struct node *n = &m->n[x];
	char p[1200];
	path_of(m, x, p, sizeof(p));
	mlog(m, "%s h%d (%s %s) -> %d", name, hi, h->w ? "writer of" : "reader of", p, rc);
	if (h->w)
		n->cut = false;
	struct cand cd[2] = {{.rc = 0}};
	int nc = 1;
	if (h->w && n->t != N_SCRATCH && n->dirty && n->buf.n)
		nc = commit_cands(m, x, &n->buf, cd);
	settle(m, x, rc, cd, nc,
	       !h->w				? "flush of a read-only handle"
	       : nc == 1 && cd[0].rc == -EINVAL ? "flush of refused content"
						: "flush of a writer");
}

bool op_flush(struct model *m, const char *name)
{
	int hi = pick_handle(m, -1, m->mix[F_ORPHAN]);
	if (hi < 0)
		return false;
	struct handle *h = &m->h[hi];
	if (!h->w && !m->mix[F_READER] && m->n[h->node].nw > 0 && !h->orphan)
		return false;
	do_flush(m, hi, name);
	return true;
}

static bool do_release(struct model *m, int hi)
{
	struct handle *h = &m->h[hi];
	char p[1200];
	make_valid(m, hi);
	int rc = mpfs_fs_release(m->fs, h->fh);
	h->live = false;
	if (h->orphan) {
		mlog(m, "release h%d (orphaned) -> %d", hi, rc);
		return true;
	}
	int x = h->node;
	struct node *n = &m->n[x];
	path_of(m, x, p, sizeof(p));
	mlog(m, "release h%d (%s %s) -> %d", hi, h->w ? "writer of" : "reader of", p, rc);
	if (!h->w) {
		n->nr--;
		expect_rc(m, "release of a read-only handle", rc, 0);
		return true;
	}
	n->nw--;
	struct cand cd[3] = {{.any_rc = true}};
	int nc = 1;
	if (n->t != N_SCRATCH && n->dirty) {
		if (n->buf.n) {
			struct cand more[2];
			int k = commit_cands(m, x, &n->buf, more);
			for (int i = 0; i < k; i++) {
				more[i].any_rc = true;
				if (more[i].commit || n->nw > 0)
					cd[nc++] = more[i];
			}
			if (n->nw == 0 && nc > 1 && k == 1) {
				cd[0] = cd[1]; /* the last close commits valid content */
				nc = 1;
			}
		} else if (n->t == N_REAL && (n->v.k == K_STR || n->v.k == K_BIN)) {
			struct cand e = {.any_rc = true, .commit = true};
			e.v.k = n->v.k;
			if (n->nw == 0 && m->mix[F_EMPTY]) {
				cd[0] = e;
			} else
				cd[nc++] = e;
		}
	}
	const char *what = n->nw ? "release of a writer that is not the last"
			   : nc == 1 && cd[0].commit && cd[0].v.b.n == 0 &&
					   (cd[0].v.k == K_STR || cd[0].v.k == K_BIN)
				   ? "last close of an emptied str or bin"
				   : "last close of a writer";
	settle(m, x, rc, cd, nc, what);
	if (n->nw == 0 && n->t != N_SCRATCH) {
		n->has_buf = false;
		n->buf.n = 0;
		n->dirty = false;
	}
	return true;
}

/* close(2): a flush, then the release. */
void do_close(struct model *m, int hi)
{
	do_flush(m, hi, "close: flush");
	check_tree(m);
	check_archive(m);
	do_release(m, hi);
	check_tree(m);
	check_archive(m);
}

bool op_release(struct model *m)
{
	int hi = pick_handle(m, -1, true);
	if (hi < 0)
		return false;
	struct handle *h = &m->h[hi];
	if (!m->mix[F_EMPTY] && h->w && !h->orphan) {
		struct node *n = &m->n[h->node];
		if (n->nw == 1 && n->dirty && !n->buf.n && n->t == N_REAL &&
		    (n->v.k == K_STR || n->v.k == K_BIN))
			return false;
	}
	/* The kernel flushes at every close(2); a release without a flush
	 * before it comes only after writes through a shared mapping. */
	if (h->orphan || !h->w || m->n[h->node].cut || rnd(m, 4)) {
		do_flush(m, hi, "close: flush");
		check_tree(m);
		check_archive(m);
	}
	return do_release(m, hi);
}

static void check_read(struct model *m, int hi, const char *what)
{
	char a[300], b[300], c[300];
	struct handle *h = &m->h[hi];
	struct bytes got, want[2];
	long r = read_all(m, h->fh, &got);
	if (h->orphan) {
		mlog(m, "read h%d (orphaned) -> %ld", hi, r);
		return;
	}
	int k;
	if (h->w) {
		want[0] = m->n[h->node].buf;
		k = 1;
	} else
		k = reader_sees(m, h->node, want);
	mlog(m, "read h%d -> %s rc %ld", hi, show(&got, a, sizeof(a)), r);
	if (r != 0 || (!b_eq(&got, &want[0]) && (k < 2 || !b_eq(&got, &want[1]))))
		fail(m, what, "read h%d: %s (rc %ld), expected %s%s%s", hi,
		     show(&got, a, sizeof(a)), r, show(&want[0], b, sizeof(b)),
		     k == 2 ? " or " : "", k == 2 ? show(&want[1], c, sizeof(c)) : "");
}

bool op_read(struct model *m)
{
	int hi = pick_handle(m, -1, m->mix[F_ORPHAN]);
	if (hi < 0)
		return false;
	check_read(m, hi,
		   m->h[hi].w ? "a writer reads wrong content" : "a reader reads wrong content");
	return true;
}

bool op_cat(struct model *m)
{
	char p[1200];
	int hi = free_handle(m), x = pick_node(m, false, false);
	uint64_t fh;
	if (hi < 0 || x < 0 || (!m->mix[F_READER] && m->n[x].nw > 0))
		return false;
	path_of(m, x, p, sizeof(p));
	int rc = mpfs_fs_open_file(m->fs, p, O_RDONLY, false, &fh);
	mlog(m, "cat %s: open -> h%d rc %d", p, hi, rc);
	expect_rc(m, "open for reading fails", rc, 0);
	m->h[hi] = (struct handle){.live = true, .fh = fh, .node = x};
	m->n[x].nr++;
	check_read(m, hi, "cat reads wrong content");
	do_flush(m, hi, "cat: flush");
	do_release(m, hi);
	return true;
}
