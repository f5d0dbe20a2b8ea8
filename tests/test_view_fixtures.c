/* fs/view.c: the archive as named files and directories, without FUSE, on
 * every fixture (whole trees checked against its .expect.json by numpy), in
 * detail on some (lookup, attributes, contents, extended attributes, -o
 * raw), and on an archive written by msgpack-numpy. */
#include "view_env.h"

/* ---- walking whole trees ---------------------------------------------------------- */

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
