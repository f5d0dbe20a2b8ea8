/* fs/view.c on hand-built archives: names (the reference's, non-string,
 * repeated and clashing keys, random keys), xattrs, and refusals, out of
 * memory at every allocation. */
#define TU_WRAP_ALLOCS /* linked with --wrap=malloc,... (tests/meson.build) */
#include "view_env.h"

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
 * Blocked by the mpfs_model_init defect (see test_model_rejects.c:
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
