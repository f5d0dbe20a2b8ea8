/* fs/names.c: which keys are plain names, and the reversible escaping of
 * the others (docs/tree.md §3). */
#include <criterion/criterion.h>

#include "fs/names.h"
#include "testutil.h"

static bool plain(const char *key, const char *suffix)
{
	return mpfs_name_is_plain((const uint8_t *)key, strlen(key), suffix);
}

/* Escapes key[0..n), checks what every escaped name must be, and returns
 * it (static storage). */
static const char *escape(const void *key, size_t n, const char *tag, const char *suffix,
			  uint32_t index)
{
	static char out[MPFS_NAME_MAX + 1 + 16];
	size_t len;

	memset(out, 0x5a, sizeof(out));
	len = mpfs_name_escape(key, n, tag, suffix, index, out);
	cr_assert_leq(len, MPFS_NAME_MAX, "escaped name of %zu bytes", len);
	cr_assert_eq(out[len], '\0');
	cr_assert_eq(strlen(out), len, "a NUL inside the escaped name");
	cr_assert_null(strchr(out, '/'), "a '/' in %s", out);
	cr_assert_eq(out[0], '%', "%s does not start with %%", out);
	cr_assert(strcmp(out, ".") && strcmp(out, ".."));
	cr_assert(len >= strlen(suffix) && !strcmp(out + len - strlen(suffix), suffix),
		  "%s lacks suffix %s", out, suffix);
	/* Every '%' after the first (and after "%~N~") starts a %XX escape of
	 * upper-case hex: no escape is ever cut. */
	size_t body = 1;
	if (out[1] == '~') {
		const char *t = strchr(out + 2, '~');
		cr_assert_not_null(t, "%s", out);
		body = (size_t)(t - out) + 1;
	} else if (!strncmp(out, "%#", 2)) {
		body = 2;
	}
	for (size_t i = body; i < len - strlen(suffix); i++) {
		if (out[i] != '%')
			continue;
		cr_assert_lt(i + 2, len - strlen(suffix), "%s: cut escape", out);
		cr_assert(strchr("0123456789ABCDEF", out[i + 1]) && out[i + 1] &&
				  strchr("0123456789ABCDEF", out[i + 2]) && out[i + 2],
			  "%s: bad escape at %zu", out, i);
	}
	return out;
}

/* Reverses an escaped name of the short form ("%" or "%#" + ESC + suffix). */
static long unescape(const char *name, const char *tag, const char *suffix, uint8_t *out)
{
	size_t skip = 1 + strlen(tag);
	return mpfs_name_unescape(name + skip, strlen(name) - skip - strlen(suffix), out);
}

static void round_trip(const void *key, size_t n, const char *tag, const char *suffix)
{
	const char *name = escape(key, n, tag, suffix, 7);
	uint8_t back[MPFS_NAME_MAX + 1];
	cr_assert_eq(name[1] == '~', false, "a key of %zu bytes took the long form", n);
	long got = unescape(name, tag, suffix, back);
	cr_assert_eq(got, (long)n, "%s: unescaped %ld bytes, expected %zu", name, got, n);
	cr_assert(n == 0 || memcmp(back, key, n) == 0, "%s does not give the key back", name);
}

/* ---- plain names -------------------------------------------------------------- */

Test(fs_names, plain_names)
{
	cr_assert(plain("alpha", ""));
	cr_assert(plain("coefs_", ".npy"));
	cr_assert(plain("...", ""));
	cr_assert(plain(".hidden", ""));
	cr_assert(plain("a.b", ""));
	cr_assert(plain("a%", ""));
	cr_assert(plain("#x#", ""));
	cr_assert(plain("x~", ""));
	cr_assert(plain("h\xc3\xa9llo", ""));
	cr_assert(plain("\xff\xfe", "")); /* bytes as they are */
	cr_assert(plain("0", ""));
}

Test(fs_names, unsafe_names)
{
	cr_assert_not(plain("", ""));
	cr_assert_not(plain("", ".npy"));
	cr_assert_not(plain(".", ""));
	cr_assert_not(plain("..", ""));
	cr_assert_not(plain("a/b", ""));
	cr_assert_not(plain("/", ""));
	cr_assert_not(plain("../../etc/passwd", ""));
	cr_assert_not(plain("%", ""));
	cr_assert_not(plain("%a%2Fb", ""));
	cr_assert_not(mpfs_name_is_plain((const uint8_t *)"a\0b", 3, ""));
	cr_assert_not(mpfs_name_is_plain((const uint8_t *)"\0", 1, ""));
}

Test(fs_names, length_limit_counts_the_suffix)
{
	char k[300];
	memset(k, 'k', sizeof(k));
	cr_assert(mpfs_name_is_plain((uint8_t *)k, 255, ""));
	cr_assert_not(mpfs_name_is_plain((uint8_t *)k, 256, ""));
	cr_assert(mpfs_name_is_plain((uint8_t *)k, 251, ".npy"));
	cr_assert_not(mpfs_name_is_plain((uint8_t *)k, 252, ".npy"));
	cr_assert_not(mpfs_name_is_plain((uint8_t *)k, 300, ""));
}

/* ---- escaping ----------------------------------------------------------------- */

Test(fs_names, escapes_of_the_reference)
{
	/* docs/tree.md §3 */
	cr_assert_str_eq(escape("..", 2, "", "", 0), "%%2E%2E");
	cr_assert_str_eq(escape(".", 1, "", "", 0), "%%2E");
	cr_assert_str_eq(escape("a/b", 3, "", "", 0), "%a%2Fb");
	cr_assert_str_eq(escape("", 0, "", "", 0), "%");
	cr_assert_str_eq(escape("../../etc/passwd", 16, "", "", 0),
			 "%%2E%2E%2F%2E%2E%2Fetc%2Fpasswd");
	cr_assert_str_eq(escape("%a%2Fb", 6, "", "", 0), "%%25a%252Fb");
	cr_assert_str_eq(escape("1", 1, "", "", 0), "%1");
	cr_assert_str_eq(escape("1", 1, "#", "", 0), "%#1");
	cr_assert_str_eq(escape("x.npy", 5, "", "", 0), "%x%2Enpy");
}

Test(fs_names, escapes_each_special_byte)
{
	cr_assert_str_eq(escape("/", 1, "", "", 0), "%%2F");
	cr_assert_str_eq(escape("\0", 1, "", "", 0), "%%00");
	cr_assert_str_eq(escape("%", 1, "", "", 0), "%%25");
	cr_assert_str_eq(escape(".", 1, "", "", 0), "%%2E");
	cr_assert_str_eq(escape("#", 1, "", "", 0), "%%23");
	cr_assert_str_eq(escape("~", 1, "", "", 0), "%%7E");
	cr_assert_str_eq(escape("a\0b", 3, "", ".npy", 0), "%a%00b.npy");
	cr_assert_str_eq(escape("", 0, "", ".npy", 0), "%.npy");
	cr_assert_str_eq(escape(".", 1, "", ".bin", 0), "%%2E.bin");
	cr_assert_str_eq(escape("-1", 2, "#", ".npy", 0), "%#-1.npy");
	cr_assert_str_eq(escape("0.5", 3, "#", "", 0), "%#0%2E5");
	cr_assert_str_eq(escape("\"a/b\"", 5, "#", "", 0), "%#\"a%2Fb\"");
	/* everything else passes unchanged, non-ASCII included */
	cr_assert_str_eq(escape("h\xc3\xa9 x", 5, "", "", 0), "%h\xc3\xa9 x");
}

Test(fs_names, round_trip_of_awkward_keys)
{
	static const char *const keys[] = {
		"alpha", ".",	  "..",		  "",
		"a/b",	 "/",	  "//",		  "../../etc/passwd",
		"%",	 "%%",	  "%2F",	  "#",
		"##x##", "~",	  "x~",		  "#x#",
		".swp",	 "a.npy", "x.bin",	  "%~0~",
		"%#1",	 "-1",	  "h\xc3\xa9llo", "\xff\xfe\x80",
		" ",	 "\t\n",
	};
	static const char *const suffixes[] = {"", ".npy", ".bin"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		for (int s = 0; s < 3; s++) {
			round_trip(keys[i], strlen(keys[i]), "", suffixes[s]);
			round_trip(keys[i], strlen(keys[i]), "#", suffixes[s]);
		}
	/* keys with NUL bytes */
	round_trip("\0", 1, "", "");
	round_trip("a\0b", 3, "", ".npy");
	round_trip("\0\0/\0", 4, "#", "");
}

Test(fs_names, round_trip_of_every_byte)
{
	for (int c = 0; c < 256; c++) {
		uint8_t k[3] = {(uint8_t)c, 'x', (uint8_t)c};
		round_trip(k, 1, "", "");
		round_trip(k, 3, "", ".npy");
	}
}

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

Test(fs_names, round_trip_of_random_keys)
{
	static const char alphabet[] = "/%.#~\0ab-_ \xc3\xa9\xff";
	for (int i = 0; i < 20000; i++) {
		uint8_t k[80];
		size_t n = rng() % 80;
		for (size_t j = 0; j < n; j++) {
			uint64_t r = rng();
			k[j] = r & 1 ? (uint8_t)(r >> 8)
				     : (uint8_t)alphabet[(r >> 8) % (sizeof(alphabet) - 1)];
		}
		round_trip(k, n, i & 1 ? "#" : "", i % 3 ? "" : ".npy");
	}
}

/* Distinct keys give distinct names: the escaping is injective, and the
 * escaped '.' keeps "k" + ".npy" apart from the key "k.npy". */
Test(fs_names, distinct_keys_distinct_names)
{
	static const char *const keys[] = {
		"",	".", "..", "a",	  "a.npy", "a%2Enpy", "%",   "%25",  "a/b", "a%2Fb", "a.",
		"a%2E", "#", "~",  "%23", "%7E",   "1",	      "%#1", "%~0~", "A",   "a.bin"};
	enum { N = sizeof(keys) / sizeof(keys[0]) };
	static char names[N * 4][MPFS_NAME_MAX + 1];
	int k = 0;
	for (int i = 0; i < N; i++) {
		snprintf(names[k++], sizeof(names[0]), "%s",
			 escape(keys[i], strlen(keys[i]), "", "", 0));
		snprintf(names[k++], sizeof(names[0]), "%s",
			 escape(keys[i], strlen(keys[i]), "", ".npy", 0));
		snprintf(names[k++], sizeof(names[0]), "%s",
			 escape(keys[i], strlen(keys[i]), "#", "", 0));
		snprintf(names[k++], sizeof(names[0]), "%s",
			 escape(keys[i], strlen(keys[i]), "#", ".npy", 0));
	}
	for (int i = 0; i < k; i++) {
		for (int j = i + 1; j < k; j++)
			cr_assert_str_neq(names[i], names[j], "keys %d and %d: both %s", i / 4,
					  j / 4, names[i]);
		/* and no escaped name is a plain name */
		cr_assert_not(plain(names[i], ""));
	}
}

/* ---- long keys ------------------------------------------------------------------ */

Test(fs_names, long_keys_take_the_indexed_form)
{
	char k[600];
	const char *name;

	/* 300 x L, 13th entry: "%~12~LLL...L", 255 bytes (docs/tree.md) */
	memset(k, 'L', 300);
	name = escape(k, 300, "", "", 12);
	cr_assert_eq(strlen(name), 255);
	cr_assert(!strncmp(name, "%~12~LLL", 8), "%s", name);
	cr_assert_eq(strspn(name + 5, "L"), 250);

	/* 252 x k, an array, 1st entry: "%~0~kkk...k.npy", 255 bytes */
	memset(k, 'k', 252);
	name = escape(k, 252, "", ".npy", 0);
	cr_assert_eq(strlen(name), 255, "%zu", strlen(name));
	cr_assert(!strncmp(name, "%~0~kkk", 7));
	cr_assert_eq(strspn(name + 4, "k"), 247);

	/* Escapes are never cut: '/' x 300 */
	memset(k, '/', 300);
	for (uint32_t idx = 0; idx < 1000000; idx = idx * 10 + 3) {
		name = escape(k, 300, "", ".npy", idx);
		char head[32];
		snprintf(head, sizeof(head), "%%~%u~", idx);
		cr_assert(!strncmp(name, head, strlen(head)), "%s", name);
		cr_assert_eq((strlen(name) - strlen(head) - 4) % 3, 0, "%s", name);
	}
	name = escape(k, 300, "#", "", UINT32_MAX);
	cr_assert(!strncmp(name, "%~4294967295~%2F", 16), "%s", name);

	/* distinct indexes keep equal prefixes apart */
	memset(k, 'z', 600);
	char a[MPFS_NAME_MAX + 1];
	snprintf(a, sizeof(a), "%s", escape(k, 600, "", "", 1));
	cr_assert_str_neq(a, escape(k, 600, "", "", 2));
	cr_assert_str_neq(a, escape(k, 599, "", "", 11));
}

Test(fs_names, the_limit_between_short_and_long_forms)
{
	char k[300];

	/* "%" + key: 254 plain bytes fit, 255 do not. */
	memset(k, 'a', sizeof(k));
	k[0] = '%';				      /* not plain, escapes to 3 bytes */
	const char *name = escape(k, 252, "", "", 9); /* 1 + 3 + 251 = 255 */
	cr_assert_eq(strlen(name), 255);
	cr_assert(!strncmp(name, "%%25aaa", 7), "%s", name);
	name = escape(k, 253, "", "", 9); /* 256: long form */
	cr_assert(!strncmp(name, "%~9~%25", 7), "%s", name);
	/* with the suffix */
	name = escape(k, 248, "", ".npy", 9); /* 1 + 3 + 247 + 4 = 255 */
	cr_assert(!strncmp(name, "%%25", 4));
	name = escape(k, 249, "", ".npy", 9);
	cr_assert(!strncmp(name, "%~9~", 4));
	/* and with the "#" tag */
	memset(k, '1', sizeof(k));
	name = escape(k, 253, "#", "", 0); /* 2 + 253 = 255 */
	cr_assert(!strncmp(name, "%#111", 5));
	name = escape(k, 254, "#", "", 0);
	cr_assert(!strncmp(name, "%~0~111", 7));
}

/* ---- unescaping ----------------------------------------------------------------- */

Test(fs_names, unescape)
{
	uint8_t out[64];
	cr_assert_eq(mpfs_name_unescape("abc", 3, out), 3);
	cr_assert(!memcmp(out, "abc", 3));
	cr_assert_eq(mpfs_name_unescape("", 0, out), 0);
	cr_assert_eq(mpfs_name_unescape("%2F%00%25", 9, out), 3);
	cr_assert(!memcmp(out, "/\0%", 3));
	cr_assert_eq(mpfs_name_unescape("a%2fb", 5, out), 3, "lower-case hex is read too");
	cr_assert(!memcmp(out, "a/b", 3));
	/* only n bytes are read */
	cr_assert_eq(mpfs_name_unescape("ab%2F", 2, out), 2);
}

Test(fs_names, unescape_rejects_malformed_escapes)
{
	uint8_t out[64];
	static const char *const bad[] = {"%", "a%", "%2", "a%2", "%G0", "%0G", "%%", "%-1", "% 1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(mpfs_name_unescape(bad[i], strlen(bad[i]), out), -1, "'%s' accepted",
			     bad[i]);
	/* an escape cut by n */
	cr_assert_eq(mpfs_name_unescape("ab%2F", 4, out), -1);
}
