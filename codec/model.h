/* The model tree: an archive's values classified as the mount shows them
 * (directories, text, arrays, raw bytes), following the rules of the design
 * brief §2-3. Knows nothing of names or paths: fs/ names the entries. */
#ifndef MPFS_CODEC_MODEL_H
#define MPFS_CODEC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "codec/array.h"
#include "codec/value.h"

enum mpfs_node_kind {
	MPFS_N_MAP,   /* directory: one entry per key */
	MPFS_N_LIST,  /* directory: entries 0, 1, ... (list of arrays, maps, bins) */
	MPFS_N_CSR,   /* directory: the map's keys, arg1 shown as its three arrays */
	MPFS_N_TEXT,  /* file: a scalar or a plain list as JSON */
	MPFS_N_ARRAY, /* file: NPY or raw bytes */
	MPFS_N_BYTES, /* file: payload of a bin, an ext, or a str that is not UTF-8 */
	/* file: a numpy scalar ({nd: false, type, data}) as JSON; array says
	 * where its one item lies (codec/numpy.h) */
	MPFS_N_SCALAR,
	/* file, read-only: the pickle of an object array (kind 'O'), its bytes
	 * as stored, never unpickled; array says where they lie */
	MPFS_N_PICKLE,
};

/* Labels of the entries that stand for arg1's members in a csr_matrix. */
enum mpfs_node_label {
	MPFS_L_NONE,
	MPFS_L_DATA,
	MPFS_L_INDICES,
	MPFS_L_INDPTR,
};

/* One entry of the tree: 32 bytes, since an archive of N small values has
 * N of them (see docs/performance.md). */
struct mpfs_node {
	const struct mpfs_val *key; /* entries of a map: the key; else NULL */
	const struct mpfs_val *val; /* the value shown */
	union {
		/* Directories: nchildren entries, contiguous in the model's node
		 * array (an entry's index is its offset from children). */
		struct mpfs_node *children;
		/* MPFS_N_ARRAY, MPFS_N_SCALAR, MPFS_N_PICKLE: owned by the model */
		struct mpfs_array *array;
	};
	uint32_t nchildren; /* 0 for files */
	uint8_t kind;	    /* enum mpfs_node_kind */
	uint8_t label;	    /* csr members: enum mpfs_node_label; else MPFS_L_NONE */
};

struct mpfs_types_index;

struct mpfs_model {
	struct mpfs_doc doc;
	struct mpfs_node root; /* id 0 */
	/* Entries 1..nnodes-1 at nodes[id - 1]: each directory's children
	 * are one block, numbered when their directory is classified. */
	struct mpfs_node *nodes;
	uint32_t nnodes;
	uint32_t narrays[2]; /* arrays by enum mpfs_encoding */
	/* Compact maps (arrays, numpy scalars, pickles) with a bin "nd" key,
	 * as msgpack-numpy writes them (it writes b'nd'). */
	uint32_t nbin_keyed;
	/* Work done classifying: values visited plus keys compared, for the
	 * tests that check it grows linearly with the archive. */
	uint64_t work;
	/* Indexes of the types maps being used: freed by mpfs_model_destroy
	 * if classifying was cut short (a SIGBUS from a truncated mapping). */
	struct mpfs_types_index *indexes;
};

/* Decodes and classifies the archive buf[0..size), which must outlive the
 * model. The top level must be a map. On failure fills *err (one line, with
 * the byte offset) and returns its code with nothing to release.
 *
 * Reads of buf are bounded by size. If a read of buf may fault (a mapping
 * whose file was truncated), run this under a guard that longjmps out; the
 * model is then left partly built, and mpfs_model_destroy frees it. */
enum mpfs_codec_err mpfs_model_init(struct mpfs_model *m, const uint8_t *buf, size_t size,
				    struct mpfs_error *err);
/* Frees a model built by mpfs_model_init, or one cut short (see there). */
void mpfs_model_destroy(struct mpfs_model *m);

/* The entry numbered id (0 <= id < m->nnodes), and the number of an entry. */
static inline const struct mpfs_node *mpfs_model_node(const struct mpfs_model *m, uint32_t id)
{
	return id ? &m->nodes[id - 1] : &m->root;
}

static inline uint32_t mpfs_model_id(const struct mpfs_model *m, const struct mpfs_node *n)
{
	return n == &m->root ? 0 : (uint32_t)(n - m->nodes) + 1;
}

/* "data", "indices" or "indptr" for the members of a csr_matrix; else NULL. */
static inline const char *mpfs_node_label(const struct mpfs_node *n)
{
	static const char *const labels[] = {NULL, "data", "indices", "indptr"};
	return labels[n->label];
}

/* True for the kinds whose array field is set. */
static inline bool mpfs_node_has_array(const struct mpfs_node *n)
{
	return n->kind == MPFS_N_ARRAY || n->kind == MPFS_N_SCALAR || n->kind == MPFS_N_PICKLE;
}

static inline bool mpfs_node_is_dir(const struct mpfs_node *n)
{
	return n->kind == MPFS_N_MAP || n->kind == MPFS_N_LIST || n->kind == MPFS_N_CSR;
}

#endif
