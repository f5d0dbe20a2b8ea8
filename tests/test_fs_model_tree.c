/* test_fs_model (see test_fs_model.c): the model itself, its random numbers,
 * the op log and failures, its tree of nodes, handles and hidden entries,
 * and random picks from it. */
#include "fs_model.h"

/* ---- the model ---------------------------------------------------------- */

const char *const ntype_names[] = {"real", "new", "scratch"};

struct failure failures[32];
int nfailures;

/* ---- the random generator (splitmix64) --------------------------------- */

static uint64_t rng_next(struct model *m)
{
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

unsigned rnd(struct model *m, unsigned n)
{
	return n ? (unsigned)(rng_next(m) % n) : 0;
}

/* ---- the op log and failures -------------------------------------------- */

void mlog(struct model *m, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	int k = snprintf(line, sizeof(line), "%6d  ", m->step);
	va_start(ap, fmt);
	vsnprintf(line + k, sizeof(line) - (size_t)k, fmt, ap);
	va_end(ap);
	tb_put(&m->log, line, strlen(line));
	tb_byte(&m->log, '\n');
}

/* Printable form of bytes for the log. */
const char *show(const struct bytes *b, char *out, size_t cap)
{
	size_t o = 0;
	out[o++] = '"';
	for (size_t i = 0; i < b->n && o + 8 < cap; i++) {
		uint8_t c = b->p[i];
		if (c == '\n')
			o += (size_t)snprintf(out + o, cap - o, "\\n");
		else if (c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, cap - o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	if (o + 2 < cap)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}

void fail(struct model *m, const char *tag, const char *fmt, ...)
{
	char msg[2000];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mlog(m, "FAILED: %s", msg);
	if (m->keep_going) {
		int i;
		for (i = 0; i < nfailures; i++)
			if (!strcmp(failures[i].tag, tag))
				break;
		if (i == nfailures && nfailures < 32) {
			nfailures++;
			snprintf(failures[i].tag, sizeof(failures[i].tag), "%s", tag);
		}
		if (i < nfailures) {
			struct failure *f = &failures[i];
			f->count++;
			if (!f->log || m->log.len < f->len) {
				free(f->log);
				f->log = malloc(m->log.len + 1);
				memcpy(f->log, m->log.p, m->log.len);
				f->log[m->log.len] = '\0';
				f->len = m->log.len;
				f->seed = m->seed;
				f->step = m->step;
				f->start = m->epoch_start;
			}
		}
		longjmp(m->jb, 1);
	}
	fprintf(stderr,
		"fs_model: seed %" PRIu64 ", operation %d: [%s] %s\n"
		"--- operations since this archive was mounted (at operation %d) ---\n%.*s"
		"--- replay: MPFS_MODEL_SEED=%" PRIu64 " MPFS_MODEL_OPS=%d MPFS_MODEL_EPOCH=%d"
		" MPFS_MODEL_MIX=%s\n",
		m->seed, m->step, tag, msg, m->epoch_start, (int)m->log.len, (char *)m->log.p,
		m->seed, m->step + 1, m->epoch_len, m->mix_str[0] ? m->mix_str : "all");
	cr_assert_fail("seed %" PRIu64 ", operation %d: [%s] %s", m->seed, m->step, tag, msg);
	abort();
}

/* ---- the tree of the model ----------------------------------------------- */

bool is_scratch(const char *n)
{
	size_t l = strlen(n);
	static const char *const suf[] = {".swp", ".swx", ".swpx", ".tmp"};
	if (n[0] == '.' || (l && n[l - 1] == '~') || !strcmp(n, "4913"))
		return true;
	if (l >= 3 && n[0] == '#' && n[l - 1] == '#')
		return true;
	for (size_t i = 0; i < 4; i++)
		if (l >= strlen(suf[i]) && !strcmp(n + l - strlen(suf[i]), suf[i]))
			return true;
	if (l == 9 && !strncmp(n, "sed", 3)) {
		for (size_t i = 3; i < 9; i++)
			if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
			      (n[i] >= '0' && n[i] <= '9')))
				return false;
		return true;
	}
	return false;
}

bool ends_npy(const char *n)
{
	size_t l = strlen(n);
	return l > 4 && !strcmp(n + l - 4, ".npy");
}

void path_of(const struct model *m, int x, char *out, size_t cap)
{
	if (x == 0) {
		snprintf(out, cap, "/");
		return;
	}
	char up[1024];
	path_of(m, m->n[x].parent, up, sizeof(up));
	snprintf(out, cap, "%s%s%s", up, strcmp(up, "/") ? "/" : "", m->n[x].name);
}

void child_path(const struct model *m, int d, const char *name, char *out, size_t cap)
{
	char up[1024];
	path_of(m, d, up, sizeof(up));
	snprintf(out, cap, "%s%s%s", up, strcmp(up, "/") ? "/" : "", name);
}

int child(const struct model *m, int d, const char *name)
{
	for (int i = 1; i < MAXN; i++)
		if (m->n[i].live && m->n[i].parent == d && !strcmp(m->n[i].name, name))
			return i;
	return -1;
}

int hidden_at(const struct model *m, int d, const char *name)
{
	for (int i = 0; i < MAXHID; i++)
		if (m->hd[i].live && m->hd[i].dir == d && !strcmp(m->hd[i].name, name))
			return i;
	return -1;
}

bool under(const struct model *m, int x, int d)
{
	for (; x > 0; x = m->n[x].parent)
		if (x == d)
			return true;
	return d == 0;
}

int nchildren(const struct model *m, int d)
{
	int c = 0;
	for (int i = 1; i < MAXN; i++)
		c += m->n[i].live && m->n[i].parent == d;
	return c;
}

bool hidden_under(const struct model *m, int d)
{
	for (int i = 0; i < MAXHID; i++)
		if (m->hd[i].live && under(m, m->hd[i].dir, d))
			return true;
	return false;
}

int weights_dir(const struct model *m)
{
	return child(m, 0, "weights");
}

int new_node(struct model *m)
{
	for (int i = 1; i < MAXN; i++)
		if (!m->n[i].live) {
			memset(&m->n[i], 0, sizeof(m->n[i]));
			m->n[i].live = true;
			m->n[i].hid = -1;
			m->n[i].odir = -1;
			return i;
		}
	return -1;
}

int nlive(const struct model *m)
{
	int c = 0;
	for (int i = 0; i < MAXN; i++)
		c += m->n[i].live;
	return c;
}

enum ck ck_of(enum kind k)
{
	return k == K_BIN ? C_BIN : k == K_NPY ? C_NPY : C_TEXT;
}

/* What a file holds when no writer is open: its committed value, nothing
 * (new), or its memory content (scratch). */
void closed_content(const struct model *m, int x, struct bytes *out)
{
	const struct node *n = &m->n[x];
	if (n->t == N_SCRATCH)
		*out = n->buf;
	else if (n->t == N_NEW)
		out->n = 0;
	else
		render(&n->v, out);
}

/* What a reader may see: out[0], or out[0] or out[1] (returns 1 or 2). */
int reader_sees(const struct model *m, int x, struct bytes out[2])
{
	const struct node *n = &m->n[x];
	if (n->t == N_SCRATCH) {
		out[0] = n->buf;
		return 1;
	}
	closed_content(m, x, &out[0]);
	if (n->nw > 0 && n->has_buf && !b_eq(&n->buf, &out[0])) {
		out[1] = n->buf;
		return 2;
	}
	return 1;
}

void orphan(struct model *m, int x)
{
	for (int i = 0; i < MAXHD; i++)
		if (m->h[i].live && !m->h[i].orphan && m->h[i].node == x)
			m->h[i].orphan = true;
	m->n[x].live = false;
	m->arc_dirty = true;
}

/* ---- picking ------------------------------------------------------------------------ */

int pick_node(struct model *m, bool dir, bool any_type)
{
	int c[MAXN], k = 0;
	for (int i = dir ? 1 : 0; i < MAXN; i++)
		if (m->n[i].live && (any_type || m->n[i].dir == dir))
			c[k++] = i;
	return k ? c[rnd(m, (unsigned)k)] : -1;
}

/* A map directory new files may go to (not weights). */
int pick_map_dir(struct model *m)
{
	int c[MAXN], k = 0, w = weights_dir(m);
	for (int i = 0; i < MAXN; i++)
		if (m->n[i].live && m->n[i].dir && (w < 0 || !under(m, i, w)))
			c[k++] = i;
	return k ? c[rnd(m, (unsigned)k)] : -1;
}

int pick_handle(struct model *m, int want_w, bool orphans)
{
	int c[MAXHD], k = 0;
	for (int i = 0; i < MAXHD; i++)
		if (m->h[i].live && (want_w < 0 || m->h[i].w == want_w) &&
		    (orphans || !m->h[i].orphan))
			c[k++] = i;
	return k ? c[rnd(m, (unsigned)k)] : -1;
}

int free_handle(struct model *m)
{
	for (int i = 0; i < MAXHD; i++)
		if (!m->h[i].live)
			return i;
	return -1;
}
