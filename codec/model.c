/* Classifying values: when is a list an array, a map a csr_matrix or a
 * nested model. The rules are those of the design brief §2:
 *  - a compact map (an "nd" key) is always an array;
 *  - a list is an array when it lies under a model's "weights" map, or when
 *    the model's "types" map names its key "ndarray"; a list of such arrays
 *    of different shapes (MLP coefs_) is a directory of arrays;
 *  - a map is a csr_matrix when its class_name says so or when "types" names
 *    its key "csr_matrix";
 *  - a map with a class_name is a model, whose "types" apply to its keys. */
#define _GNU_SOURCE /* qsort_r */
#include "codec/model.h"
#include "codec/numpy.h"

#include <stdlib.h>
#include <string.h>

/* A types map's keys sorted (by kind, then bytes or value, then archive
 * order), so that each key of the model is classified with a binary search
 * rather than a scan: classifying stays O(n log n) in the number of keys. */
struct mpfs_types_index {
	struct mpfs_types_index *next; /* the model's list: see mpfs_model.indexes */
	const struct mpfs_val *map;
	uint32_t n;
	const struct mpfs_val *keys[]; /* pointers to key items of map */
};

struct ctx {
	const struct mpfs_types_index *types; /* the enclosing model's, or NULL */
	bool weights;			      /* under a model's weights map */
};

struct builder {
	struct mpfs_model *m;
	const struct mpfs_doc *doc;
	struct mpfs_error *err;
	uint64_t used, cap; /* slots of m->nodes handed out, and allocated */
};

/* Keys that types can name: strings (str and bin alike) and integers. */
static int key_class(const struct mpfs_val *k)
{
	switch (k->type) {
	case MPFS_STR:
	case MPFS_BIN: return 0;
	case MPFS_UINT: return 1;
	case MPFS_INT: return 2;
	default: return -1;
	}
}

struct cmp_ctx {
	const struct mpfs_doc *doc;
	uint64_t *work;
};

static int cmp_key(const struct cmp_ctx *c, const struct mpfs_val *a, const struct mpfs_val *b)
{
	int ca = key_class(a), cb = key_class(b);

	(*c->work)++;
	if (ca != cb)
		return ca < cb ? -1 : 1;
	if (ca == 1)
		return (a->u > b->u) - (a->u < b->u);
	if (ca == 2)
		return (a->i > b->i) - (a->i < b->i);
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(mpfs_val_data(c->doc, a), mpfs_val_data(c->doc, b), a->len);
}

static int by_key(const void *x, const void *y, void *arg)
{
	const struct mpfs_val *a = *(const struct mpfs_val *const *)x;
	const struct mpfs_val *b = *(const struct mpfs_val *const *)y;
	int c = cmp_key(arg, a, b);
	/* Equal keys keep archive order: the first one is the one that counts. */
	return c ? c : (a > b) - (a < b);
}

/* Indexes types map t (linked into the model until index_free). */
static enum mpfs_codec_err index_types(struct builder *b, const struct mpfs_val *t,
				       struct mpfs_types_index **out)
{
	struct cmp_ctx c = {b->doc, &b->m->work};
	struct mpfs_types_index *ix;

	ix = malloc(sizeof(*ix) + (t->len ? t->len : 1) * sizeof(ix->keys[0]));
	if (!ix)
		return mpfs_error_set(b->err, MPFS_E_NOMEM, t->off, "out of memory");
	ix->map = t;
	ix->n = 0;
	for (uint32_t i = 0; i < t->len; i++)
		if (key_class(&t->items[2 * i]) >= 0)
			ix->keys[ix->n++] = &t->items[2 * i];
	b->m->work += t->len;
	ix->next = b->m->indexes;
	b->m->indexes = ix;
	qsort_r(ix->keys, ix->n, sizeof(ix->keys[0]), by_key, &c);
	*out = ix;
	return MPFS_OK;
}

static void index_free(struct builder *b, struct mpfs_types_index *ix)
{
	if (!ix)
		return;
	b->m->indexes = ix->next; /* models nest: ix is the latest */
	free(ix);
}

/* The type the enclosing model's types map gives key, or NULL. */
static const struct mpfs_val *types_of(struct builder *b, const struct ctx *ctx,
				       const struct mpfs_val *key)
{
	const struct mpfs_types_index *ix = ctx->types;
	struct cmp_ctx c = {b->doc, &b->m->work};
	uint32_t lo = 0, hi;

	if (!ix || key_class(key) < 0)
		return NULL;
	hi = ix->n;
	while (lo < hi) { /* the first key not below key */
		uint32_t mid = lo + (hi - lo) / 2;
		if (cmp_key(&c, ix->keys[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == ix->n || cmp_key(&c, ix->keys[lo], key))
		return NULL;
	return ix->keys[lo] + 1; /* its value follows it */
}

/* mpfs_map_get, counting the keys it may look at. */
static const struct mpfs_val *map_get(struct builder *b, const struct mpfs_val *m, const char *k)
{
	b->m->work += m->type == MPFS_MAP ? m->len : 0;
	return mpfs_map_get(b->doc, m, k);
}

static bool is_csr(struct builder *b, const struct mpfs_val *v, bool declared)
{
	const struct mpfs_val *cls = map_get(b, v, "class_name");
	const struct mpfs_val *shape = map_get(b, v, "shape");
	const struct mpfs_val *arg1 = map_get(b, v, "arg1");

	if (!declared && !(cls && mpfs_val_is(b->doc, cls, "csr_matrix")))
		return false;
	return shape && shape->type == MPFS_ARRAY && arg1 && arg1->type == MPFS_ARRAY &&
	       arg1->len == 3 && arg1->items;
}

static enum mpfs_codec_err build(struct builder *b, struct mpfs_node *n, const struct mpfs_val *v,
				 bool want_array, bool want_csr, const struct ctx *ctx);

/* Hands out the next count node slots (already zeroed) as n's children. */
static enum mpfs_codec_err alloc_children(struct builder *b, struct mpfs_node *n, uint32_t count)
{
	/* Every entry but the root shows a distinct value that is not a map
	 * key, so doc->nvalues - 1 slots are always enough. */
	if (count > b->cap - b->used)
		return mpfs_error_set(b->err, MPFS_E_NOMEM, n->val->off,
				      "internal error: more entries than values");
	n->children = count ? b->m->nodes + b->used : NULL;
	n->nchildren = count;
	b->used += count;
	b->m->nnodes = (uint32_t)(b->used + 1);
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
		const struct mpfs_val *type = types_of(b, ctx, key);
		bool array = type && mpfs_val_is(b->doc, type, "ndarray");
		bool csr = type && mpfs_val_is(b->doc, type, "csr_matrix");
		struct ctx sub = *ctx;

		if (model && mpfs_val_is(b->doc, key, "weights"))
			sub.weights = true;
		n->children[i].key = key;
		if (build(b, &n->children[i], &v->items[2 * i + 1], sub.weights || array, csr,
			  &sub))
			return b->err->code;
	}
	return MPFS_OK;
}

/* The map's own keys, with arg1 replaced in place by its three arrays. */
static enum mpfs_codec_err build_csr(struct builder *b, struct mpfs_node *n, const struct ctx *ctx)
{
	const struct mpfs_val *v = n->val;
	const struct mpfs_val *arg1 = map_get(b, v, "arg1"); /* the first arg1 */
	uint32_t at = 0;

	n->kind = MPFS_N_CSR;
	if (alloc_children(b, n, v->len + 2))
		return b->err->code;
	for (uint32_t i = 0; i < v->len; i++) {
		const struct mpfs_val *key = &v->items[2 * i], *val = &v->items[2 * i + 1];

		if (val != arg1) {
			n->children[at].key = key;
			if (build(b, &n->children[at++], val, false, false, ctx))
				return b->err->code;
			continue;
		}
		for (int j = 0; j < 3; j++) {
			n->children[at].label = (uint8_t)(MPFS_L_DATA + j);
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

/* An entry of a kind with an array (mpfs_node_has_array). */
static enum mpfs_codec_err build_leaf(struct builder *b, struct mpfs_node *n,
				      const struct mpfs_array *a, enum mpfs_node_kind kind)
{
	struct mpfs_array *copy = malloc(sizeof(*copy));
	const struct mpfs_val *m = a->encoding == MPFS_ENC_COMPACT ? a->src : NULL;

	for (uint32_t i = 0; m && i < m->len; i++)
		if (mpfs_val_is(b->doc, &m->items[2 * i], "nd")) {
			b->m->nbin_keyed += m->items[2 * i].type == MPFS_BIN;
			break;
		}

	if (!copy)
		return mpfs_error_set(b->err, MPFS_E_NOMEM, n->val->off, "out of memory");
	*copy = *a;
	n->array = copy;
	n->kind = (uint8_t)kind; /* with array set: mpfs_model_destroy frees it */
	return MPFS_OK;
}

static enum mpfs_codec_err build_array(struct builder *b, struct mpfs_node *n,
				       const struct mpfs_array *a)
{
	if (build_leaf(b, n, a, MPFS_N_ARRAY))
		return b->err->code;
	b->m->narrays[a->encoding]++;
	return MPFS_OK;
}

static enum mpfs_codec_err build_model(struct builder *b, struct mpfs_node *n)
{
	const struct mpfs_val *types = map_get(b, n->val, "types");
	struct ctx model = {0};
	enum mpfs_codec_err rc;

	if (types && types->type == MPFS_MAP) {
		struct mpfs_types_index *ix = NULL;
		if (index_types(b, types, &ix))
			return b->err->code;
		model.types = ix;
	}
	rc = build_map(b, n, &model, true);
	index_free(b, (struct mpfs_types_index *)model.types);
	return rc;
}

static enum mpfs_codec_err build(struct builder *b, struct mpfs_node *n, const struct mpfs_val *v,
				 bool want_array, bool want_csr, const struct ctx *ctx)
{
	struct mpfs_array a;

	n->val = v;
	b->m->work++;
	switch (v->type) {
	case MPFS_MAP:
		b->m->work += v->len; /* mpfs_array_is_compact looks for "nd" */
		if (mpfs_array_is_compact(b->doc, v)) {
			if (mpfs_numpy_is_pickled(b->doc, v)) { /* shown, never unpickled */
				if (mpfs_numpy_pickled(b->doc, v, &a, b->err))
					return b->err->code;
				return build_leaf(b, n, &a, MPFS_N_PICKLE);
			}
			if (mpfs_array_compact(b->doc, v, &a, b->err))
				return b->err->code;
			return build_array(b, n, &a);
		}
		/* Complex and long double numbers have no exact JSON: such a
		 * scalar is a 0-d array. */
		if (n != &b->m->root && mpfs_numpy_scalar(b->doc, v, &a))
			return a.descr[1] == 'c' || a.itemsize > 8
				       ? build_array(b, n, &a)
				       : build_leaf(b, n, &a, MPFS_N_SCALAR);
		if (is_csr(b, v, want_csr))
			return build_csr(b, n, ctx);
		const struct mpfs_val *cls = map_get(b, v, "class_name");
		if (n == &b->m->root || (cls && mpfs_val_text(b->doc, cls))) /* a model */
			return build_model(b, n);
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

enum mpfs_codec_err mpfs_model_init(struct mpfs_model *m, const uint8_t *buf, size_t size,
				    struct mpfs_error *err)
{
	struct builder b = {.m = m, .doc = &m->doc, .err = err};
	struct mpfs_scalar_bound outer;
	enum mpfs_codec_err rc;

	memset(m, 0, sizeof(*m));
	if (mpfs_doc_init(&m->doc, buf, size, err))
		return err->code;
	if (m->doc.root.type != MPFS_MAP) {
		mpfs_error_set(err, MPFS_E_NOT_MAP, 0, "the top-level value is %s, not a map",
			       m->doc.root.type == MPFS_ARRAY ? "an array" : "a scalar");
		goto out_destroy;
	}
	if (m->doc.nvalues > UINT32_MAX) {
		mpfs_error_set(err, MPFS_E_NOMEM, 0, "more than %u values", UINT32_MAX - 1);
		goto out_destroy;
	}
	b.cap = m->doc.nvalues - 1;
	m->nodes = calloc(b.cap ? b.cap : 1, sizeof(*m->nodes));
	if (!m->nodes) {
		mpfs_error_set(err, MPFS_E_NOMEM, 0, "out of memory");
		goto out_destroy;
	}
	m->nnodes = 1;
	/* Walks of leaf arrays (compact shapes) stay inside buf. */
	mpfs_scalar_bound(buf, size, &outer);
	rc = build(&b, &m->root, &m->doc.root, false, false, &(struct ctx){0});
	mpfs_scalar_unbound(&outer);
	if (rc)
		goto out_destroy;
	return MPFS_OK;

out_destroy:
	mpfs_model_destroy(m);
	return err->code;
}

void mpfs_model_destroy(struct mpfs_model *m)
{
	for (uint32_t id = 1; id < m->nnodes; id++)
		if (mpfs_node_has_array(&m->nodes[id - 1]))
			free(m->nodes[id - 1].array);
	if (mpfs_node_has_array(&m->root)) /* never: the root is a map */
		free(m->root.array);
	free(m->nodes);
	while (m->indexes) {
		struct mpfs_types_index *next = m->indexes->next;
		free(m->indexes);
		m->indexes = next;
	}
	mpfs_doc_destroy(&m->doc);
	memset(m, 0, sizeof(*m));
}
