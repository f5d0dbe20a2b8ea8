/* Shared by the codec/model.c suites (test_model_*.c): an archive
 * classified by mpfs_model_init, the node at a path, and checks of kinds,
 * arrays, text and of the tree's ids. Include once per suite (static
 * helpers); a suite that counts allocations defines TU_WRAP_ALLOCS first. */
#ifndef MPFS_TESTS_MODEL_ENV_H
#define MPFS_TESTS_MODEL_ENV_H

#include <criterion/criterion.h>
#include <inttypes.h>

#include "codec/json.h"
#include "codec/model.h"
#include "testutil.h"

struct mdl {
	uint8_t *buf;
	size_t n;
	struct mpfs_model m;
	struct mpfs_error err;
	enum mpfs_codec_err rc;
};

static inline void mdl_bytes(struct mdl *d, const void *p, size_t n)
{
	d->buf = tu_dup(p, n);
	d->n = n;
	d->rc = mpfs_model_init(&d->m, d->buf, n, &d->err);
}

static inline void mdl_tb(struct mdl *d, struct tb *b)
{
	mdl_bytes(d, b->p, b->len);
	tb_free(b);
	cr_assert_eq(d->rc, MPFS_OK, "test archive refused: %s (at %" PRIu64 ")", d->err.msg,
		     d->err.off);
}

static inline void mdl_fixture(struct mdl *d, const char *name)
{
	size_t n;
	uint8_t *p = tu_fixture(name, &n);
	mdl_bytes(d, p, n);
	free(p);
	cr_assert_eq(d->rc, MPFS_OK, "%s refused: %s (at %" PRIu64 ")", name, d->err.msg,
		     d->err.off);
}

static inline void mdl_free(struct mdl *d)
{
	if (d->rc == MPFS_OK)
		mpfs_model_destroy(&d->m);
	free(d->buf);
}

/* The child of directory n called name: a string key, a label, an integer
 * key in decimal, or the index in a list. */
static inline const struct mpfs_node *child(const struct mdl *d, const struct mpfs_node *n,
					    const char *name)
{
	cr_assert(mpfs_node_is_dir(n), "looking for %s in a file", name);
	for (uint32_t i = 0; i < n->nchildren; i++) {
		const struct mpfs_node *c = &n->children[i];
		char num[32];
		if (n->kind == MPFS_N_LIST) {
			snprintf(num, sizeof(num), "%" PRIu32, i);
			if (!strcmp(num, name))
				return c;
			continue;
		}
		if (mpfs_node_label(c) && !strcmp(mpfs_node_label(c), name))
			return c;
		if (!c->key)
			continue;
		if (mpfs_val_is(&d->m.doc, c->key, name))
			return c;
		if (c->key->type == MPFS_UINT || c->key->type == MPFS_INT) {
			if (c->key->type == MPFS_UINT)
				snprintf(num, sizeof(num), "%" PRIu64, c->key->u);
			else
				snprintf(num, sizeof(num), "%" PRId64, c->key->i);
			if (!strcmp(num, name))
				return c;
		}
	}
	return NULL;
}

/* The node at a path like "weights/coefs_/0" ("" is the root). */
static inline const struct mpfs_node *at(const struct mdl *d, const char *path)
{
	const struct mpfs_node *n = &d->m.root;
	char buf[512], *save, *part;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		const struct mpfs_node *c = child(d, n, part);
		cr_assert_not_null(c, "no %s in %s", part, path);
		n = c;
	}
	return n;
}

static const char *const kind_names[] = {"MAP",	  "LIST",  "CSR",    "TEXT",
					 "ARRAY", "BYTES", "SCALAR", "PICKLE"};

static inline const struct mpfs_node *expect_kind(const struct mdl *d, const char *path,
						  enum mpfs_node_kind kind)
{
	const struct mpfs_node *n = at(d, path);
	cr_assert_eq(n->kind, kind, "%s is %s, expected %s", path, kind_names[n->kind],
		     kind_names[kind]);
	if (kind == MPFS_N_ARRAY) /* (a directory's children share the field) */
		cr_assert_not_null(n->array, "%s: array pointer", path);
	if (kind == MPFS_N_TEXT || kind == MPFS_N_BYTES)
		cr_assert_null(n->array, "%s: array pointer", path);
	return n;
}

/* path must be an array of dtype descr, shape ("2,3"), encoding. */
static inline void expect_array(const struct mdl *d, const char *path, const char *descr,
				const char *shape, enum mpfs_encoding enc)
{
	const struct mpfs_node *n = expect_kind(d, path, MPFS_N_ARRAY);
	char s[MPFS_MAX_DIMS * 21];
	cr_assert_str_eq(n->array->descr, descr, "%s: dtype", path);
	mpfs_array_shape_str(n->array, s, sizeof(s));
	cr_assert_str_eq(s, shape, "%s: shape %s, expected %s", path, s, shape);
	cr_assert_eq(n->array->encoding, enc, "%s: encoding", path);
	if (enc == MPFS_ENC_COMPACT)
		cr_assert_leq(n->array->data_off + n->array->nbytes, d->n, "%s: data outside",
			      path);
}

/* Text that renders as json. */
static inline void expect_text(const struct mdl *d, const char *path, const char *json)
{
	const struct mpfs_node *n = expect_kind(d, path, MPFS_N_TEXT);
	struct mpfs_strbuf out;
	mpfs_strbuf_init(&out);
	mpfs_json_render(&d->m.doc, n->val, &out);
	cr_assert_str_eq(out.p, json, "%s: %s, expected %s", path, out.p, json);
	mpfs_strbuf_destroy(&out);
}

/* Ids are dense, the root is 0, every node is found by its id, and a
 * directory's entries have consecutive ids. Returns the number of nodes
 * under and including n. */
static inline uint32_t check_ids(const struct mdl *d, const struct mpfs_node *n, uint8_t *seen)
{
	uint32_t count = 1, id = mpfs_model_id(&d->m, n);
	cr_assert_lt(id, d->m.nnodes);
	cr_assert_eq(mpfs_model_node(&d->m, id), n, "node %u is not found by its id", id);
	cr_assert_not(seen[id], "id %u twice", id);
	seen[id] = 1;
	cr_assert_not_null(n->val);
	cr_assert(mpfs_node_is_dir(n) || n->nchildren == 0);
	if (n->kind == MPFS_N_MAP)
		cr_assert_eq(n->nchildren, n->val->len, "a map shows every key");
	if (n->kind == MPFS_N_LIST)
		cr_assert_eq(n->nchildren, n->val->len, "a list shows every element");
	for (uint32_t i = 0; i < n->nchildren; i++) {
		const struct mpfs_node *c = &n->children[i];
		if (n->kind == MPFS_N_MAP) {
			cr_assert_eq(c->key, &n->val->items[2 * i]);
			cr_assert_eq(c->val, &n->val->items[2 * i + 1]);
		}
		if (n->kind == MPFS_N_LIST)
			cr_assert_null(c->key);
		cr_assert_eq(mpfs_model_id(&d->m, c), mpfs_model_id(&d->m, n->children) + i);
		count += check_ids(d, c, seen);
	}
	return count;
}

static inline void check_tree(const struct mdl *d)
{
	uint8_t *seen = calloc(d->m.nnodes + 1, 1);
	cr_assert_eq(d->m.root.kind, MPFS_N_MAP, "the root is a directory");
	cr_assert_eq(d->m.root.val, &d->m.doc.root);
	cr_assert_null(d->m.root.key);
	cr_assert_eq(mpfs_model_id(&d->m, &d->m.root), 0);
	cr_assert_eq(check_ids(d, &d->m.root, seen), d->m.nnodes);
	free(seen);
}

#endif
