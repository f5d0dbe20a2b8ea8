/* A model-based random test of fs/ (issue 7): random sequences of file and
 * directory operations driven against fs/fs.h directly (no FUSE), checked
 * after every step against a small reference model of what each open file,
 * the tree and the archive must hold.
 *
 * The archive is built here: params/{i: 7, f: 0.5, s: "relu", sedentary: 3,
 * .hidden: "wx", x~: 1.5} (the last three are existing keys whose names look
 * like scratch files), blob (a bin), weights/w.npy (nested lists, <f8 2x2),
 * xtra/{c.npy (compact <f8 (3,)), t: "wx", n: -4}, empty/ (an empty map).
 * Each "epoch" (MPFS_MODEL_EPOCH operations) mounts a fresh copy, runs
 * random operations, releases every handle, unmounts (mpfs_fs_close) and
 * checks the archive once more.
 *
 * RULES THE MODEL CHECKS (docs/writing.md, DESIGN.md section 4 and the
 * corrections of issue 7). "Strict" means an exact expected result.
 *
 *  Files and handles
 *  - Every file is a node; a handle points at its node and follows it across
 *    renames (of the file or of a directory above it). A handle whose node
 *    was unlinked or replaced by a rename is orphaned: its results are not
 *    checked, but nothing it does may change the tree or the archive.
 *  - A handle opened for writing shares its node's one in-memory buffer with
 *    the node's other writers: the current content, or empty with O_TRUNC.
 *    Writes, pwrites (offsets within or at the end of the content; past the
 *    end for bin and .npy, zero-filled) and truncates (by handle, or by path
 *    while the file is open for writing) change that buffer, and every read
 *    through a writer returns it exactly.
 *  - A read-only handle reads its node's content: the committed value as
 *    shown, exactly, while no writer is open; while a writer is open, either
 *    that or the writers' buffer (left open). getattr sizes likewise.
 *  - Only handles opened for writing commit. A read-only handle's flush
 *    returns 0 and never changes the archive; neither does a release.
 *  - flush/fsync of a writer (mpfs_fs_flush): nothing to commit (no change
 *    since the last commit) -> 0; an empty buffer -> 0, nothing committed
 *    (the shell's open O_TRUNC + close); otherwise the content is parsed for
 *    its kind: valid -> 0 and committed (the archive then holds the value);
 *    refused -> -EINVAL, archive untouched, the writer's buffer stays as
 *    written, and every later flush fails again until a write or truncate
 *    changes it. After a commit a writer may read back either what was
 *    written or the value as now shown (the test reads once to learn which).
 *  - Release of the last writer commits the buffer if it changed since the
 *    last commit (return code not checked): valid content is committed,
 *    refused content is dropped (archive untouched). An empty buffer commits
 *    an empty value for a str or bin, and keeps the value of a number or an
 *    array. Release of a writer that is not the last may commit or not.
 *    After the last writer is gone a file reads back the committed value.
 *    Closes are sent as the kernel sends them: a flush, then the release;
 *    a release with no flush before it only after writes (a shared mapping),
 *    never after a truncate or an O_TRUNC open.
 *  - Left open (either outcome accepted, then followed): truncate(2) by path
 *    of a file nobody has open (commits the cut content or not), renaming a
 *    new file that holds content (may commit it), and which of two kinds a
 *    new file at a hidden name is judged by.
 *  - Kinds: a text file's content (JSON whitespace trimmed) that is a JSON
 *    number/string (NaN, Infinity accepted) replaces the value; a float stays
 *    a float when an integer is written ("3" -> 3.0); non-JSON text is
 *    refused unless the value was a string (or the file is new): then the
 *    text less spaces, tabs and newlines becomes the string. A bin takes any
 *    bytes. A .npy takes a whole valid .npy (here always <f8, any of a few
 *    shapes); a broken magic, a truncated header or a size that does not
 *    match the header is refused. Shown forms: ints in decimal, floats as
 *    Python's repr, strings as JSON, each with "\n"; bin raw; .npy as the
 *    canonical v1.0 file (which is what the test writes).
 *  - Content the test cannot judge for certain (whitespace only, "-0",
 *    long numbers, control bytes inside quotes...) is never produced.
 *
 *  Scratch files and new files
 *  - Scratch-ness is decided when a file is created (by mpfs_fs_is_scratch's
 *    documented name list), never by the name of an existing key: an
 *    existing key named sedentary, .hidden or x~ is a value like any other.
 *  - A file created under a scratch name lives in memory only: flushes and
 *    releases return 0 and never touch the archive; it keeps its content
 *    after the last close.
 *  - A file created under another name is listed at once, is not in the
 *    archive until its first commit of valid content, and stays listed
 *    (empty, memory only) if it is closed without one. It can be renamed
 *    before it is written (issue 15).
 *  - Renaming a real file (not open for writing) to a new scratch name moves
 *    its content into a scratch file and hides the entry: the name is no
 *    longer listed (getattr ENOENT); the archive may still hold the key
 *    (left open: removed at the next commit or at unmount) but must not
 *    after unmount, unless something replaced it.
 *  - Renaming a scratch file onto a real name commits its content under that
 *    name (in place of an existing value, judged by that value's kind, or
 *    as a new key): refused content -> -EINVAL and nothing changes. Where it
 *    is the hidden name, only contents whose result does not depend on
 *    whether the hidden key is still there are used; a new file created at
 *    a hidden name may commit either way.
 *
 *  Directory operations (commit at once)
 *  - unlink removes a key (or a memory-only file); mkdir adds an empty map
 *    (also ".d": a real key); rmdir removes a directory that lists nothing,
 *    -ENOTEMPTY if it lists anything (new and scratch files too); unlink of
 *    a directory fails (-EISDIR or -EPERM), rmdir of a file -ENOTDIR.
 *  - rename of a file: to a free name (same or another directory) moves the
 *    key; onto an existing file the target takes the value; noreplace onto
 *    an existing name -> -EEXIST; onto a directory -> -EISDIR. Arrays keep
 *    .npy names and stay in (or out of) weights; text files take no .npy
 *    name; a new file is renamed only to a free name.
 *  - rename of a directory: moves the map; onto an empty directory replaces
 *    it; onto one that lists anything -> -ENOTEMPTY (or -EEXIST); onto a
 *    file -> -ENOTDIR; into itself -> -EINVAL; to a scratch name -> -EXDEV.
 *  - Creating "%NAME" where NAME is an existing key of that map is that key
 *    or -EEXIST, never a second key (issue 5).
 *
 *  After every step
 *  - getattr of every node (type, size), readdir of every directory (the
 *    exact set of names, no duplicates), getattr ENOENT for hidden names.
 *  - When the archive file changed or the model expects a change: a fresh
 *    mpfs_view of the archive path must show every committed file with
 *    exactly its modelled content (and mpfs_doc_init of the file the
 *    value's MsgPack type: int, float, str, bin, or an array's map or list),
 *    every committed directory with exactly
 *    its committed entries (plus, until unmount, hidden ones), and
 *    mpfs_doc_init of the file must find no map with a duplicate key.
 *  Not checked: the order of entries in a map, number widths, key order
 *  after renames, .npy encodings (nested/compact), xattrs, log lines.
 *
 * RUNNING
 *  MPFS_MODEL_SEED=S     run seed S only (default: seeds 1..MPFS_MODEL_SEEDS)
 *  MPFS_MODEL_SEEDS=N    number of seeds (default 4)
 *  MPFS_MODEL_OPS=N      operations in all, shared by the seeds (default 100000)
 *  MPFS_MODEL_EPOCH=N    operations per mount of a fresh archive (default 200)
 *  MPFS_MODEL_MIX=LIST   operations and features to use, comma-separated:
 *      "open,write,flush" uses only those operations (all features on);
 *      "-rename,-scratch" everything but those; "all" everything.
 *      Operations: open create write truncate truncate-path flush fsync
 *      release read cat rename rename-dir unlink mkdir rmdir escaped.
 *      Features: scratch (scratch names), scratchkeys (existing keys with
 *      scratch-looking names in the archive), multi (several writers on a
 *      file), reader (read-only handles open on a file being written),
 *      follow (rename files, or directories above them, while open),
 *      orphan (unlink or replace files that are open), newrename (rename
 *      new, uncommitted files and directories holding them), refuse
 *      (commit refused content; without it content is made valid first),
 *      empty (a last close that leaves a str or bin empty).
 *  MPFS_MODEL_KEEP_GOING=1  do not stop at the first failure: go on with the
 *      next epoch, and at the end print, for each kind of failure, the
 *      shortest epoch that showed it (with a small MPFS_MODEL_EPOCH, such as
 *      10, these are short sequences).
 * Tests: fs_model/baseline runs BASELINE_MIX (what the fs/ of this commit
 * passes) or MPFS_MODEL_MIX; fs_model/full_mix (built with
 * -DMPFS_KNOWN_BUGS=1) runs everything, as does
 *   MPFS_MODEL_MIX=all build/tests/test_fs_model --filter 'fs_model/baseline'
 * A long run: MPFS_MODEL_OPS=5000000 MPFS_MODEL_MIX=... build/tests/test_fs_model
 * On the fs/ this test was written against, each feature or operation
 * added to BASELINE_MIX finds (issue 7's numbers): refuse: a refused commit
 * reloads the writer's buffer (4); reader: a reader's flush commits, or is
 * refused for, a writer's buffer, and a reader keeps reading a closed
 * writer's buffer (1); follow: handles follow paths, not files (3);
 * scratchkeys: existing keys named x~, .hidden, sedentary are treated as
 * scratch (2); escaped: %NAME adds a second key NAME (5); empty: O_TRUNC and
 * close keep a str or bin (17); create + newrename: renaming a new file
 * gives EINVAL (15); create: rmdir of a memory-only file gives ENOENT;
 * rename-dir: a directory renamed into itself returns 0 and is gone, and
 * one renamed onto a directory holding only new files, or onto a new file,
 * replaces it (16); a directory renamed onto an existing ".d" gives EXDEV.
 * A failure prints the seed, the operations since the archive was mounted,
 * and the environment that replays it (the run is a function of the seed,
 * the mix and MPFS_MODEL_EPOCH). */
#include "fs_model.h"

/* The parts of this test, linked into one executable (tests/meson.build),
 * with their shared declarations in fs_model.h: test_fs_model_tree.c (the
 * model: random numbers, the op log and failures, the tree, picks),
 * test_fs_model_content.c (values as shown, .npy files, judging and making
 * content), test_fs_model_check.c (the checks after every step and of each
 * commit), test_fs_model_files.c and test_fs_model_dirs.c (the operations).
 * Here: the mix, the archive and the epochs, the runs and the tests. */

/* ---- the operations and features --------------------------------------- */

static const char *const mix_names[NMIX] = {
	"open",	   "create",  "write",	 "truncate",  "truncate-path", "flush",	      "fsync",
	"release", "read",    "cat",	 "rename",    "rename-dir",    "unlink",      "mkdir",
	"rmdir",   "escaped", "scratch", "multi",     "orphan",	       "scratchkeys", "empty",
	"reader",  "refuse",  "follow",	 "newrename",
};

static const int op_weight[NOPS] = {
	[OP_OPEN] = 10,	 [OP_CREATE] = 5, [OP_WRITE] = 20, [OP_TRUNC] = 5,
	[OP_TRUNCP] = 2, [OP_FLUSH] = 8,  [OP_FSYNC] = 4,  [OP_RELEASE] = 11,
	[OP_READ] = 6,	 [OP_CAT] = 4,	  [OP_RENAME] = 8, [OP_RENAMEDIR] = 2,
	[OP_UNLINK] = 2, [OP_MKDIR] = 2,  [OP_RMDIR] = 2,  [OP_ESCAPED] = 1,
};

static bool run_op(struct model *m, enum op op)
{
	switch (op) {
	case OP_OPEN: return op_open(m);
	case OP_CREATE: return op_create(m);
	case OP_WRITE: return op_write(m, false);
	case OP_TRUNC: return op_write(m, true);
	case OP_TRUNCP: return op_truncp(m);
	case OP_FLUSH: return op_flush(m, "flush");
	case OP_FSYNC: return op_flush(m, "fsync");
	case OP_RELEASE: return op_release(m);
	case OP_READ: return op_read(m);
	case OP_CAT: return op_cat(m);
	case OP_RENAME: return op_rename(m);
	case OP_RENAMEDIR: return op_renamedir(m);
	case OP_UNLINK: return op_unlink(m);
	case OP_MKDIR: return op_mkdir(m);
	case OP_RMDIR: return op_rmdir(m);
	case OP_ESCAPED: return op_escaped(m);
	default: return false;
	}
}

/* ---- the archive and the epochs ------------------------------------------------------------ */

static int add_node(struct model *m, int parent, const char *name, bool dir, const struct val *v)
{
	int x = parent < 0 ? 0 : new_node(m);
	if (parent < 0) {
		memset(&m->n[0], 0, sizeof(m->n[0]));
		m->n[0].live = true;
		m->n[0].hid = -1;
	}
	m->n[x].dir = dir;
	m->n[x].parent = parent < 0 ? 0 : parent;
	m->n[x].t = N_REAL;
	snprintf(m->n[x].name, sizeof(m->n[x].name), "%s", name);
	if (v) {
		m->n[x].v = *v;
		m->n[x].ck = ck_of(v->k);
	}
	return x;
}

static struct val vint(int64_t i)
{
	struct val v = {.k = K_INT, .i = i};
	return v;
}

static struct val vflt(double f)
{
	struct val v = {.k = K_FLOAT, .f = f};
	return v;
}

static struct val vstr(enum kind k, const void *p, size_t n)
{
	struct val v = {.k = k};
	b_set(&v.b, p, n);
	return v;
}

/* Removes the archive's directory: the archive and leftovers of commits. */
static void rm_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char p[1200];
	cr_assert_not_null(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		cr_assert_eq(unlink(p), 0, "%s: %s", p, strerror(errno));
	}
	closedir(d);
	cr_assert_eq(rmdir(path), 0, "%s: %s", path, strerror(errno));
}

static void epoch_start(struct model *m)
{
	struct tb b = {0};
	bool sk = m->mix[F_SCRATCHKEYS];
	double w[4] = {1.0, 2.0, 3.0, 4.0}, c[3] = {0.5, 1.0, 1.5};
	struct val v;

	memset(m->n, 0, sizeof(m->n));
	memset(m->h, 0, sizeof(m->h));
	memset(m->hd, 0, sizeof(m->hd));
	m->log.len = 0;
	m->epoch_start = m->step;
	m->final = false;

	tb_map(&b, 5);
	tb_str(&b, "params");
	tb_map(&b, sk ? 6 : 3);
	tb_str(&b, "i"), tb_int(&b, 7);
	tb_str(&b, "f"), tb_f64(&b, 0.5);
	tb_str(&b, "s"), tb_str(&b, "relu");
	if (sk) {
		tb_str(&b, "sedentary"), tb_int(&b, 3);
		tb_str(&b, ".hidden"), tb_str(&b, "wx");
		tb_str(&b, "x~"), tb_f64(&b, 1.5);
	}
	tb_str(&b, "blob"), tb_bin(&b, "\x00\x01\x02\xff", 4);
	tb_str(&b, "weights");
	tb_map(&b, 1);
	tb_str(&b, "w");
	tb_arr(&b, 2);
	tb_arr(&b, 2), tb_f64(&b, 1.0), tb_f64(&b, 2.0);
	tb_arr(&b, 2), tb_f64(&b, 3.0), tb_f64(&b, 4.0);
	tb_str(&b, "xtra");
	tb_map(&b, 3);
	tb_str(&b, "c");
	tb_map(&b, 5);
	tb_str(&b, "nd"), tb_bool(&b, true);
	tb_str(&b, "type"), tb_str(&b, "<f8");
	tb_str(&b, "kind"), tb_str(&b, "");
	tb_str(&b, "shape"), tb_arr(&b, 1), tb_uint(&b, 3);
	tb_str(&b, "data"), tb_bin(&b, c, sizeof(c));
	tb_str(&b, "t"), tb_str(&b, "wx");
	tb_str(&b, "n"), tb_int(&b, -4);
	tb_str(&b, "empty"), tb_map(&b, 0);

	if (!getenv("TMPDIR") && access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 0); /* commits fsync: tmpfs makes that free */
	m->dir = tu_temp_dir();
	cr_assert(asprintf(&m->archive, "%s/a.mpk", m->dir) > 0);
	tu_write_file(m->archive, b.p, b.len);
	tb_free(&b);

	add_node(m, -1, "", true, NULL);
	int p = add_node(m, 0, "params", true, NULL);
	add_node(m, p, "i", false, &(struct val){.k = K_INT, .i = 7});
	v = vflt(0.5);
	add_node(m, p, "f", false, &v);
	v = vstr(K_STR, "relu", 4);
	add_node(m, p, "s", false, &v);
	if (sk) {
		v = vint(3);
		add_node(m, p, "sedentary", false, &v);
		v = vstr(K_STR, "wx", 2);
		add_node(m, p, ".hidden", false, &v);
		v = vflt(1.5);
		add_node(m, p, "x~", false, &v);
	}
	v = vstr(K_BIN, "\x00\x01\x02\xff", 4);
	add_node(m, 0, "blob", false, &v);
	int wd = add_node(m, 0, "weights", true, NULL);
	v.k = K_NPY;
	npy_make(2, w, &v.b);
	add_node(m, wd, "w.npy", false, &v);
	int x = add_node(m, 0, "xtra", true, NULL);
	npy_make(0, c, &v.b);
	add_node(m, x, "c.npy", false, &v);
	v = vstr(K_STR, "wx", 2);
	add_node(m, x, "t", false, &v);
	v = vint(-4);
	add_node(m, x, "n", false, &v);
	add_node(m, 0, "empty", true, NULL);

	struct mpfs_fs_opts o = {0};
	struct mpfs_error err;
	int rc = mpfs_fs_open(&m->fs, m->archive, &o, &err);
	cr_assert_eq(rc, 0, "mpfs_fs_open: %s", err.msg);
	mlog(m, "mount a fresh archive (seed %" PRIu64 ")", m->seed);
	m->arc_dirty = true;
	check_tree(m);
	check_archive(m);
}

static void epoch_end(struct model *m, bool clean)
{
	if (clean) {
		for (int i = 0; i < MAXHD; i++) {
			int k = (int)rnd(m, MAXHD);
			if (m->h[k].live)
				do_close(m, k);
			if (m->h[i].live)
				do_close(m, i);
		}
		mpfs_fs_close(m->fs);
		mlog(m, "unmount");
		/* what is left in memory is gone; hidden entries must be too */
		for (int x = 1; x < MAXN; x++)
			if (m->n[x].live && m->n[x].t != N_REAL)
				m->n[x].live = false;
		m->final = true;
		check_archive(m);
	}
	/* after a failure in keep-going mode the fs is abandoned (leaked) */
	m->fs = NULL;
	rm_dir(m->dir);
	free(m->dir);
	free(m->archive);
	m->dir = m->archive = NULL;
}

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);
	return s && *s ? strtol(s, NULL, 0) : def;
}

static void parse_mix(struct model *m, const char *s)
{
	for (int i = 0; i < NMIX; i++)
		m->mix[i] = true;
	if (!s || !*s || !strcmp(s, "all"))
		return;
	snprintf(m->mix_str, sizeof(m->mix_str), "%s", s);
	bool only = s[0] != '-';
	if (only)
		for (int i = 0; i < NMIX; i++)
			m->mix[i] = i >= NOPS; /* features stay on unless removed */
	char *copy = strdup(s), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool off = t[0] == '-';
		if (off)
			t++;
		int i;
		for (i = 0; i < NMIX; i++)
			if (!strcmp(t, mix_names[i]))
				break;
		cr_assert(i < NMIX, "MPFS_MODEL_MIX: unknown name %s", t);
		m->mix[i] = !off;
	}
	free(copy);
	/* without release no handle is ever closed, without open/create none opened */
	m->mix[OP_RELEASE] |= m->mix[OP_OPEN] || m->mix[OP_CREATE];
}

/* Runs n operations of one seed; returns the number of failed epochs
 * (keep-going mode), or fails the test. */
static int run_seed(struct model *m, uint64_t seed, long nops)
{
	volatile int failed = 0, total = 0;
	m->seed = seed;
	m->rng = seed * 0x2545f4914f6cdd1dULL + 1;
	m->step = 0;
	for (int i = 0; i < NOPS; i++)
		total += m->mix[i] ? op_weight[i] : 0;
	cr_assert(total > 0, "MPFS_MODEL_MIX enables no operation");
	while (m->step < nops) {
		if (setjmp(m->jb)) {
			failed++;
			epoch_end(m, false);
			m->step++;
			continue;
		}
		epoch_start(m);
		for (int k = 0; k < m->epoch_len && m->step < nops; k++) {
			for (int tries = 0; tries < 50; tries++) {
				int r = (int)rnd(m, (unsigned)total), op = 0;
				while (!m->mix[op] || r >= op_weight[op]) {
					if (m->mix[op])
						r -= op_weight[op];
					op++;
				}
				if (run_op(m, (enum op)op))
					break;
			}
			check_tree(m);
			check_archive(m);
			m->step++;
		}
		epoch_end(m, true);
	}
	return failed;
}

static void run_all(const char *mix_spec)
{
	static struct model m;
	long nops = env_long("MPFS_MODEL_OPS", 100000);
	long nseeds = env_long("MPFS_MODEL_SEEDS", 4);
	long seed = env_long("MPFS_MODEL_SEED", 0);
	int failed = 0;

	memset(&m, 0, sizeof(m));
	parse_mix(&m, mix_spec);
	if (!seed && nseeds > 1)
		nops = (nops + nseeds - 1) / nseeds; /* the total, shared by the seeds */
	m.epoch_len = (int)env_long("MPFS_MODEL_EPOCH", 200);
	m.keep_going = env_long("MPFS_MODEL_KEEP_GOING", 0) != 0;
	if (m.epoch_len < 1)
		m.epoch_len = 1;
	for (long s = 0; s < (seed ? 1 : nseeds); s++)
		failed += run_seed(&m, seed ? (uint64_t)seed : (uint64_t)s + 1, nops);
	tb_free(&m.log);
	if (m.keep_going && nfailures) {
		for (int i = 0; i < nfailures; i++) {
			fprintf(stderr,
				"=== failure class %d: %s (%d epochs); shortest: seed %" PRIu64
				", operation %d (epoch from operation %d)\n%s\n",
				i + 1, failures[i].tag, failures[i].count, failures[i].seed,
				failures[i].step, failures[i].start, failures[i].log);
		}
		cr_assert_fail("%d epochs failed, in %d classes (see the log above)", failed,
			       nfailures);
	}
}

/* What the fs/ of this commit passes: no scratch files, no handles kept open
 * across renames or unlinks, one writer and no reader at a time on a file,
 * no refused content, no directory renames. */
#define BASELINE_MIX                                                                               \
	"-create,-escaped,-rename-dir,-scratch,-scratchkeys,-orphan,-multi,-reader,-empty,"        \
	"-refuse,-follow"

/* The baseline mix, or MPFS_MODEL_MIX (MPFS_MODEL_MIX=all: everything). */
Test(fs_model, baseline, .timeout = 900)
{
	const char *mix = getenv("MPFS_MODEL_MIX");
	run_all(mix && *mix ? mix : BASELINE_MIX);
}

/* Every operation and feature: fails until issue 7 is fixed. */
Test(fs_model, full_mix, .timeout = 900)
{
	const char *mix = getenv("MPFS_MODEL_MIX");
	run_all(mix && *mix ? mix : "all");
}
