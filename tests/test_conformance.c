/* The public MsgPack conformance vectors (npm msgpack-test-suite 1.0.0),
 * converted by tests/conformance/vectors.py into the TSV named by
 * $MPFS_VECTORS (tests/conformance/run.sh does both): every encoding must
 * decode to the vector's value, render as mpfs renders it, and every proper
 * prefix of it must be refused as truncated. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>

#include "codec/json.h"
#include "codec/value.h"
#include "testutil.h"

struct vec {
	char *name, *kind, *hex, *value, *json;
};

static struct vec *vecs;
static size_t nvecs, declared;
static char *text;

/* Reads the TSV once per test process. */
static void load(void)
{
	const char *path = getenv("MPFS_VECTORS");
	size_t n;
	char *line, *save;

	cr_assert(path && *path, "MPFS_VECTORS is not set: run the conformance test through meson "
				 "(tests/conformance/run.sh converts the vectors first)");
	text = (char *)tu_read_file(path, &n);
	text = realloc(text, n + 1);
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#') {
			sscanf(line, "# vectors: %zu", &declared);
			continue;
		}
		struct vec v;
		char *f = line;
		v.name = strsep(&f, "\t");
		v.kind = strsep(&f, "\t");
		v.hex = strsep(&f, "\t");
		v.value = strsep(&f, "\t");
		v.json = strsep(&f, "\t");
		cr_assert(v.json && !f, "malformed line in %s: %s", path, line);
		vecs = realloc(vecs, (nvecs + 1) * sizeof(*vecs));
		vecs[nvecs++] = v;
	}
}

static void unload(void)
{
	free(vecs);
	free(text);
	vecs = NULL;
	text = NULL;
	nvecs = declared = 0;
}

TestSuite(conformance, .init = load, .fini = unload);

/* Bytes from plain hex ("-" is none). */
static uint8_t *unhex(const char *hex, size_t *n)
{
	struct tb b = {0};
	if (strcmp(hex, "-"))
		tb_hex(&b, hex);
	*n = b.len;
	uint8_t *p = tu_dup(b.p, b.len);
	tb_free(&b);
	return p;
}

static bool same_bytes(const struct mpfs_doc *doc, const struct mpfs_val *v, const char *hex)
{
	size_t n;
	uint8_t *want = unhex(hex, &n);
	bool same = v->len == n && (n == 0 || memcmp(mpfs_val_data(doc, v), want, n) == 0);
	free(want);
	return same;
}

static uint64_t be(const uint8_t *p, int n)
{
	uint64_t x = 0;
	for (int i = 0; i < n; i++)
		x = x << 8 | p[i];
	return x;
}

/* Checks one vector; returns why it fails, or NULL. */
static const char *check(const struct vec *t)
{
	static char why[512];
	struct mpfs_doc doc;
	struct mpfs_error err;
	struct mpfs_strbuf out;
	size_t n;
	uint8_t *buf = unhex(t->hex, &n);
	const struct mpfs_val *v = &doc.root;
	const char *bad = NULL;

	if (mpfs_doc_init(&doc, buf, n, &err)) {
		snprintf(why, sizeof(why), "refused: %s (at %" PRIu64 ")", err.msg, err.off);
		free(buf);
		return why;
	}
#define FAIL(...)                                                                                  \
	do {                                                                                       \
		snprintf(why, sizeof(why), __VA_ARGS__);                                           \
		bad = why;                                                                         \
		goto out;                                                                          \
	} while (0)
	if (v->off != 0 || v->end != n || v->tag != buf[0])
		FAIL("offsets %" PRIu64 "..%" PRIu64 " (tag %#x) for %zu bytes", v->off, v->end,
		     v->tag, n);

	mpfs_strbuf_init(&out);
	mpfs_json_render(&doc, v, &out);
	if (out.oom || strcmp(out.p, t->json)) {
		snprintf(why, sizeof(why), "renders as %s, expected %s", out.p, t->json);
		mpfs_strbuf_destroy(&out);
		bad = why;
		goto out;
	}
	mpfs_strbuf_destroy(&out);

	if (!strcmp(t->kind, "nil")) {
		if (v->type != MPFS_NIL)
			FAIL("type %d, not nil", v->type);
	} else if (!strcmp(t->kind, "bool")) {
		if (v->type != MPFS_BOOL || v->b != !strcmp(t->value, "true"))
			FAIL("not bool %s", t->value);
	} else if (!strcmp(t->kind, "int")) {
		errno = 0;
		if (t->value[0] == '-') {
			int64_t i = strtoll(t->value, NULL, 10);
			if (errno || v->type != MPFS_INT || v->i != i)
				FAIL("not int %s (type %d, %" PRId64 ")", t->value, v->type, v->i);
		} else {
			uint64_t u = strtoull(t->value, NULL, 10);
			if (errno || v->type != MPFS_UINT || v->u != u)
				FAIL("not uint %s (type %d, %" PRIu64 ")", t->value, v->type, v->u);
		}
	} else if (!strcmp(t->kind, "float")) {
		uint64_t want = strtoull(t->value, NULL, 16), got;
		memcpy(&got, &v->f, 8);
		if (v->type != MPFS_FLOAT || got != want || (v->tag != 0xca && v->tag != 0xcb))
			FAIL("not the double %s (type %d, bits %016" PRIx64 ")", t->value, v->type,
			     got);
	} else if (!strcmp(t->kind, "binary")) {
		if (v->type != MPFS_BIN || !same_bytes(&doc, v, t->value))
			FAIL("not bin %s (type %d, %u bytes)", t->value, v->type, v->len);
	} else if (!strcmp(t->kind, "string")) {
		if (v->type != MPFS_STR || !same_bytes(&doc, v, t->value) ||
		    !mpfs_val_text(&doc, v))
			FAIL("not the UTF-8 str %s (type %d, %u bytes)", t->value, v->type, v->len);
	} else if (!strcmp(t->kind, "array") || !strcmp(t->kind, "map")) {
		enum mpfs_type type = t->kind[0] == 'a' ? MPFS_ARRAY : MPFS_MAP;
		if (v->type != type || v->len != strtoul(t->value, NULL, 10))
			FAIL("not a %s of %s (type %d, len %u)", t->kind, t->value, v->type,
			     v->len);
	} else if (!strcmp(t->kind, "timestamp")) {
		int64_t sec, want_sec;
		uint64_t nsec, want_nsec;
		const uint8_t *p = mpfs_val_data(&doc, v);
		if (sscanf(t->value, "%" SCNd64 ":%" SCNu64, &want_sec, &want_nsec) != 2)
			FAIL("bad timestamp in the TSV");
		if (v->type != MPFS_EXT || v->ext_type != -1)
			FAIL("not a timestamp ext (type %d, ext %d)", v->type, v->ext_type);
		if (v->len == 4) {
			sec = (int64_t)be(p, 4), nsec = 0;
		} else if (v->len == 8) {
			uint64_t x = be(p, 8);
			nsec = x >> 34, sec = (int64_t)(x & 0x3ffffffffULL);
		} else if (v->len == 12) {
			nsec = be(p, 4), sec = (int64_t)be(p + 4, 8);
		} else {
			FAIL("timestamp of %u bytes", v->len);
		}
		if (sec != want_sec || nsec != want_nsec)
			FAIL("timestamp %" PRId64 ":%" PRIu64 ", expected %s", sec, nsec, t->value);
	} else if (!strcmp(t->kind, "ext")) {
		char *colon = strchr(t->value, ':');
		if (!colon || v->type != MPFS_EXT || v->ext_type != atoi(t->value) ||
		    !same_bytes(&doc, v, colon + 1))
			FAIL("not ext %s (type %d, ext %d, %u bytes)", t->value, v->type,
			     v->ext_type, v->len);
	} else {
		FAIL("unknown kind %s in the TSV", t->kind);
	}
#undef FAIL
out:
	mpfs_doc_destroy(&doc);
	if (!bad) {
		/* Every proper prefix is truncated; a byte more is trailing. */
		for (size_t k = 0; k < n && !bad; k++) {
			uint8_t *pre = tu_dup(buf, k);
			enum mpfs_codec_err rc = mpfs_doc_init(&doc, pre, k, &err);
			if (rc != (k ? MPFS_E_TRUNCATED : MPFS_E_EMPTY)) {
				snprintf(why, sizeof(why), "prefix of %zu bytes: %s", k,
					 mpfs_codec_strerror(rc));
				bad = why;
				if (rc == MPFS_OK)
					mpfs_doc_destroy(&doc);
			}
			free(pre);
		}
		uint8_t *more = malloc(n + 1);
		memcpy(more, buf, n);
		more[n] = 0xc0;
		if (!bad &&
		    (mpfs_doc_init(&doc, more, n + 1, &err) != MPFS_E_TRAILING || err.off != n)) {
			snprintf(why, sizeof(why), "a byte more is not refused as trailing");
			bad = why;
		}
		free(more);
	}
	free(buf);
	return bad;
}

/* Checks every vector of one kind; at least min of them. */
static void check_kind(const char *kind, size_t min)
{
	size_t seen = 0, failed = 0;
	for (size_t i = 0; i < nvecs; i++) {
		if (strcmp(vecs[i].kind, kind))
			continue;
		seen++;
		const char *why = check(&vecs[i]);
		if (why) {
			failed++;
			cr_log_error("%s (%s): %s", vecs[i].name, vecs[i].hex, why);
		}
	}
	cr_assert_eq(failed, 0, "%zu of %zu %s vectors fail (see above)", failed, seen, kind);
	cr_assert_geq(seen, min, "only %zu %s vectors", seen, kind);
}

Test(conformance, vectors_file)
{
	static const char *const kinds[] = {"nil",    "bool",  "int", "float",	   "binary",
					    "string", "array", "map", "timestamp", "ext"};
	cr_assert_gt(declared, 0, "no '# vectors: N' line");
	cr_assert_eq(nvecs, declared, "%zu vectors read, %zu declared", nvecs, declared);
	for (size_t i = 0; i < nvecs; i++) {
		bool known = false;
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			known |= !strcmp(vecs[i].kind, kinds[k]);
		cr_assert(known, "%s: unknown kind %s", vecs[i].name, vecs[i].kind);
	}
}

Test(conformance, nil)
{
	check_kind("nil", 1);
}

Test(conformance, bool)
{
	check_kind("bool", 2);
}

Test(conformance, binary)
{
	check_kind("binary", 9);
}

Test(conformance, int)
{
	check_kind("int", 100);
}

Test(conformance, float)
{
	check_kind("float", 20);
}

Test(conformance, string)
{
	check_kind("string", 20);
}

Test(conformance, array)
{
	check_kind("array", 15);
}

Test(conformance, map)
{
	check_kind("map", 10);
}

Test(conformance, timestamp)
{
	check_kind("timestamp", 15);
}

Test(conformance, ext)
{
	check_kind("ext", 10);
}
