/* Classifying values: when is a list an array, a map a csr_matrix or a
 * nested model. The rules are those of the design brief §2:
 *  - a compact map (an "nd" key) is always an array;
 *  - a list is an array when it lies under a model's "weights" map, or when
 *    the model's "types" map names its key "ndarray"; a list of such arrays
 *    of different shapes (MLP coefs_) is a directory of arrays;
 *  - a map is a csr_matrix when its class_name says so or when "types" names
 *    its key "csr_matrix";
 *  - a map with a class_name is a model, whose "types" apply to its keys. */
#include "codec/model.h"

#include <stdlib.h>
#include <string.h>

struct ctx {
	const struct mpfs_val *types; /* the enclosing model's types map, or NULL */
	bool weights;		      /* under a model's weights map */
};

struct builder {
	const struct mpfs_doc *doc;
	struct mpfs_error *err;
	uint32_t next_id;
	uint32_t narrays[2];
};

static bool same_key(const struct mpfs_doc *doc, const struct mpfs_val *a, const struct mpfs_val *b)
{
	if ((a->type == MPFS_STR || a->type == MPFS_BIN) &&
	    (b->type == MPFS_STR || b->type == MPFS_BIN))
		return a->len == b->len &&
		       memcmp(mpfs_val_data(doc, a), mpfs_val_data(doc, b), a->len) == 0;
	if (a->type != b->type)
		return false;
	return a->type == MPFS_INT ? a->i == b->i : a->type == MPFS_UINT && a->u == b->u;
}

/* True if the types map names key as type what ("ndarray", "csr_matrix"). */
static bool types_says(const struct builder *b, const struct ctx *ctx, const struct mpfs_val *key,
		       const char *what)
{
	const struct mpfs_val *t = ctx->types;

	if (!t || t->type != MPFS_MAP)
		return false;
	for (uint32_t i = 0; i < t->len; i++)
		if (same_key(b->doc, &t->items[2 * i], key))
			return mpfs_val_is(b->doc, &t->items[2 * i + 1], what);
	return false;
}

static bool is_csr(const struct builder *b, const struct mpfs_val *v, bool declared)
{
	const struct mpfs_val *cls = mpfs_map_get(b->doc, v, "class_name");
	const struct mpfs_val *shape = mpfs_map_get(b->doc, v, "shape");
	const struct mpfs_val *arg1 = mpfs_map_get(b->doc, v, "arg1");

	if (!declared && !(cls && mpfs_val_is(b->doc, cls, "csr_matrix")))
		return false;
	return shape && shape->type == MPFS_ARRAY && arg1 && arg1->type == MPFS_ARRAY &&
	       arg1->len == 3 && arg1->items;
}

static enum mpfs_codec_err build(struct builder *b, struct mpfs_node *n, const struct mpfs_val *v,
				 bool want_array, bool want_csr, const struct ctx *ctx);

static enum mpfs_codec_err alloc_children(struct builder *b, struct mpfs_node *n, uint32_t count)
{
	n->children = count ? calloc(count, sizeof(*n->children)) : NULL;
	if (count && !n->children)
		return mpfs_error_set(b->err, MPFS_E_NOMEM, n->val->off, "out of memory");
	n->nchildren = count;
	return MPFS_OK;
}

static enum mpfs_codec_err build_map(struct builder *b, struct mpfs_node *n, const struct ctx *ctx,
				     bool model)
{
	const struct mpfs_val *v = n->val;

	n->kind = MPFS_N_MAP;
	if (alloc_children(b, n, v->len))
		return b->err->code;
	for (uint32_t i = 0; i < v->len; i++) {
		const struct mpfs_val *key = &v->items[2 * i];
		struct ctx sub = *ctx;

		if (model && mpfs_val_is(b->doc, key, "weights"))
			sub.weights = true;
		n->children[i].key = key;
		if (build(b, &n->children[i], &v->items[2 * i + 1],
			  sub.weights || types_says(b, ctx, key, "ndarray"),
			  types_says(b, ctx, key, "csr_matrix"), &sub))
			return b->err->code;
	}
	return MPFS_OK;
}

/* The map's own keys, with arg1 replaced in place by its three arrays. */
static enum mpfs_codec_err build_csr(struct builder *b, struct mpfs_node *n, const struct ctx *ctx)
{
	static const char *const labels[3] = {"data", "indices", "indptr"};
	const struct mpfs_val *v = n->val;
	uint32_t at = 0;

	n->kind = MPFS_N_CSR;
	if (alloc_children(b, n, v->len + 2))
		return b->err->code;
	for (uint32_t i = 0; i < v->len; i++) {
		const struct mpfs_val *key = &v->items[2 * i], *val = &v->items[2 * i + 1];

		if (val != mpfs_map_get(b->doc, v, "arg1")) { /* not the first arg1 */
			n->children[at].key = key;
			if (build(b, &n->children[at++], val, false, false, ctx))
				return b->err->code;
			continue;
		}
		for (int j = 0; j < 3; j++) {
			n->children[at].label = labels[j];
			if (build(b, &n->children[at++], &val->items[j], true, false, ctx))
				return b->err->code;
		}
	}
	return MPFS_OK;
}

static enum mpfs_codec_err build_list(struct builder *b, struct mpfs_node *n, bool want_array,
				      const struct ctx *ctx)
{
	const struct mpfs_val *v = n->val;

	n->kind = MPFS_N_LIST;
	if (alloc_children(b, n, v->len))
		return b->err->code;
	for (uint32_t i = 0; i < v->len; i++)
		if (build(b, &n->children[i], &v->items[i], want_array || ctx->weights, false, ctx))
			return b->err->code;
	return MPFS_OK;
}

static enum mpfs_codec_err build_array(struct builder *b, struct mpfs_node *n,
				       const struct mpfs_array *a)
{
	n->kind = MPFS_N_ARRAY;
	n->array = malloc(sizeof(*n->array));
	if (!n->array)
		return mpfs_error_set(b->err, MPFS_E_NOMEM, n->val->off, "out of memory");
	*n->array = *a;
	b->narrays[a->encoding]++;
	return MPFS_OK;
}

static enum mpfs_codec_err build(struct builder *b, struct mpfs_node *n, const struct mpfs_val *v,
				 bool want_array, bool want_csr, const struct ctx *ctx)
{
	struct mpfs_array a;

	n->val = v;
	n->id = b->next_id++;
	switch (v->type) {
	case MPFS_MAP:
		if (mpfs_array_is_compact(b->doc, v)) {
			if (mpfs_array_compact(b->doc, v, &a, b->err))
				return b->err->code;
			return build_array(b, n, &a);
		}
		if (is_csr(b, v, want_csr))
			return build_csr(b, n, ctx);
		const struct mpfs_val *cls = mpfs_map_get(b->doc, v, "class_name");
		if (n->id == 0 || (cls && mpfs_val_text(b->doc, cls))) { /* a model */
			const struct mpfs_val *types = mpfs_map_get(b->doc, v, "types");
			struct ctx model = {.types = types && types->type == MPFS_MAP ? types
										      : NULL};
			return build_map(b, n, &model, true);
		}
		return build_map(b, n, ctx, false);
	case MPFS_ARRAY:
		if (want_array && mpfs_array_nested(v, &a))
			return build_array(b, n, &a);
		/* Lists of arrays, and lists holding what text cannot show. */
		if ((want_array && v->items) || (v->flags & (MPFS_EL_MAP | MPFS_EL_RAW)))
			return build_list(b, n, want_array, ctx);
		n->kind = MPFS_N_TEXT;
		return MPFS_OK;
	case MPFS_STR: n->kind = v->flags ? MPFS_N_TEXT : MPFS_N_BYTES; return MPFS_OK;
	case MPFS_BIN:
	case MPFS_EXT: n->kind = MPFS_N_BYTES; return MPFS_OK;
	default: n->kind = MPFS_N_TEXT; return MPFS_OK;
	}
}

static void free_node(struct mpfs_node *n)
{
	for (uint32_t i = 0; i < n->nchildren; i++)
		free_node(&n->children[i]);
	free(n->children);
	free(n->array);
}

enum mpfs_codec_err mpfs_model_init(struct mpfs_model *m, const uint8_t *buf, size_t size,
				    struct mpfs_error *err)
{
	struct builder b = {.doc = &m->doc, .err = err};
	struct ctx top = {0};

	memset(m, 0, sizeof(*m));
	if (mpfs_doc_init(&m->doc, buf, size, err))
		return err->code;
	if (m->doc.root.type != MPFS_MAP) {
		mpfs_error_set(err, MPFS_E_NOT_MAP, 0, "the top-level value is %s, not a map",
			       m->doc.root.type == MPFS_ARRAY ? "an array" : "a scalar");
		goto out_destroy_doc;
	}
	if (build(&b, &m->root, &m->doc.root, false, false, &top))
		goto out_free_nodes;
	m->nnodes = b.next_id;
	memcpy(m->narrays, b.narrays, sizeof(m->narrays));
	return MPFS_OK;

out_free_nodes:
	free_node(&m->root);
out_destroy_doc:
	mpfs_doc_destroy(&m->doc);
	memset(m, 0, sizeof(*m));
	return err->code;
}

void mpfs_model_destroy(struct mpfs_model *m)
{
	free_node(&m->root);
	mpfs_doc_destroy(&m->doc);
	memset(m, 0, sizeof(*m));
}
