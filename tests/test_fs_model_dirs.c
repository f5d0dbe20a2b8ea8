/* test_fs_model (see test_fs_model.c): the operations on names, unlink,
 * mkdir, rmdir, renames of files and directories, and the escaped name of
 * an existing key. */
#include "fs_model.h"

bool op_unlink(struct model *m)
{
	char p[1200];
	int x = pick_node(m, false, true);
	if (x <= 0)
		return false;
	struct node *n = &m->n[x];
	if (!m->mix[F_ORPHAN] && (n->nw || n->nr))
		return false;
	if (n->t == N_NEW && n->hid >= 0)
		return false;
	path_of(m, x, p, sizeof(p));
	int rc = mpfs_fs_unlink(m->fs, p);
	mlog(m, "unlink %s -> %d", p, rc);
	if (n->dir) {
		if (rc != -EISDIR && rc != -EPERM)
			fail(m, "unlink of a directory", "rc %d, expected EISDIR or EPERM", rc);
		return true;
	}
	expect_rc(m, "unlink fails", rc, 0);
	orphan(m, x);
	return true;
}

static const char *const dir_names[] = {"d1", "d2", ".d", "sub"};

bool op_mkdir(struct model *m)
{
	char p[1200];
	int d = pick_map_dir(m);
	if (d < 0 || nlive(m) >= MAXN - 2)
		return false;
	const char *name = dir_names[rnd(m, 4)];
	int y = child(m, d, name);
	if (hidden_at(m, d, name) >= 0)
		return false;
	child_path(m, d, name, p, sizeof(p));
	int rc = mpfs_fs_mkdir(m->fs, p);
	mlog(m, "mkdir %s -> %d", p, rc);
	if (y >= 0) {
		expect_rc(m, "mkdir of an existing name", rc, -EEXIST);
		return true;
	}
	expect_rc(m, "mkdir fails", rc, 0);
	int x = new_node(m);
	m->n[x].dir = true;
	m->n[x].parent = d;
	m->n[x].t = N_REAL;
	snprintf(m->n[x].name, sizeof(m->n[x].name), "%s", name);
	m->arc_dirty = true;
	return true;
}

bool op_rmdir(struct model *m)
{
	char p[1200];
	int x = pick_node(m, false, true);
	if (x <= 0 || x == weights_dir(m))
		return false;
	path_of(m, x, p, sizeof(p));
	if (!m->n[x].dir) {
		if (rnd(m, 4))
			return false;
		int rc = mpfs_fs_rmdir(m->fs, p);
		mlog(m, "rmdir %s -> %d", p, rc);
		expect_rc(m, "rmdir of a file", rc, -ENOTDIR);
		return true;
	}
	if (hidden_under(m, x))
		return false;
	int rc = mpfs_fs_rmdir(m->fs, p);
	mlog(m, "rmdir %s -> %d", p, rc);
	if (nchildren(m, x)) {
		expect_rc(m, "rmdir of a directory that lists entries", rc, -ENOTEMPTY);
		return true;
	}
	expect_rc(m, "rmdir fails", rc, 0);
	m->n[x].live = false;
	m->arc_dirty = true;
	return true;
}

/* Moves node x to (d, name), replacing y (or -1). */
static void move_node(struct model *m, int x, int d, const char *name, int y)
{
	if (y >= 0)
		orphan(m, y);
	m->n[x].parent = d;
	snprintf(m->n[x].name, sizeof(m->n[x].name), "%s", name);
	m->arc_dirty = true;
}

bool op_rename(struct model *m)
{
	char from[1200], to[1200], name[NAMEMAX];
	int x = pick_node(m, false, false);
	if (x < 0)
		return false;
	struct node *n = &m->n[x];
	int w = weights_dir(m);
	bool in_w = w >= 0 && under(m, x, w);
	int d = in_w ? x == 0 ? 0 : n->parent : pick_map_dir(m);
	if (in_w)
		d = n->parent;
	else if (rnd(m, 2))
		d = n->parent;
	if (d < 0)
		return false;
	/* the name */
	unsigned r = rnd(m, 10);
	if (n->t == N_SCRATCH && n->odir >= 0 && m->n[n->odir].live && m->n[n->odir].dir &&
	    rnd(m, 2)) {
		/* back to where it came from */
		d = n->odir;
		memcpy(name, n->oname, sizeof(name));
	} else if (r < 3 && m->mix[F_SCRATCH]) {
		static const char *const fmt[] = {".%s.swp", "%s~", "%s.tmp", "sedz9y8x7", "#%s#"};
		snprintf(name, sizeof(name), fmt[rnd(m, 5)], n->name);
	} else if (r < 5) {
		int y = pick_node(m, false, false);
		if (y < 0 || m->n[y].parent != d)
			return false;
		snprintf(name, sizeof(name), "%s", m->n[y].name);
	} else if (n->ck == C_NPY)
		snprintf(name, sizeof(name), "%s", npy_names[rnd(m, 4)]);
	else
		snprintf(name, sizeof(name), "%s", text_names[rnd(m, 6)]);
	if (d == n->parent && !strcmp(name, n->name))
		return false;
	if (strlen(name) >= NAMEMAX - 1)
		return false;
	int y = child(m, d, name), hid = hidden_at(m, d, name);
	/* an existing entry is what it is (a key named x~ is a value); the
	 * name decides only for a new one */
	bool scratch = y >= 0 ? m->n[y].t == N_SCRATCH : is_scratch(name);
	if (y < 0 && hid >= 0 && is_scratch(name))
		return false;
	if (!scratch && (n->ck == C_NPY) != ends_npy(name))
		return false;
	bool noreplace = rnd(m, 6) == 0;
	if (y >= 0 && !m->mix[F_ORPHAN] && (m->n[y].nw || m->n[y].nr))
		return false;
	path_of(m, x, from, sizeof(from));
	child_path(m, d, name, to, sizeof(to));
	if (y >= 0 && m->n[y].dir) {
		int rc = mpfs_fs_rename(m->fs, from, to, noreplace);
		mlog(m, "rename%s %s %s (a directory) -> %d", noreplace ? " -n" : "", from, to, rc);
		expect_rc(m, "rename of a file onto a directory", rc,
			  noreplace ? -EEXIST : -EISDIR);
		return true;
	}
	if (y >= 0 && noreplace) {
		int rc = mpfs_fs_rename(m->fs, from, to, true);
		mlog(m, "rename -n %s %s (exists) -> %d", from, to, rc);
		expect_rc(m, "rename noreplace onto an existing file", rc, -EEXIST);
		return true;
	}
	if (!m->mix[F_SCRATCH] && (scratch || n->t == N_SCRATCH))
		return false;
	if (y >= 0 && m->n[y].t == N_NEW)
		return false;
	if (y >= 0 && m->n[y].t == N_SCRATCH && n->t != N_SCRATCH)
		return false;
	if (y < 0 && hid >= 0 && n->t != N_SCRATCH)
		return false;
	if (n->t == N_NEW && (n->hid >= 0 || scratch || y >= 0 || !m->mix[F_NEWRENAME]))
		return false;
	if (!m->mix[F_FOLLOW] && (n->nw || n->nr))
		return false;
	if (n->t == N_REAL && scratch && y < 0 && n->nw > 0)
		return false;
	if (n->t == N_REAL && scratch && y < 0) {
		int k = 0;
		while (k < MAXHID && m->hd[k].live)
			k++;
		if (k == MAXHID)
			return false; /* the model holds so many hidden entries */
	}

	if (n->t == N_SCRATCH && !scratch) {
		/* commits the content under the real name */
		struct bytes c = n->buf;
		struct val v1, v2;
		enum res r1, r2 = R_VALID;
		if (c.n == 0)
			return false;
		if (n->ck == C_TEXT && y >= 0 && m->n[y].ck != C_TEXT && m->n[y].ck != C_BIN)
			return false;
		r1 = judge(&c, y >= 0 ? m->n[y].v.k : K_NONE, ends_npy(name), &v1);
		if (r1 == R_UNKNOWN || (r1 == R_INVALID && !m->mix[F_REFUSE]))
			return false;
		if (y < 0 && hid >= 0) {
			r2 = judge(&c, m->hd[hid].v.k, ends_npy(name), &v2);
			if (r2 != r1 || (r1 == R_VALID && !val_same(&v1, &v2)))
				return false;
		}
		int rc = mpfs_fs_rename(m->fs, from, to, noreplace);
		mlog(m, "rename%s %s %s (scratch onto %s) -> %d", noreplace ? " -n" : "", from, to,
		     y >= 0	? "an existing file"
		     : hid >= 0 ? "a hidden name"
				: "a new name",
		     rc);
		if (r1 == R_INVALID) {
			expect_rc(m, "rename of refused scratch content onto a real name", rc,
				  -EINVAL);
			return true;
		}
		expect_rc(m, "rename of a scratch file onto a real name", rc, 0);
		move_node(m, x, d, name, y);
		if (hid >= 0)
			m->hd[hid].live = false;
		n->t = N_REAL;
		n->v = v1;
		n->ck = ck_of(v1.k);
		n->dirty = false;
		if (n->nw == 0) {
			n->has_buf = false;
			n->buf.n = 0;
		} else
			resolve_buf(m, x);
		return true;
	}
	int rc = mpfs_fs_rename(m->fs, from, to, noreplace);
	mlog(m, "rename%s %s %s (%s %s onto %s) -> %d", noreplace ? " -n" : "", from, to,
	     ntype_names[n->t], n->dir ? "dir" : "file",
	     y >= 0    ? "an existing file"
	     : scratch ? "a scratch name"
		       : "a new name",
	     rc);
	if (n->t == N_REAL && scratch && y < 0) {
		/* hides the entry; the content moves into a scratch file */
		int k;
		for (k = 0; k < MAXHID && m->hd[k].live; k++)
			;
		if (k == MAXHID)
			fail(m, "model: too many hidden entries", "%d", k);
		expect_rc(m, "rename of a file to a scratch name", rc, 0);
		m->hd[k] = (struct hidden){.live = true, .dir = n->parent, .v = n->v};
		memcpy(m->hd[k].name, n->name, sizeof(n->name));
		render(&n->v, &n->buf);
		n->has_buf = true;
		n->t = N_SCRATCH;
		n->odir = n->parent;
		memcpy(n->oname, n->name, sizeof(n->oname));
		move_node(m, x, d, name, -1);
		return true;
	}
	expect_rc(m,
		  n->t == N_NEW	   ? "rename of a new, not yet committed file"
		  : y >= 0	   ? "rename onto an existing file"
		  : d != n->parent ? "rename to another directory"
				   : "rename to a new name",
		  rc, 0);
	move_node(m, x, d, name, y);
	if (n->t == N_NEW && n->dirty && n->buf.n) {
		/* left open: the rename may commit what was written so far */
		struct cand cd[3] = {{.any_rc = true}};
		int nc = 1 + commit_cands(m, x, &n->buf, cd + 1);
		for (int i = 1; i < nc; i++)
			cd[i].any_rc = true;
		settle(m, x, rc, cd, nc, "rename of a new file with content");
	}
	return true;
}

bool op_renamedir(struct model *m)
{
	char from[1200], to[1200], name[NAMEMAX];
	int x = pick_node(m, true, false), w = weights_dir(m);
	if (x <= 0 || x == w || hidden_under(m, x))
		return false;
	for (int i = 1; i < MAXN && !m->mix[F_NEWRENAME]; i++)
		if (m->n[i].live && m->n[i].t != N_REAL && under(m, i, x))
			return false;
	int d = rnd(m, 2) ? m->n[x].parent : pick_map_dir(m);
	if (d < 0)
		return false;
	unsigned r = rnd(m, 8);
	if (r == 0 && m->mix[F_SCRATCH])
		snprintf(name, sizeof(name), ".%s", m->n[x].name);
	else if (r < 3) {
		int y = pick_node(m, false, true);
		if (y <= 0 || m->n[y].parent != d)
			return false;
		snprintf(name, sizeof(name), "%s", m->n[y].name);
	} else
		snprintf(name, sizeof(name), "%s", dir_names[rnd(m, 4)]);
	if (strlen(name) >= NAMEMAX - 1 || (d == m->n[x].parent && !strcmp(name, m->n[x].name)))
		return false;
	int y = child(m, d, name);
	bool noreplace = rnd(m, 6) == 0;
	if (hidden_at(m, d, name) >= 0)
		return false;
	if (y >= 0 && !m->n[y].dir && !m->mix[F_ORPHAN] && (m->n[y].nw || m->n[y].nr))
		return false;
	for (int i = 0; i < MAXHD && !m->mix[F_FOLLOW]; i++)
		if (m->h[i].live && !m->h[i].orphan && under(m, m->h[i].node, x))
			return false;
	path_of(m, x, from, sizeof(from));
	child_path(m, d, name, to, sizeof(to));
	int rc = mpfs_fs_rename(m->fs, from, to, noreplace);
	mlog(m, "rename%s %s %s (a directory) -> %d", noreplace ? " -n" : "", from, to, rc);
	if (under(m, d, x)) {
		expect_rc(m, "rename of a directory into itself", rc, -EINVAL);
		return true;
	}
	if (y >= 0 && noreplace) {
		expect_rc(m, "rename noreplace of a directory onto an existing name", rc, -EEXIST);
		return true;
	}
	if (y >= 0 && !m->n[y].dir) {
		/* EXDEV (the scratch-name rule of writing.md) is an error too */
		if (rc != -ENOTDIR && !(rc == -EXDEV && is_scratch(name)))
			fail(m, "rename of a directory onto a file", "rc %d (%s), expected ENOTDIR",
			     rc, strerror(-rc));
		return true;
	}
	if (y >= 0 && nchildren(m, y)) {
		if (rc != -ENOTEMPTY && rc != -EEXIST)
			fail(m, "rename of a directory onto one that lists entries",
			     "rc %d (%s), expected ENOTEMPTY or EEXIST", rc, strerror(-rc));
		return true;
	}
	/* Only hidden entries there: when they leave the archive is left open
	 * (with the next commit, or at unmount), so the directory may be
	 * empty already (then it is replaced, and they go with it) or not. */
	if (y >= 0 && hidden_under(m, y)) {
		if (rc == -ENOTEMPTY || rc == -EEXIST)
			return true;
		for (int i = 0; i < MAXHID; i++)
			if (m->hd[i].live && under(m, m->hd[i].dir, y))
				m->hd[i].live = false;
	}
	if (y < 0 && is_scratch(name)) {
		expect_rc(m, "rename of a directory to a scratch name", rc, -EXDEV);
		return true;
	}
	expect_rc(m, y >= 0 ? "rename of a directory onto an empty one" : "rename of a directory",
		  rc, 0);
	move_node(m, x, d, name, y);
	return true;
}

bool op_escaped(struct model *m)
{
	char p[1200], name[NAMEMAX + 2];
	uint64_t fh = 0;
	int hi = free_handle(m), x = pick_node(m, false, false);
	if (hi < 0 || x < 0 || m->n[x].t != N_REAL || ends_npy(m->n[x].name) ||
	    m->n[x].name[0] == '%' || is_scratch(m->n[x].name) ||
	    (m->n[x].nw > 0 && !m->mix[F_MULTI]))
		return false;
	snprintf(name, sizeof(name), "%%%.*s", NAMEMAX - 1, m->n[x].name);
	child_path(m, m->n[x].parent, name, p, sizeof(p));
	int rc = mpfs_fs_open_file(m->fs, p, O_WRONLY | O_CREAT, true, &fh);
	mlog(m, "create %s (the escaped name of an existing key) -> h%d rc %d", p, hi, rc);
	if (rc == -EEXIST)
		return true;
	expect_rc(m, "create of an escaped name of an existing key", rc, 0);
	m->h[hi] = (struct handle){.live = true, .w = true, .fh = fh, .node = x};
	struct node *n = &m->n[x];
	if (!n->has_buf) {
		closed_content(m, x, &n->buf);
		n->has_buf = true;
	}
	n->nw++;
	return true;
}
