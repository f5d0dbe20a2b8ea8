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
};

struct mpfs_node {
	const struct mpfs_val *key; /* entries of a map: the key; else NULL */
	const struct mpfs_val *val; /* the value shown */
	const char *label;	    /* csr members: "data", "indices", "indptr" */
	struct mpfs_node *children; /* directories: nchildren entries */
	struct mpfs_array *array;   /* MPFS_N_ARRAY */
	uint32_t nchildren;
	uint32_t id;  /* dense 0..nnodes-1, root is 0 */
	uint8_t kind; /* enum mpfs_node_kind */
};

struct mpfs_types_index;

struct mpfs_model {
	struct mpfs_doc doc;
	struct mpfs_node root;
	uint32_t nnodes;
	uint32_t narrays[2]; /* arrays by enum mpfs_encoding */
	/* Work done classifying: values visited plus keys compared, for the
	 * tests that check it grows linearly with the archive. */
	uint64_t work;
	struct mpfs_types_index *indexes; /* the types maps being used */
};

/* Decodes and classifies the archive buf[0..size), which must outlive the
 * model. The top level must be a map. On failure fills *err (one line, with
 * the byte offset) and returns its code with nothing to release. */
enum mpfs_codec_err mpfs_model_init(struct mpfs_model *m, const uint8_t *buf, size_t size,
				    struct mpfs_error *err);
void mpfs_model_destroy(struct mpfs_model *m);

static inline bool mpfs_node_is_dir(const struct mpfs_node *n)
{
	return n->kind == MPFS_N_MAP || n->kind == MPFS_N_LIST || n->kind == MPFS_N_CSR;
}

#endif
