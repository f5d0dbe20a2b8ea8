/* The view, extended attributes: user.mpfs.key, dtype, shape, encoding
 * and ext, from the model (only the key reads the mapping). */
#include "fs/view_i.h"

#include <errno.h>
#include <string.h>

#include "codec/json.h"
#include "codec/strbuf.h"
#include "fs/guard.h"

/* Arrays and pickled object arrays have a shape and an encoding; numpy
 * scalars only a dtype. */
static bool has_shape(const struct mpfs_node *n)
{
	return n->kind == MPFS_N_ARRAY || n->kind == MPFS_N_PICKLE;
}

/* Reads the mapping (keys): run under the guard. */
static long xattr_value(struct mpfs_view *v, const struct mpfs_node *n, const char *name,
			struct mpfs_strbuf *out)
{
	char shape[MPFS_MAX_DIMS * 21];

	if (!strcmp(name, "user.mpfs.key") && n->key) {
		mpfs_json_render(&v->model.doc, n->key, out);
	} else if (mpfs_node_has_array(n) && !strcmp(name, "user.mpfs.dtype")) {
		if (swapped(v, n)) /* what the .bin file holds */
			mpfs_strbuf_add(out, "<", 1);
		mpfs_strbuf_puts(out, n->array->descr + swapped(v, n));
	} else if (has_shape(n) && !strcmp(name, "user.mpfs.shape")) {
		mpfs_array_shape_str(n->array, shape, sizeof(shape));
		mpfs_strbuf_puts(out, shape);
	} else if (has_shape(n) && !strcmp(name, "user.mpfs.encoding")) {
		mpfs_strbuf_puts(out, n->kind == MPFS_N_PICKLE		      ? "pickle"
				      : n->array->encoding == MPFS_ENC_NESTED ? "nested"
									      : "compact");
	} else if (n->val->type == MPFS_EXT && !strcmp(name, "user.mpfs.ext")) {
		mpfs_strbuf_printf(out, "%d", n->val->ext_type);
	} else {
		return -ENODATA;
	}
	return out->oom ? -ENOMEM : 0;
}

static long give(const char *val, size_t len, char *buf, size_t size)
{
	if (size == 0)
		return (long)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, val, len);
	return (long)len;
}

static const char *const xattr_names[] = {"user.mpfs.key", "user.mpfs.dtype", "user.mpfs.shape",
					  "user.mpfs.encoding", "user.mpfs.ext"};
#define NXATTRS (sizeof(xattr_names) / sizeof(xattr_names[0]))

/* Whether entry n has the i-th xattr: from the model alone, so listing
 * reads nothing of the mapping. (Checked against xattr_value by a test.) */
static bool has_xattr(const struct mpfs_node *n, size_t i)
{
	switch (i) {
	case 0: return n->key != NULL;
	case 1: return mpfs_node_has_array(n);
	case 2:
	case 3: return has_shape(n);
	default: return n->val->type == MPFS_EXT;
	}
}

struct xattr_call {
	struct mpfs_view *v;
	const struct mpfs_node *n;
	const char *name;
	struct mpfs_strbuf *out;
};

static int xattr_guarded(void *arg)
{
	struct xattr_call *c = arg;
	return (int)xattr_value(c->v, c->n, c->name, c->out);
}

long mpfs_view_getxattr(struct mpfs_view *v, uint32_t id, const char *name, char *buf, size_t size)
{
	struct mpfs_strbuf out;
	struct xattr_call c = {v, node_of(v, id), name, &out};
	struct mpfs_scalar_bound outer;
	long rc;

	mpfs_strbuf_init(&out);
	if (!strcmp(name, "user.mpfs.key")) { /* the only one that reads the mapping */
		if ((rc = intact(v)) == 0) {
			mpfs_scalar_bound(v->model.doc.buf, v->model.doc.size, &outer);
			rc = mpfs_guard_run(xattr_guarded, &c);
			mpfs_scalar_unbound(&outer);
		}
	} else {
		rc = xattr_value(v, c.n, name, &out);
	}
	if (rc == 0)
		rc = give(out.p ? out.p : "", out.len, buf, size);
	mpfs_strbuf_destroy(&out);
	return rc;
}

long mpfs_view_listxattr(struct mpfs_view *v, uint32_t id, char *buf, size_t size)
{
	const struct mpfs_node *n = node_of(v, id);
	char list[128];
	size_t len = 0;

	for (size_t i = 0; i < NXATTRS; i++) {
		if (!has_xattr(n, i))
			continue;
		memcpy(list + len, xattr_names[i], strlen(xattr_names[i]) + 1);
		len += strlen(xattr_names[i]) + 1;
	}
	return give(list, len, buf, size);
}
