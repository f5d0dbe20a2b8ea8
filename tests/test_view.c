/* fs/view.c: the archive as named files and directories, without FUSE:
 * lookup, attributes, contents and extended attributes, on every fixture
 * (checked against its .expect.json by numpy), with -o raw, and on
 * hand-built archives for names, xattrs and refusals. */
#define TU_WRAP_ALLOCS /* linked with --wrap=malloc,... (tests/meson.build) */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>

#include "fs/names.h"
#include "fs/view.h"
#include "testutil.h"

static struct mpfs_view *open_path(const char *path, bool raw)
{
	struct mpfs_view *v = NULL;
	struct mpfs_view_opts opts = {.raw = raw};
	struct mpfs_error err;
	int rc = mpfs_view_open(&v, path, &opts, &err);
	cr_assert_eq(rc, 0, "%s: %s (%d)", path, err.msg, rc);
	cr_assert_not_null(v);
	return v;
}

static struct mpfs_view *open_fixture(const char *name, bool raw)
{
	char *path = tu_fixture_path(name);
	struct mpfs_view *v = open_path(path, raw);
	free(path);
	return v;
}

/* Writes the archive in b (freed) to a temporary file and opens it; the
 * file is removed at once (the view maps it). */
static struct mpfs_view *open_tb(struct tb *b, bool raw)
{
	char *dir = tu_temp_dir(), *path;
	cr_assert(asprintf(&path, "%s/a.mpk", dir) > 0);
	tu_write_file(path, b->p, b->len);
	tb_free(b);
	struct mpfs_view *v = open_path(path, raw);
	unlink(path);
	rmdir(dir);
	free(path);
	free(dir);
	return v;
}

static uint32_t id_of(const struct mpfs_view *v, const char *path)
{
	uint32_t id = UINT32_MAX;
	int rc = mpfs_view_lookup(v, path, &id);
	cr_assert_eq(rc, 0, "lookup %s: %s", path, strerror(-rc));
	return id;
}

/* The whole content of a file, read in pieces of chunk bytes; *len set. */
static char *read_all(struct mpfs_view *v, uint32_t id, size_t chunk, size_t *len)
{
	struct tb b = {0};
	char *piece = malloc(chunk);
	uint64_t off = 0;
	long n;

	while ((n = mpfs_view_read(v, id, piece, chunk, off)) > 0) {
		cr_assert_leq((size_t)n, chunk);
		tb_put(&b, piece, (size_t)n);
		off += (uint64_t)n;
	}
	cr_assert_eq(n, 0, "read error %ld", n);
	free(piece);
	tb_byte(&b, 0);
	*len = b.len - 1;
	return (char *)b.p;
}

/* The content of the file at path, NUL-terminated. */
static char *content(struct mpfs_view *v, const char *path)
{
	size_t len;
	return read_all(v, id_of(v, path), 4096, &len);
}

static void expect_content(struct mpfs_view *v, const char *path, const char *want)
{
	char *got = content(v, path);
	cr_assert_str_eq(got, want, "%s: '%s', expected '%s'", path, got, want);
	free(got);
}

/* The xattr's value as a string, or NULL for ENODATA. */
static char *xattr(struct mpfs_view *v, uint32_t id, const char *name)
{
	long n = mpfs_view_getxattr(v, id, name, NULL, 0);
	if (n == -ENODATA)
		return NULL;
	cr_assert_geq(n, 0, "getxattr %s: %ld", name, n);
	char *buf = calloc(1, (size_t)n + 1);
	cr_assert_eq(mpfs_view_getxattr(v, id, name, buf, (size_t)n + 1), n);
	if (n > 1) {
		char *small = malloc((size_t)n - 1);
		cr_assert_eq(mpfs_view_getxattr(v, id, name, small, (size_t)n - 1), -ERANGE,
			     "getxattr %s into a short buffer", name);
		free(small);
	}
	return buf;
}

static void expect_xattr(struct mpfs_view *v, const char *path, const char *name, const char *want)
{
	char *got = xattr(v, id_of(v, path), name);
	if (!want) {
		cr_assert_null(got, "%s: %s is '%s', expected none", path, name, got);
		return;
	}
	cr_assert_not_null(got, "%s: no %s", path, name);
	cr_assert_str_eq(got, want, "%s: %s is '%s', expected '%s'", path, name, got, want);
	free(got);
}

/* listxattr as one string with ';' between names. */
static void expect_xattr_list(struct mpfs_view *v, const char *path, const char *want)
{
	uint32_t id = id_of(v, path);
	long n = mpfs_view_listxattr(v, id, NULL, 0);
	cr_assert_geq(n, 0);
	char *buf = calloc(1, (size_t)n + 1);
	cr_assert_eq(mpfs_view_listxattr(v, id, buf, (size_t)n + 1), n);
	if (n > 1)
		cr_assert_eq(mpfs_view_listxattr(v, id, buf, (size_t)n - 1), -ERANGE);
	for (long i = 0; i < n; i++)
		if (buf[i] == '\0' && i < n - 1)
			buf[i] = ';';
	cr_assert(n == 0 || buf[n - 1] == '\0', "list not NUL-terminated");
	cr_assert_str_eq(buf, want, "%s: xattrs '%s', expected '%s'", path, buf, want);
	free(buf);
}

/* ---- walking whole trees ---------------------------------------------------------- */

struct walk {
	struct mpfs_view *v;
	const struct stat *ast;	 /* the archive's */
	struct tb seen;		 /* seen.p[ino]: inode numbers met */
	uint32_t count, max_ino; /* dense: the max is the count */
	const char *dump;	 /* write the tree under this directory, or NULL */
	uint32_t files, dirs;
};

static void walk(struct walk *w, uint32_t id, const char *path)
{
	struct stat st;
	struct mpfs_view *v = w->v;

	cr_assert_eq(mpfs_view_stat(v, id, &st), 0, "stat %s", path);
	cr_assert_eq(st.st_ino, (ino_t)id + 1, "%s: ino", path);
	while (w->seen.len <= st.st_ino)
		tb_byte(&w->seen, 0);
	cr_assert_not(w->seen.p[st.st_ino], "%s: inode %ju twice", path, (uintmax_t)st.st_ino);
	w->seen.p[st.st_ino] = 1;
	w->count++;
	if (st.st_ino > w->max_ino)
		w->max_ino = (uint32_t)st.st_ino;
	cr_assert_eq(st.st_uid, getuid());
	cr_assert_eq(st.st_gid, getgid());
	cr_assert_eq(st.st_mtim.tv_sec, w->ast->st_mtim.tv_sec, "%s: mtime", path);
	cr_assert_eq(st.st_mtim.tv_nsec, w->ast->st_mtim.tv_nsec, "%s: mtime", path);
	cr_assert_eq(st.st_ctim.tv_sec, w->ast->st_ctim.tv_sec, "%s: ctime", path);
	cr_assert_eq(st.st_blksize, 4096);
	uint32_t again;
	cr_assert_eq(mpfs_view_lookup(v, *path ? path : "/", &again), 0, "lookup %s", path);
	cr_assert_eq(again, id, "lookup %s", path);

	/* Every listed xattr can be read, and only those. */
	long ln = mpfs_view_listxattr(v, id, NULL, 0);
	cr_assert_geq(ln, 0);
	char *list = calloc(1, (size_t)ln + 1);
	cr_assert_eq(mpfs_view_listxattr(v, id, list, (size_t)ln), ln);
	int listed = 0;
	for (char *p = list; p < list + ln; p += strlen(p) + 1) {
		char *val = xattr(v, id, p);
		cr_assert_not_null(val, "%s: %s listed but absent", path, p);
		free(val);
		listed++;
	}
	static const char *const all[] = {"user.mpfs.key", "user.mpfs.dtype", "user.mpfs.shape",
					  "user.mpfs.encoding", "user.mpfs.ext"};
	int present = 0;
	for (int i = 0; i < 5; i++) {
		char *val = xattr(v, id, all[i]);
		present += val != NULL;
		free(val);
	}
	cr_assert_eq(listed, present, "%s: %d xattrs listed, %d present", path, listed, present);
	cr_assert_eq(mpfs_view_getxattr(v, id, "user.other", NULL, 0), -ENODATA);
	free(list);

	if (!mpfs_view_is_dir(v, id)) {
		size_t len, len7;
		char buf[16];
		w->files++;
		cr_assert(S_ISREG(st.st_mode), "%s: mode %o", path, st.st_mode);
		cr_assert_eq(st.st_mode & 07777, 0444, "%s: mode %o", path, st.st_mode);
		cr_assert_eq(st.st_nlink, 1);
		char *data = read_all(v, id, 1 << 20, &len);
		char *data7 = read_all(v, id, 7, &len7);
		cr_assert_eq((off_t)len, st.st_size, "%s: st_size %jd, read %zu bytes", path,
			     (intmax_t)st.st_size, len);
		cr_assert_eq(len7, len, "%s: reading in pieces", path);
		cr_assert(len == 0 || memcmp(data, data7, len) == 0, "%s: pieces differ", path);
		cr_assert_eq(st.st_blocks, (blkcnt_t)((len + 511) / 512), "%s: st_blocks", path);
		cr_assert_eq(mpfs_view_read(v, id, buf, sizeof(buf), len), 0);
		cr_assert_eq(mpfs_view_read(v, id, buf, sizeof(buf), len + 1000), 0);
		cr_assert_eq(mpfs_view_read(v, id, buf, 0, 0), 0);
		if (w->dump) {
			char *p;
			cr_assert(asprintf(&p, "%s%s", w->dump, path) > 0);
			tu_write_file(p, data, len);
			free(p);
		}
		free(data);
		free(data7);
		return;
	}

	w->dirs++;
	cr_assert(S_ISDIR(st.st_mode), "%s: mode %o", path, st.st_mode);
	cr_assert_eq(st.st_mode & 07777, 0555);
	cr_assert_eq(mpfs_view_read(v, id, (char[4]){0}, 4, 0), -EISDIR, "read of dir %s", path);
	if (w->dump) {
		char *p;
		cr_assert(asprintf(&p, "%s%s", w->dump, path) > 0);
		if (*path)
			cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s: %s", p, strerror(errno));
		free(p);
	}
	uint32_t n = mpfs_view_nchildren(v, id), subdirs = 0;
	const char **names = calloc(n + 1, sizeof(*names));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t c;
		const char *name = mpfs_view_child(v, id, i, &c);
		size_t nl = strlen(name);
		names[i] = name;
		cr_assert(nl > 0 && nl <= MPFS_NAME_MAX, "%s: a name of %zu bytes", path, nl);
		cr_assert_null(strchr(name, '/'), "%s: '%s' has a /", path, name);
		cr_assert(strcmp(name, ".") && strcmp(name, ".."), "%s: '%s'", path, name);
		for (uint32_t j = 0; j < i; j++)
			cr_assert_str_neq(names[j], name, "%s: two entries named '%s'", path, name);
		subdirs += mpfs_view_is_dir(v, c);
		char *sub;
		cr_assert(asprintf(&sub, "%s/%s", path, name) > 0);
		walk(w, c, sub);
		free(sub);
	}
	free(names);
	cr_assert_eq(st.st_nlink, 2 + subdirs, "%s: nlink %ju with %u subdirectories", path,
		     (uintmax_t)st.st_nlink, subdirs);
	cr_assert_eq(st.st_size, 0);
}

static void walk_view(struct mpfs_view *v, const char *archive, const char *dump, uint32_t *files,
		      uint32_t *dirs)
{
	struct stat ast;
	struct walk w = {.v = v, .ast = &ast, .dump = dump};
	cr_assert_eq(stat(archive, &ast), 0);
	walk(&w, MPFS_ROOT_ID, "");
	cr_assert_eq(w.max_ino, w.count, "inode numbers are not 1..%u", w.count);
	tb_free(&w.seen);
	if (files)
		*files = w.files;
	if (dirs)
		*dirs = w.dirs;
}

Test(fs_view, walk_every_fixture, .timeout = 60)
{
	for (size_t i = 0; i <= TU_NGOOD; i++) {
		const char *name = i < TU_NGOOD ? tu_good_fixtures[i] : "bad_key_traversal.mpk";
		for (int raw = 0; raw < 2; raw++) {
			char *path = tu_fixture_path(name);
			struct mpfs_view *v = open_path(path, raw);
			uint32_t files, dirs;
			walk_view(v, path, NULL, &files, &dirs);
			cr_assert_gt(files, 0, "%s", name);
			mpfs_view_close(v);
			free(path);
		}
	}
}

/* Writes every fixture's tree out as files and lets Python check each path
 * of its NAME.expect.json: texts parse as JSON to the value, arrays load in
 * numpy (also memory-mapped) with the dtype, shape and sha256 of their
 * bytes, raw files have the sha256. With -o raw the .bin files hold the
 * bytes an array's sha256 names. */
Test(fs_view, trees_match_expect_json, .timeout = 60)
{
	char *dir = tu_temp_dir(), *script, *cmd;
	FILE *py;

	for (size_t i = 0; i < TU_NGOOD; i++) {
		for (int raw = 0; raw < 2; raw++) {
			char *path = tu_fixture_path(tu_good_fixtures[i]), *out;
			cr_assert(asprintf(&out, "%s/%s%s", dir, tu_good_fixtures[i],
					   raw ? ".raw" : "") > 0);
			for (char *c = out + strlen(dir) + 1; *c; c++)
				*c = *c == '/' ? '#' : *c; /* peers/NAME.mpk: peers#NAME.mpk */
			cr_assert_eq(mkdir(out, 0755), 0);
			struct mpfs_view *v = open_path(path, raw);
			walk_view(v, path, out, NULL, NULL);
			mpfs_view_close(v);
			free(out);
			free(path);
		}
	}
	cr_assert(asprintf(&script, "%s/check.py", dir) > 0);
	py = fopen(script, "w");
	cr_assert_not_null(py);
	fputs("import hashlib, json, math, os, sys\n"
	      "import numpy\n"
	      "top, fixtures = sys.argv[1], sys.argv[2]\n"
	      "bad = 0\n"
	      "def fail(*a):\n"
	      "    global bad\n"
	      "    bad += 1\n"
	      "    print('expect.json:', *a, file=sys.stderr)\n"
	      "def same(a, b):\n"
	      "    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):\n"
	      "        return math.isnan(b)\n"
	      "    if isinstance(a, list) and isinstance(b, list):\n"
	      "        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))\n"
	      "    return type(a) == type(b) and a == b\n"
	      "checked = 0\n"
	      "for name in sorted(os.listdir(top)):\n"
	      "    if name.endswith('.raw') or not name.endswith('.mpk'):\n"
	      "        continue\n"
	      "    root, rawroot = os.path.join(top, name), os.path.join(top, name + '.raw')\n"
	      "    stem = name[:-4].replace('#', '/')\n"
	      "    expect = json.load(open(os.path.join(fixtures, stem + '.expect.json')))\n"
	      "    for path, e in expect.items():\n"
	      "        p = os.path.join(root, path)\n"
	      "        checked += 1\n"
	      "        if e['kind'] == 'dir':\n"
	      "            if not os.path.isdir(p): fail(name, path, 'no directory')\n"
	      "        elif e['kind'] == 'text':\n"
	      "            t = open(p, 'rb').read()\n"
	      "            if not t.endswith(b'\\n') or t.count(b'\\n') != 1:\n"
	      "                fail(name, path, 'not one line', t)\n"
	      "            elif not same(e['value'], json.loads(t)):\n"
	      "                fail(name, path, t, 'is not', e['value'])\n"
	      "        elif e['kind'] == 'raw':\n"
	      "            h = hashlib.sha256(open(p, 'rb').read()).hexdigest()\n"
	      "            if h != e['sha256']: fail(name, path, 'sha256')\n"
	      "        elif e['kind'] == 'array':\n"
	      "            for mode in (None, 'r'):\n"
	      "                a = numpy.load(p, mmap_mode=mode, allow_pickle=False)\n"
	      "                if a.dtype.str != e['dtype'] or list(a.shape) != e['shape']:\n"
	      "                    fail(name, path, a.dtype.str, a.shape)\n"
	      "                h = "
	      "hashlib.sha256(numpy.ascontiguousarray(a).tobytes()).hexdigest()\n"
	      "                if h != e['sha256']: fail(name, path, 'sha256 of the data', mode)\n"
	      "            assert path.endswith('.npy')\n"
	      "            b = open(os.path.join(rawroot, path[:-4] + '.bin'), 'rb').read()\n"
	      "            if e['dtype'][0] == '>':  # .bin files are little-endian\n"
	      "                le = numpy.frombuffer(b, dtype='<' + e['dtype'][1:])\n"
	      "                b = le.astype(e['dtype']).tobytes()\n"
	      "            if hashlib.sha256(b).hexdigest() != e['sha256']:\n"
	      "                fail(name, path, 'sha256 of the .bin')\n"
	      "        else:\n"
	      "            fail(name, path, 'unknown kind', e['kind'])\n"
	      "if checked < 100: fail('too few paths')\n"
	      "sys.exit(1 if bad else 0)\n",
	      py);
	fclose(py);
	cr_assert(asprintf(&cmd, "/usr/bin/python3 '%s' '%s' '%s'", script, dir,
			   getenv("MPFS_FIXTURES")) > 0);
	cr_assert_eq(tu_run(cmd), 0, "the trees do not match the .expect.json files (see above)");
	free(cmd);
	free(script);
	tu_rm_rf(dir);
	free(dir);
}

/* ---- the fixtures in detail ----------------------------------------------------------- */

Test(fs_view, mlp_seed_files)
{
	struct mpfs_view *v = open_fixture("mlp_seed.mpk", false);
	struct stat st;

	expect_content(v, "/class_name", "\"MLPClassifier\"\n");
	expect_content(v, "/params/alpha", "0.0001\n");
	expect_content(v, "/params/activation", "\"relu\"\n");
	expect_content(v, "/params/epsilon", "1e-08\n");
	expect_content(v, "/params/hidden_layer_sizes", "[16, 8]\n");
	expect_content(v, "/label_binarizer_classes_", "[0, 1, 2]\n");
	cr_assert_eq(mpfs_view_stat(v, id_of(v, "/weights/coefs_/0.npy"), &st), 0);
	cr_assert_eq(st.st_size, 128 + 20 * 16 * 8);
	expect_xattr(v, "/weights/coefs_/0.npy", "user.mpfs.dtype", "<f8");
	expect_xattr(v, "/weights/coefs_/0.npy", "user.mpfs.shape", "20,16");
	expect_xattr(v, "/weights/coefs_/0.npy", "user.mpfs.encoding", "nested");
	expect_xattr(v, "/weights/coefs_/0.npy", "user.mpfs.key", NULL);
	expect_xattr(v, "/weights/coefs_/0.npy", "user.mpfs.ext", NULL);
	expect_xattr_list(v, "/weights/coefs_/0.npy",
			  "user.mpfs.dtype;user.mpfs.shape;user.mpfs.encoding");
	expect_xattr(v, "/xtra/classes_.npy", "user.mpfs.key", "\"classes_\"");
	expect_xattr_list(v, "/xtra/classes_.npy",
			  "user.mpfs.key;user.mpfs.dtype;user.mpfs.shape;user.mpfs.encoding");
	expect_xattr(v, "/params/alpha", "user.mpfs.key", "\"alpha\"");
	expect_xattr_list(v, "/params/alpha", "user.mpfs.key");
	expect_xattr_list(v, "/weights", "user.mpfs.key");
	expect_xattr_list(v, "/", "");

	/* The .npy header names what the xattrs say, and the data follows. */
	char *npy = content(v, "/xtra/classes_.npy");
	cr_assert(!memcmp(npy, "\x93NUMPY\x01\x00", 8));
	cr_assert(strstr(npy + 10, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }"));
	int64_t classes[3];
	memcpy(classes, npy + 128, sizeof(classes));
	cr_assert(classes[0] == 0 && classes[1] == 1 && classes[2] == 2);
	free(npy);
	mpfs_view_close(v);
}

Test(fs_view, list_and_csr_entry_names)
{
	struct mpfs_view *v = open_fixture("tfidf_seed.mpk", false);
	uint32_t id = id_of(v, "/transformer/xtra/_idf_diag"), c;
	static const char *const names[] = {"class_name",  "shape",	 "data.npy",
					    "indices.npy", "indptr.npy", "dtype"};

	cr_assert(mpfs_view_is_dir(v, id));
	cr_assert_eq(mpfs_view_nchildren(v, id), 6);
	for (uint32_t i = 0; i < 6; i++)
		cr_assert_str_eq(mpfs_view_child(v, id, i, &c), names[i], "entry %u", i);
	expect_xattr_list(v, "/transformer/xtra/_idf_diag/data.npy",
			  "user.mpfs.dtype;user.mpfs.shape;user.mpfs.encoding");
	expect_xattr(v, "/transformer/xtra/_idf_diag/indptr.npy", "user.mpfs.shape", "381");
	expect_content(v, "/transformer/xtra/_idf_diag/shape", "[380, 380]\n");
	mpfs_view_close(v);

	v = open_fixture("mlp_compact.mpk", false);
	id = id_of(v, "/weights/intercepts_");
	cr_assert_eq(mpfs_view_nchildren(v, id), 3);
	for (uint32_t i = 0; i < 3; i++) {
		char want[16];
		snprintf(want, sizeof(want), "%u.npy", i);
		cr_assert_str_eq(mpfs_view_child(v, id, i, &c), want);
	}
	expect_xattr(v, "/weights/intercepts_/2.npy", "user.mpfs.encoding", "compact");
	mpfs_view_close(v);
}

Test(fs_view, edge_values_files)
{
	struct mpfs_view *v = open_fixture("edge_values.mpk", false);
	struct stat st;

	expect_content(v, "/params/f32", "0.10000000149011612\n");
	expect_content(v, "/params/nan", "NaN\n");
	expect_content(v, "/params/inf", "Infinity\n");
	expect_content(v, "/params/u64max", "18446744073709551615\n");
	expect_content(v, "/params/i64min", "-9223372036854775808\n");
	expect_content(v, "/params/none", "null\n");
	expect_content(v, "/params/yes", "true\n");
	expect_content(v, "/params/text", "\"h\xc3\xa9llo \\\"q\\\"\\n\"\n");
	expect_content(v, "/params/lst", "[1, \"two\", 3.5, null]\n");
	expect_content(v, "/params/tiny", "5e-324\n");
	/* a bin: the bytes, no newline */
	size_t len;
	char *blob = read_all(v, id_of(v, "/blob"), 4096, &len);
	cr_assert_eq(len, 6);
	cr_assert(!memcmp(blob, "\0\1\2raw", 6));
	free(blob);
	cr_assert_eq(mpfs_view_stat(v, id_of(v, "/weights/empty.npy"), &st), 0);
	cr_assert_eq(st.st_size, 128);
	cr_assert_eq(mpfs_view_stat(v, id_of(v, "/weights/scalar0d.npy"), &st), 0);
	cr_assert_eq(st.st_size, 128 + 8);
	expect_xattr(v, "/weights/scalar0d.npy", "user.mpfs.shape", "");
	expect_xattr(v, "/weights/u8.npy", "user.mpfs.dtype", "|u1");
	expect_xattr(v, "/weights/i32.npy", "user.mpfs.shape", "2,3");
	expect_xattr(v, "/weights/i32.npy", "user.mpfs.encoding", "compact");
	mpfs_view_close(v);
}

/* Keys that would leave the mount are shown under escaped names that give
 * the key back, and no path through them leads anywhere else. */
Test(fs_view, escaped_names_in_bad_key_traversal)
{
	static const struct {
		const char *name, *key, *json;
	} entries[] = {
		{"%%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "../../etc/passwd", "\"../../etc/passwd\""},
		{"%a%2Fb", "a/b", "\"a/b\""},
		{"%%2E%2E", "..", "\"..\""},
		{"%%2E", ".", "\".\""},
		{"%", "", "\"\""},
	};
	struct mpfs_view *v = open_fixture("bad_key_traversal.mpk", false);
	uint32_t params = id_of(v, "/params"), c, id;

	cr_assert_eq(mpfs_view_nchildren(v, params), 5);
	for (uint32_t i = 0; i < 5; i++) {
		const char *name = mpfs_view_child(v, params, i, &c);
		char path[300], want[8];
		uint8_t key[300];
		cr_assert_str_eq(name, entries[i].name, "entry %u (archive order)", i);
		snprintf(path, sizeof(path), "/params/%s", name);
		cr_assert_eq(id_of(v, path), c);
		snprintf(want, sizeof(want), "%u\n", i + 1);
		expect_content(v, path, want);
		expect_xattr(v, path, "user.mpfs.key", entries[i].json);
		long n = mpfs_name_unescape(name + 1, strlen(name) - 1, key);
		cr_assert_eq(n, (long)strlen(entries[i].key));
		cr_assert(!memcmp(key, entries[i].key, (size_t)n));
	}
	static const char *const nowhere[] = {"/params/../../etc/passwd",
					      "/params/..",
					      "/params/.",
					      "/params/a/b",
					      "/params/a",
					      "/params/etc/passwd",
					      "/etc/passwd",
					      "/params/"
					      "%2E%2E"};
	for (size_t i = 0; i < sizeof(nowhere) / sizeof(nowhere[0]); i++)
		cr_assert_eq(mpfs_view_lookup(v, nowhere[i], &id), -ENOENT, "%s resolved",
			     nowhere[i]);
	mpfs_view_close(v);
}

/* -o raw: NAME.bin holds the array's bytes, no header. */
Test(fs_view, raw_option)
{
	static const char *const fixtures[] = {"mlp_seed.mpk", "mlp_compact.mpk"};
	for (int f = 0; f < 2; f++) {
		struct mpfs_view *npy = open_fixture(fixtures[f], false);
		struct mpfs_view *raw = open_fixture(fixtures[f], true);
		uint32_t id;
		size_t ln, lr;
		struct stat st;

		cr_assert_eq(mpfs_view_lookup(raw, "/weights/coefs_/0.npy", &id), -ENOENT);
		cr_assert_eq(mpfs_view_lookup(npy, "/weights/coefs_/0.bin", &id), -ENOENT);
		char *a = read_all(npy, id_of(npy, "/weights/coefs_/0.npy"), 4096, &ln);
		char *b = read_all(raw, id_of(raw, "/weights/coefs_/0.bin"), 4096, &lr);
		cr_assert_eq(lr, 20 * 16 * 8);
		cr_assert_eq(ln, 128 + lr);
		cr_assert(!memcmp(a + 128, b, lr), "%s: .bin differs from the .npy data",
			  fixtures[f]);
		cr_assert_eq(mpfs_view_stat(raw, id_of(raw, "/weights/coefs_/0.bin"), &st), 0);
		cr_assert_eq(st.st_size, (off_t)lr);
		expect_xattr(raw, "/weights/coefs_/0.bin", "user.mpfs.shape", "20,16");
		expect_xattr(raw, "/weights/coefs_/0.bin", "user.mpfs.dtype", "<f8");
		expect_xattr(raw, "/xtra/classes_.bin", "user.mpfs.key", "\"classes_\"");
		/* text files are the same either way */
		expect_content(raw, "/params/alpha", "0.0001\n");
		free(a);
		free(b);
		mpfs_view_close(npy);
		mpfs_view_close(raw);
	}
}

Test(fs_view, lookup)
{
	struct mpfs_view *v = open_fixture("logreg_seed.mpk", false);
	uint32_t id, alpha;
	char longname[300];

	cr_assert_eq(mpfs_view_lookup(v, "/", &id), 0);
	cr_assert_eq(id, MPFS_ROOT_ID);
	alpha = id_of(v, "/params/C");
	cr_assert_eq(mpfs_view_lookup(v, "//params///C", &id), 0);
	cr_assert_eq(id, alpha);
	cr_assert_eq(mpfs_view_lookup(v, "/params/C/", &id), 0);
	cr_assert_eq(id, alpha);
	cr_assert_eq(mpfs_view_lookup(v, "/params/c", &id), -ENOENT, "names are case-sensitive");
	cr_assert_eq(mpfs_view_lookup(v, "/params/C0", &id), -ENOENT);
	cr_assert_eq(mpfs_view_lookup(v, "/nope", &id), -ENOENT);
	cr_assert_eq(mpfs_view_lookup(v, "/class_name/x", &id), -ENOTDIR);
	cr_assert_eq(mpfs_view_lookup(v, "/weights/coef_.npy/x", &id), -ENOTDIR);
	cr_assert_eq(mpfs_view_lookup(v, "/weights/coef_", &id), -ENOENT, "arrays are NAME.npy");
	memset(longname, 'x', sizeof(longname));
	longname[0] = '/';
	longname[257] = '\0';
	cr_assert_eq(mpfs_view_lookup(v, longname, &id), -ENAMETOOLONG);
	longname[256] = '\0';
	cr_assert_eq(mpfs_view_lookup(v, longname, &id), -ENOENT);
	/* every child of a directory is found by its name */
	uint32_t params = id_of(v, "/params"), c;
	for (uint32_t i = 0; i < mpfs_view_nchildren(v, params); i++) {
		char path[300];
		snprintf(path, sizeof(path), "/params/%s", mpfs_view_child(v, params, i, &c));
		cr_assert_eq(id_of(v, path), c);
	}
	mpfs_view_close(v);
}

Test(fs_view, open_errors)
{
	struct mpfs_view *v = NULL;
	struct mpfs_view_opts opts = {0};
	struct mpfs_error err;
	char *dir = tu_temp_dir(), *path;

	cr_assert_eq(mpfs_view_open(&v, "/nonexistent/x.mpk", &opts, &err), -ENOENT);
	cr_assert(err.msg[0]);
	cr_assert_eq(mpfs_view_open(&v, dir, &opts, &err), -EINVAL, "a directory");
	cr_assert(err.msg[0]);
	cr_assert(asprintf(&path, "%s/empty.mpk", dir) > 0);
	tu_write_file(path, "", 0);
	cr_assert_eq(mpfs_view_open(&v, path, &opts, &err), -EINVAL, "an empty file");
	cr_assert_eq(err.code, MPFS_E_EMPTY);
	free(path);
	tu_rm_rf(dir);
	free(dir);

	static const char *const bad[] = {"bad_truncated.mpk",	       "bad_not_a_map.mpk",
					  "bad_compact_bad_dtype.mpk", "bad_deep_nesting.mpk",
					  "bad_huge_array_len.mpk",    "bad_trailing_bytes.mpk"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *p = tu_fixture_path(bad[i]);
		memset(&err, 0, sizeof(err));
		cr_assert_eq(mpfs_view_open(&v, p, &opts, &err), -EINVAL, "%s", bad[i]);
		cr_assert_neq(err.code, MPFS_OK, "%s", bad[i]);
		cr_assert(err.msg[0], "%s: no reason", bad[i]);
		free(p);
	}
}

/* ---- hand-built archives -------------------------------------------------------------- */

Test(fs_view, ext_values)
{
	struct tb b = {0};

	tb_map(&b, 3);
	tb_str(&b, "e");
	tb_ext(&b, 5, "xyz", 3);
	tb_str(&b, "ts");
	tb_hex(&b, "d6 ff 5a 4a f6 a5");
	tb_str(&b, "big");
	tb_hex(&b, "c7 03 80 61 62 63");
	struct mpfs_view *v = open_tb(&b, false);
	expect_content(v, "/e", "xyz");
	expect_xattr(v, "/e", "user.mpfs.ext", "5");
	expect_xattr_list(v, "/e", "user.mpfs.key;user.mpfs.ext");
	expect_xattr(v, "/ts", "user.mpfs.ext", "-1");
	expect_content(v, "/ts", "\x5a\x4a\xf6\xa5");
	expect_xattr(v, "/big", "user.mpfs.ext", "-128");
	mpfs_view_close(v);
}

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* The examples of docs/tree.md §3. */
Test(fs_view, names_of_the_reference)
{
	struct tb b = {0};
	char *L = repeat('L', 300), *k = repeat('k', 252);

	tb_map(&b, 4);
	tb_str(&b, "int_then_str");
	tb_map(&b, 3);
	tb_uint(&b, 0);
	tb_str(&b, "zero");
	tb_uint(&b, 1);
	tb_str(&b, "int");
	tb_str(&b, "1");
	tb_str(&b, "str");
	tb_str(&b, "str_then_int");
	tb_map(&b, 2);
	tb_str(&b, "1");
	tb_str(&b, "str");
	tb_uint(&b, 1);
	tb_str(&b, "int");
	tb_str(&b, "long");
	tb_map(&b, 13);
	for (int i = 0; i < 12; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i);
		tb_str(&b, key);
		tb_nil(&b);
	}
	tb_str(&b, L);
	tb_str(&b, "long one");
	tb_str(&b, "weights");
	tb_map(&b, 3);
	tb_str(&b, k);
	tb_hex(&b, "91 01");
	tb_str(&b, "x");
	tb_hex(&b, "92 01 02");
	tb_str(&b, "x.npy");
	tb_str(&b, "text");
	struct mpfs_view *v = open_tb(&b, false);

	expect_content(v, "/int_then_str/0", "\"zero\"\n");
	expect_content(v, "/int_then_str/1", "\"int\"\n");
	expect_content(v, "/int_then_str/%1", "\"str\"\n");
	expect_xattr(v, "/int_then_str/1", "user.mpfs.key", "1");
	expect_xattr(v, "/int_then_str/%1", "user.mpfs.key", "\"1\"");
	expect_content(v, "/str_then_int/1", "\"str\"\n");
	expect_content(v, "/str_then_int/%#1", "\"int\"\n");

	char longname[300];
	snprintf(longname, sizeof(longname), "/long/%%~12~%.250s", L);
	cr_assert_eq(strlen(longname) - 6, 255);
	expect_content(v, longname, "\"long one\"\n");
	char *json;
	cr_assert(asprintf(&json, "\"%s\"", L) > 0);
	expect_xattr(v, longname, "user.mpfs.key", json);
	free(json);

	snprintf(longname, sizeof(longname), "/weights/%%~0~%.247s.npy", k);
	cr_assert_eq(strlen(longname) - 9, 255);
	expect_xattr(v, longname, "user.mpfs.shape", "1");
	expect_xattr(v, "/weights/x.npy", "user.mpfs.shape", "2");
	expect_content(v, "/weights/%x%2Enpy", "\"text\"\n");
	free(L);
	free(k);
	mpfs_view_close(v);
}

Test(fs_view, non_string_keys)
{
	struct tb b = {0};

	tb_map(&b, 7);
	tb_nil(&b);
	tb_uint(&b, 1);
	tb_bool(&b, true);
	tb_uint(&b, 2);
	tb_int(&b, -5);
	tb_uint(&b, 3);
	tb_f64(&b, 0.5);
	tb_uint(&b, 4);
	tb_hex(&b, "a1 ff"); /* a str key that is not UTF-8 */
	tb_uint(&b, 5);
	tb_hex(&b, "92 01 02"); /* a list as a key */
	tb_uint(&b, 6);
	tb_f64(&b, 1e300);
	tb_uint(&b, 7);
	struct mpfs_view *v = open_tb(&b, false);
	expect_content(v, "/null", "1\n");
	expect_xattr(v, "/null", "user.mpfs.key", "null");
	expect_content(v, "/true", "2\n");
	expect_content(v, "/-5", "3\n");
	expect_xattr(v, "/-5", "user.mpfs.key", "-5");
	expect_content(v, "/0.5", "4\n");
	expect_content(v, "/\xff", "5\n");
	expect_xattr(v, "/\xff", "user.mpfs.key", "\"\\u00ff\"");
	expect_content(v, "/[1, 2]", "6\n");
	expect_content(v, "/1e+300", "7\n");
	mpfs_view_close(v);
}

/* A key given three times (or more) still gets one name per entry, each
 * reachable (0.1.0 showed two under the same escaped name). */
Test(fs_view, repeated_keys_get_distinct_names)
{
	for (int copies = 2; copies < 6; copies++) {
		struct tb b = {0};
		tb_map(&b, (uint32_t)copies + 1);
		for (int i = 0; i < copies; i++) {
			tb_str(&b, "a");
			tb_uint(&b, (uint64_t)i);
		}
		tb_str(&b, "%a"); /* the escaped form of "a", as a key of its own */
		tb_uint(&b, 99);
		struct mpfs_view *v = open_tb(&b, false);
		uint32_t n = mpfs_view_nchildren(v, MPFS_ROOT_ID), c;
		cr_assert_eq(n, (uint32_t)copies + 1);
		cr_assert_str_eq(mpfs_view_child(v, MPFS_ROOT_ID, 0, &c), "a",
				 "the first keeps it");
		for (uint32_t i = 0; i < n; i++) {
			const char *name = mpfs_view_child(v, MPFS_ROOT_ID, i, &c);
			char path[300], want[8];
			for (uint32_t j = 0; j < i; j++) {
				uint32_t d;
				cr_assert_str_neq(mpfs_view_child(v, MPFS_ROOT_ID, j, &d), name,
						  "%d copies: entries %u and %u both '%s'", copies,
						  j, i, name);
			}
			snprintf(path, sizeof(path), "/%s", name);
			snprintf(want, sizeof(want), "%u\n", i < (uint32_t)copies ? i : 99);
			cr_assert_eq(id_of(v, path), c, "%s", path);
			expect_content(v, path, want);
		}
		mpfs_view_close(v);
	}
}

/* A suffix must not make two entries one: array "x" (x.npy) and key "x.npy". */
Test(fs_view, suffix_clashes)
{
	struct tb b = {0};

	tb_map(&b, 1);
	tb_str(&b, "weights");
	tb_map(&b, 4);
	tb_str(&b, "x.npy");
	tb_str(&b, "text first");
	tb_str(&b, "x");
	tb_hex(&b, "91 01");
	tb_str(&b, "y");
	tb_hex(&b, "91 02");
	tb_str(&b, "y.npy");
	tb_str(&b, "text second");
	struct mpfs_view *v = open_tb(&b, false);
	expect_content(v, "/weights/x.npy", "\"text first\"\n");
	expect_xattr(v, "/weights/%x.npy", "user.mpfs.shape", "1");
	expect_xattr(v, "/weights/y.npy", "user.mpfs.shape", "1");
	expect_content(v, "/weights/%y%2Enpy", "\"text second\"\n");
	mpfs_view_close(v);

	/* with -o raw the suffix is .bin, and nothing clashes here */
	tb_map(&b, 1);
	tb_str(&b, "weights");
	tb_map(&b, 2);
	tb_str(&b, "x");
	tb_hex(&b, "91 01");
	tb_str(&b, "x.npy");
	tb_str(&b, "text");
	v = open_tb(&b, true);
	expect_xattr(v, "/weights/x.bin", "user.mpfs.shape", "1");
	expect_content(v, "/weights/x.npy", "\"text\"\n");
	mpfs_view_close(v);
}

Test(fs_view, lists_of_maps_and_bins)
{
	struct tb b = {0};

	tb_map(&b, 2);
	tb_str(&b, "items");
	tb_hex(&b, "93 81 a1 61 01 c4 02 00 ff 07");
	tb_str(&b, "weights");
	tb_map(&b, 1);
	tb_str(&b, "c");
	tb_hex(&b, "92 91 92 01 02 92 91 03 91 04");
	struct mpfs_view *v = open_tb(&b, false);
	struct stat st;

	cr_assert(mpfs_view_is_dir(v, id_of(v, "/items")));
	expect_content(v, "/items/0/a", "1\n");
	size_t len;
	char *bytes = read_all(v, id_of(v, "/items/1"), 64, &len);
	cr_assert_eq(len, 2);
	cr_assert(!memcmp(bytes, "\x00\xff", 2));
	free(bytes);
	expect_content(v, "/items/2", "7\n");
	expect_xattr_list(v, "/items/2", "");
	cr_assert_eq(mpfs_view_stat(v, id_of(v, "/items"), &st), 0);
	cr_assert_eq(st.st_nlink, 3, "one subdirectory");
	expect_xattr(v, "/weights/c/0.npy", "user.mpfs.shape", "1,2");
	expect_xattr(v, "/weights/c/1.npy", "user.mpfs.shape", "2,1");
	mpfs_view_close(v);
}

/* Each allocation of mpfs_view_open fails in turn (those inside libc, as
 * strdup's, excepted): it then returns -ENOMEM with nothing left behind
 * (LeakSanitizer checks), until every allocation succeeds; then reads whose
 * content must be made fail with -ENOMEM, and work once memory is back.
 *
 * Blocked by the mpfs_model_init defect (see test_model.c:
 * out_of_memory_at_every_allocation), which mpfs_view_open runs into. Then
 * base_name() (view.c) returns NULL on json.oom without freeing the strbuf:
 * a leak, seen with the hand-built archive (a key whose JSON needs a second
 * strbuf allocation). */
Test(fs_view, out_of_memory_at_every_allocation, .timeout = 60)
{
	static const char *const names[] = {"edge_values.mpk", "tfidf_seed.mpk", "mlp_seed.mpk",
					    NULL};
	char *dir = tu_temp_dir();
	for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
		char *path;
		struct mpfs_view_opts opts = {0};
		struct mpfs_view *v = NULL;

		if (names[f]) {
			path = tu_fixture_path(names[f]);
		} else {
			/* {["a key that renders ... JSON text"]: 1, "class_name": "x"} */
			struct tb b = {0};
			tb_map(&b, 2);
			tb_arr(&b, 1);
			tb_str(&b,
			       "a key whose JSON text takes more than sixty-four bytes, surely");
			tb_uint(&b, 1);
			tb_str(&b, "class_name");
			tb_str(&b, "x");
			cr_assert(asprintf(&path, "%s/a.mpk", dir) > 0);
			tu_write_file(path, b.p, b.len);
			tb_free(&b);
		}
		for (size_t k = 1;; k++) {
			struct mpfs_error err;
			int rc;

			cr_assert_lt(k, 100000, "%s: never succeeds", path);
			tu_track_allocs();
			tu_allocs.fail_at = k;
			rc = mpfs_view_open(&v, path, &opts, &err);
			tu_allocs.on = false;
			if (rc == 0) {
				cr_assert_lt(tu_allocs.calls, k, "%s: allocation %zu failed unseen",
					     path, k);
				break;
			}
			cr_assert_eq(rc, -ENOMEM, "%s, allocation %zu failing: %d (%s)", path, k,
				     rc, err.msg);
		}
		/* A text file whose content cannot be made. */
		uint32_t id = id_of(v, f == 0 ? "/params/lst" : "/class_name");
		char buf[64];
		struct stat st;
		tu_track_allocs();
		tu_allocs.fail_at = 1;
		long n = mpfs_view_read(v, id, buf, sizeof(buf), 0);
		tu_allocs.on = false;
		cr_assert(n == -ENOMEM || tu_allocs.calls == 0, "%s: read gave %ld", path, n);
		cr_assert_eq(mpfs_view_stat(v, id, &st), 0);
		cr_assert_gt(mpfs_view_read(v, id, buf, sizeof(buf), 0), 0);
		mpfs_view_close(v);
		free(path);
	}
	tu_rm_rf(dir);
	free(dir);
}

static uint64_t rng_state = 0xda942042e4dd58b5ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* Appends one awkward key. */
static void random_key(struct tb *b)
{
	static char big[700];
	if (!big[0]) {
		memset(big, 'L', sizeof(big) - 1);
		for (size_t i = 0; i < sizeof(big) - 1; i += 7)
			big[i] = '/';
	}
	switch (rng() % 24) {
	case 0: tb_str(b, "a"); break;
	case 1: tb_str(b, "a.npy"); break;
	case 2: tb_str(b, "a.bin"); break;
	case 3: tb_str(b, "%a"); break;
	case 4: tb_str(b, "%"); break;
	case 5: tb_str(b, ""); break;
	case 6: tb_str(b, "."); break;
	case 7: tb_str(b, ".."); break;
	case 8: tb_str(b, "x/y"); break;
	case 9: tb_str(b, "1"); break;
	case 10: tb_uint(b, 1); break;
	case 11: tb_hex(b, "d0 01"); break; /* 1 again, another width */
	case 12: tb_int(b, -1); break;
	case 13: tb_nil(b); break;
	case 14: tb_bool(b, true); break;
	case 15: tb_f64(b, 0.5); break;
	case 16: tb_strn(b, big, 250 + rng() % 10); break;
	case 17: tb_strn(b, big, 300 + rng() % 400); break;
	case 18: tb_bin(b, "a", 1); break;
	case 19: tb_hex(b, "a1 ff"); break;
	case 20: tb_hex(b, "92 01 a1 2f"); break; /* [1, "/"] */
	case 21: tb_hex(b, "81 a1 61 80"); break; /* {"a": {}} */
	case 22: tb_str(b, "%#1"); break;
	default: tb_str(b, "%~0~"); break;
	}
}

/* Directories full of awkward, repeated and clashing keys: every entry gets
 * a distinct, safe name that looks it up, with or without -o raw. */
Test(fs_view, random_keys_get_unique_reachable_names, .timeout = 60)
{
	for (int round = 0; round < 300; round++) {
		struct tb b = {0};
		uint32_t n = 1 + (uint32_t)(rng() % 40);
		bool raw = rng() & 1;

		tb_map(&b, 2);
		tb_str(&b, "weights"); /* lists in here are arrays: NAME.npy */
		tb_map(&b, n);
		for (uint32_t i = 0; i < n; i++) {
			random_key(&b);
			switch (rng() % 4) {
			case 0: tb_hex(&b, "91 01"); break;
			case 1: tb_hex(&b, "80"); break;
			case 2: tb_hex(&b, "c4 01 00"); break;
			default: tb_uint(&b, i); break;
			}
		}
		tb_str(&b, "params");
		tb_map(&b, n);
		for (uint32_t i = 0; i < n; i++) {
			random_key(&b);
			tb_uint(&b, i);
		}
		char *dir = tu_temp_dir(), *path;
		cr_assert(asprintf(&path, "%s/a.mpk", dir) > 0);
		tu_write_file(path, b.p, b.len);
		tb_free(&b);
		struct mpfs_view *v = open_path(path, raw);
		walk_view(v, path, NULL, NULL, NULL);
		/* the values of params are 0..n-1 in archive order */
		uint32_t params = id_of(v, "/params"), c;
		for (uint32_t i = 0; i < n; i++) {
			char p[300], want[16];
			snprintf(p, sizeof(p), "/params/%s", mpfs_view_child(v, params, i, &c));
			snprintf(want, sizeof(want), "%u\n", i);
			expect_content(v, p, want);
		}
		mpfs_view_close(v);
		unlink(path);
		rmdir(dir);
		free(path);
		free(dir);
	}
}

/* ---- threads ------------------------------------------------------------------------ */

struct reader {
	struct mpfs_view *v;
	uint32_t nnodes;
	uint64_t sum;
};

static void *read_everything(void *arg)
{
	struct reader *r = arg;
	char buf[4096];
	for (uint32_t id = r->nnodes; id-- > 0;) {
		struct stat st;
		if (mpfs_view_stat(r->v, id, &st) || mpfs_view_is_dir(r->v, id))
			continue;
		for (uint64_t off = 0;; off += sizeof(buf)) {
			long n = mpfs_view_read(r->v, id, buf, sizeof(buf), off);
			if (n <= 0)
				break;
			for (long i = 0; i < n; i++)
				r->sum = r->sum * 31 + (uint8_t)buf[i];
		}
		r->sum += (uint64_t)st.st_size;
	}
	return NULL;
}

static uint32_t count_entries(const struct mpfs_view *v, uint32_t id)
{
	uint32_t n = 1, c;
	if (!mpfs_view_is_dir(v, id))
		return 1;
	for (uint32_t i = 0; i < mpfs_view_nchildren(v, id); i++) {
		mpfs_view_child(v, id, i, &c);
		n += count_entries(v, c);
	}
	return n;
}

/* FUSE reads from many threads: content made on first use must come out
 * the same for all. */
Test(fs_view, concurrent_readers_agree)
{
	enum { T = 8 };
	pthread_t th[T];
	struct reader r[T];
	struct mpfs_view *v = open_fixture("tfidf_seed.mpk", false);
	uint32_t nnodes = 0;
	struct stat st;

	nnodes = count_entries(v, MPFS_ROOT_ID);
	cr_assert_gt(nnodes, 400);
	mpfs_view_close(v);

	v = open_fixture("tfidf_seed.mpk", false);
	/* ids are 0..nnodes-1 (inode numbers 1..nnodes) */
	cr_assert_eq(mpfs_view_stat(v, nnodes - 1, &st), 0);
	for (int i = 0; i < T; i++) {
		r[i] = (struct reader){.v = v, .nnodes = nnodes};
		cr_assert_eq(pthread_create(&th[i], NULL, read_everything, &r[i]), 0);
	}
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	for (int i = 1; i < T; i++)
		cr_assert_eq(r[i].sum, r[0].sum, "thread %d read something else", i);
	mpfs_view_close(v);
}

/* ---- scale: memory and work per entry ------------------------------------- */

/* Writes the archive in b (freed) to a temporary file whose path is kept
 * in *path (remove it and its directory with unlink_kept). */
static struct mpfs_view *open_kept(struct tb *b, char **path)
{
	char *dir = tu_temp_dir();
	cr_assert(asprintf(path, "%s/a.mpk", dir) > 0);
	free(dir);
	tu_write_file(*path, b->p, b->len);
	tb_free(b);
	return open_path(*path, false);
}

static void unlink_kept(char *path)
{
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
	free(path);
}

/* Issue 7, item 10: a list of N empty maps cost about 250 bytes per entry
 * before anything was listed (every directory named at open). Opening,
 * looking up and listing the list must now stay under 100 bytes per entry,
 * counting every byte allocated (freed or not). */
Test(fs_view, memory_per_entry_of_a_list_of_empty_maps, .timeout = 60)
{
	enum { N = 1000000 };
	struct tb b = {0};
	struct mpfs_view *v;
	struct mpfs_view_opts opts = {0};
	struct mpfs_error err;
	uint32_t id, c;
	char *path, *dir = tu_temp_dir();

	tb_map(&b, 2);
	tb_str(&b, "class_name");
	tb_str(&b, "Big");
	tb_str(&b, "l");
	tb_arr(&b, N);
	for (uint32_t i = 0; i < N; i++)
		tb_map(&b, 0);
	cr_assert(asprintf(&path, "%s/a.mpk", dir) > 0);
	tu_write_file(path, b.p, b.len);
	tb_free(&b);

	tu_track_allocs();
	cr_assert_eq(mpfs_view_open(&v, path, &opts, &err), 0, "%s", err.msg);
	size_t at_open = tu_allocs.total;
	cr_assert_eq(mpfs_view_lookup(v, "/l", &id), 0);
	cr_assert_eq(mpfs_view_nchildren(v, id), N);
	cr_assert_str_eq(mpfs_view_child(v, id, N - 1, &c), "999999");
	cr_assert_eq(mpfs_view_lookup(v, "/l/123456", &c), 0);
	cr_assert(mpfs_view_is_dir(v, c));
	struct stat st;
	cr_assert_eq(mpfs_view_stat(v, c, &st), 0);
	cr_assert_eq(st.st_nlink, 2);
	tu_allocs.on = false;
	cr_log_info("%zu bytes per entry to open, %zu to open and list", at_open / N,
		    tu_allocs.total / N);
	cr_assert_lt(at_open / N, 100, "%zu bytes per entry to open", at_open / N);
	cr_assert_lt(tu_allocs.total / N, 100, "%zu bytes per entry to open and list",
		     tu_allocs.total / N);
	mpfs_view_close(v);
	unlink(path);
	free(path);
	tu_rm_rf(dir);
	free(dir);
}

/* Names are made when a directory is first looked up or listed, from many
 * threads at once: all must see the same names, each made once. */
struct namer {
	struct mpfs_view *v;
	uint64_t sum;
};

static void *name_everything(void *arg)
{
	struct namer *r = arg;
	char path[64];
	uint32_t id, c;

	for (uint32_t i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "/m/k%u/x%u", i, i % 7);
		cr_assert_eq(mpfs_view_lookup(r->v, path, &id), 0, "%s", path);
		r->sum = r->sum * 31 + id;
		snprintf(path, sizeof(path), "/m/k%u", (i * 37) % 200);
		cr_assert_eq(mpfs_view_lookup(r->v, path, &id), 0, "%s", path);
		for (uint32_t j = 0; j < mpfs_view_nchildren(r->v, id); j++)
			for (const char *s = mpfs_view_child(r->v, id, j, &c); *s; s++)
				r->sum = r->sum * 31 + (uint8_t)*s;
	}
	return NULL;
}

Test(fs_view, concurrent_lazy_naming)
{
	enum { T = 8 };
	pthread_t th[T];
	struct namer r[T];
	char key[16];
	struct tb b = {0};

	tb_map(&b, 1);
	tb_str(&b, "m");
	tb_map(&b, 200);
	for (uint32_t i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k%u", i);
		tb_str(&b, key);
		tb_map(&b, 7);
		for (uint32_t j = 0; j < 7; j++) {
			snprintf(key, sizeof(key), "x%u", j);
			tb_str(&b, key);
			tb_uint(&b, j);
		}
	}
	struct mpfs_view *v = open_tb(&b, false);
	for (int i = 0; i < T; i++) {
		r[i] = (struct namer){.v = v};
		cr_assert_eq(pthread_create(&th[i], NULL, name_everything, &r[i]), 0);
	}
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	for (int i = 1; i < T; i++)
		cr_assert_eq(r[i].sum, r[0].sum, "thread %d saw other names", i);
	mpfs_view_close(v);
}

/* Naming a directory can run out of memory after the view is open: the
 * lookup says so, and the next one names it. */
Test(fs_view, lazy_naming_out_of_memory)
{
	struct mpfs_view *v = open_fixture("mlp_seed.mpk", false);
	uint32_t id;
	int rc;

	for (size_t k = 1;; k++) {
		cr_assert_lt(k, 1000, "never succeeds");
		tu_track_allocs();
		tu_allocs.fail_at = k;
		rc = mpfs_view_lookup(v, "/params/alpha", &id);
		tu_allocs.on = false;
		if (rc == 0)
			break;
		cr_assert_eq(rc, -ENOMEM, "allocation %zu failing: %d", k, rc);
	}
	char *text = content(v, "/params/alpha");
	cr_assert_str_eq(text, "0.0001\n");
	free(text);
	mpfs_view_close(v);
}

/* ---- the archive changed under the mapping ----------------------------------- */

/* Overwrites the archive at path with bytes at off, in place. */
static void poke(const char *path, long off, const char *hex)
{
	struct tb b = {0};
	FILE *f = fopen(path, "r+b");
	tb_hex(&b, hex);
	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, off, SEEK_SET), 0);
	cr_assert_eq(fwrite(b.p, 1, b.len, f), b.len);
	cr_assert_eq(fclose(f), 0);
	tb_free(&b);
}

/* Issue 7, item 11: rewritten in place at the same size, an element of a
 * list (walked again from the mapping when first read) claimed 2 GiB, and
 * the walk read far past the mapping (a crash, or bytes of the heap served
 * as content). Every walk is now bounded by the mapping. */
Test(fs_view, rewritten_in_place_reads_stay_in_the_mapping)
{
	struct tb b = {0};
	char *path;

	/* {"class_name": "x", "weights": {"w": [[1.0, 2.0]]}, "l": ["ab", "cdefgh"]} */
	tb_map(&b, 3);
	tb_str(&b, "class_name");
	tb_str(&b, "x");
	tb_str(&b, "weights");
	tb_map(&b, 1);
	tb_str(&b, "w");
	tb_arr(&b, 1);
	tb_arr(&b, 2);
	long w_at = (long)b.len;
	tb_f64(&b, 1.0);
	tb_f64(&b, 2.0);
	tb_str(&b, "l");
	tb_arr(&b, 2);
	tb_str(&b, "ab");
	long l_at = (long)b.len;
	tb_str(&b, "cdefgh");
	struct mpfs_view *v = open_kept(&b, &path);
	uint32_t l = id_of(v, "/l"), w = id_of(v, "/weights/w.npy");

	/* The second string, then the first float, now say: a str32 of 2 GiB. */
	struct stat before;
	cr_assert_eq(stat(path, &before), 0);
	poke(path, l_at, "db 7f ff ff ff");
	poke(path, w_at, "db 7f ff ff ff");
	/* A write moves mtime: what is still to be made is EIO. */
	struct timespec later[2] = {before.st_atim, {before.st_mtim.tv_sec + 1, 0}};
	cr_assert_eq(utimensat(AT_FDCWD, path, later, 0), 0);
	char buf[64];
	cr_assert_eq(mpfs_view_read(v, l, buf, sizeof(buf), 0), -EIO);
	/* With the mtime put back it cannot be told: reads stay inside the
	 * mapping all the same. */
	struct timespec back[2] = {before.st_atim, before.st_mtim};
	cr_assert_eq(utimensat(AT_FDCWD, path, back, 0), 0);
	char *text = content(v, "/l");
	cr_assert_str_eq(text, "[\"ab\", null]\n", "got %s", text);
	free(text);
	size_t len;
	char *npy = read_all(v, w, 7, &len);
	struct stat st;
	cr_assert_eq(mpfs_view_stat(v, w, &st), 0);
	cr_assert_eq(len, (size_t)st.st_size);
	free(npy);
	mpfs_view_close(v);
	unlink_kept(path);
}

/* Issue 7, item 12: listxattr read keys from the mapping without the
 * guard: with the archive cut short in place, mpfs died of SIGBUS. It now
 * reads nothing of the mapping, and every read of the mapping (names made
 * on first lookup, the key xattr, text, nested arrays, stat) gives -EIO. */
Test(fs_view, truncated_in_place_gives_eio_not_sigbus)
{
	struct tb b = {0};
	char *path, key[300];
	uint32_t id;
	struct stat st;
	char buf[256];

	/* Keys and values past the first pages, so that they lie in pages
	 * past the new end (which give SIGBUS, not zeros). */
	memset(key, 'k', sizeof(key) - 1);
	key[200] = '\0';
	uint8_t *pad = calloc(1, 3 * 4096);
	tb_map(&b, 5);
	tb_str(&b, "class_name");
	tb_str(&b, "x");
	tb_str(&b, "pad");
	tb_bin(&b, pad, 3 * 4096);
	free(pad);
	tb_str(&b, key);
	tb_str(&b, "pad");
	tb_str(&b, "m");
	tb_map(&b, 2);
	tb_str(&b, key);
	tb_arr(&b, 2);
	tb_uint(&b, 1);
	tb_uint(&b, 2);
	tb_str(&b, "b");
	tb_bin(&b, "xyz", 3);
	tb_str(&b, "weights");
	tb_map(&b, 1);
	tb_str(&b, "w");
	tb_arr(&b, 2);
	tb_f64(&b, 1.0);
	tb_f64(&b, 2.0);
	struct mpfs_view *v = open_kept(&b, &path);
	char name[sizeof(key) + 8];
	snprintf(name, sizeof(name), "/%s", key);
	uint32_t top = id_of(v, name), w = id_of(v, "/weights/w.npy"); /* /m not yet named */
	cr_assert_eq(truncate(path, 20), 0);

	/* Listing needs only the model; the key itself is in the mapping. */
	cr_assert_eq(mpfs_view_listxattr(v, top, buf, sizeof(buf)), 14);
	cr_assert_str_eq(buf, "user.mpfs.key");
	cr_assert_eq(mpfs_view_getxattr(v, top, "user.mpfs.key", buf, sizeof(buf)), -EIO);
	cr_assert_eq(mpfs_view_stat(v, top, &st), -EIO);
	cr_assert_eq(mpfs_view_read(v, top, buf, sizeof(buf), 0), -EIO);
	cr_assert_eq(mpfs_view_read(v, w, buf, sizeof(buf), 0), -EIO);
	snprintf(name, sizeof(name), "/m/%s", key);
	cr_assert_eq(mpfs_view_lookup(v, name, &id), -EIO);
	cr_assert_eq(mpfs_view_lookup(v, "/weights", &id), 0, "named at open: the root");
	mpfs_view_close(v);
	unlink_kept(path);
}

/* ---- archives written by msgpack-numpy itself (issue 11) ---------------------------- */

Test(fs_view, msgpack_numpy_peer)
{
	for (int raw = 0; raw < 2; raw++) {
		struct mpfs_view *v = open_fixture("peers/msgpack_numpy_logreg.mpk", raw);
		const char *classes = raw ? "/xtra/classes_.bin" : "/xtra/classes_.npy";

		/* numpy scalars: text, with only a dtype besides the key */
		expect_content(v, "/xtra/zoo/i64_scalar", "-5\n");
		expect_content(v, "/xtra/zoo/u8_scalar", "200\n");
		expect_content(v, "/xtra/zoo/f32_scalar", "0.5\n");
		expect_content(v, "/xtra/zoo/bool_scalar", "true\n");
		expect_xattr(v, "/xtra/zoo/i64_scalar", "user.mpfs.dtype", "<i8");
		expect_xattr_list(v, "/xtra/zoo/u8_scalar", "user.mpfs.key;user.mpfs.dtype");
		/* pickles: NAME.pickle, also with -o raw */
		expect_xattr(v, "/xtra/feature_names_in_.pickle", "user.mpfs.encoding", "pickle");
		expect_xattr(v, "/xtra/feature_names_in_.pickle", "user.mpfs.dtype", "|O");
		expect_xattr(v, "/xtra/feature_names_in_.pickle", "user.mpfs.shape", "4");
		expect_xattr_list(
			v, "/xtra/feature_names_in_.pickle",
			"user.mpfs.key;user.mpfs.dtype;user.mpfs.shape;user.mpfs.encoding");
		/* string arrays */
		expect_xattr(v, classes, "user.mpfs.dtype", "<U10");
		expect_xattr(v, classes, "user.mpfs.encoding", "compact");
		size_t len;
		char *c = read_all(v, id_of(v, classes), 4096, &len);
		cr_assert_eq(len, (raw ? 0 : 128) + 3 * 40);
		if (!raw)
			cr_assert(memmem(c, len, "'descr': '<U10'", 15), "no <U10 in the header");
		free(c);
		mpfs_view_close(v);
	}
}
