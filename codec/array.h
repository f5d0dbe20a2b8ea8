/* Numeric arrays in either archive encoding: seed-style nested lists and
 * compact msgpack-numpy maps. */
#ifndef MPFS_CODEC_ARRAY_H
#define MPFS_CODEC_ARRAY_H

#include <stdint.h>

#include "codec/value.h"

#define MPFS_MAX_DIMS 32
/* The widest string dtype accepted: U of this many characters is 1 GiB. */
#define MPFS_MAX_STR_CHARS (1u << 28)

enum mpfs_encoding {
	MPFS_ENC_NESTED,
	MPFS_ENC_COMPACT,
};

struct mpfs_array {
	char descr[16]; /* NPY/numpy dtype string, e.g. "<f8", "|b1", "<U10" */
	uint32_t itemsize;
	uint8_t ndim;
	uint8_t encoding;	    /* enum mpfs_encoding */
	uint64_t count;		    /* number of elements */
	uint64_t nbytes;	    /* count * itemsize */
	uint64_t data_off;	    /* COMPACT: offset of the raw bytes in the archive */
	const struct mpfs_val *src; /* NESTED: the outer list; COMPACT: the map */
	uint64_t shape[MPFS_MAX_DIMS];
};

/* Fills *a if list v is a rectangular nested list of numbers (or of bools),
 * with the dtype rules of the design: bool if all bools; int64 if all ints,
 * uint64 when a value needs it; float32 if all are float32; else float64.
 * Returns false (a untouched) if v is no such array. */
bool mpfs_array_nested(const struct mpfs_val *v, struct mpfs_array *a);

/* True if map v is meant as a compact array ("nd" is true). */
bool mpfs_array_is_compact(const struct mpfs_doc *doc, const struct mpfs_val *v);

/* Fills *a from compact map v. Fails with MPFS_E_ARRAY or MPFS_E_DTYPE (err
 * names the offset) when the map is malformed, the dtype is not a plain
 * numeric one, or the data size does not match the shape. */
enum mpfs_codec_err mpfs_array_compact(const struct mpfs_doc *doc, const struct mpfs_val *v,
				       struct mpfs_array *a, struct mpfs_error *err);

/* Parses a numpy dtype string of a plain numeric type (b1, i1-i8, u1-u8,
 * f2-f8, c8/c16, any byte order) or a fixed-width string type (UN: N UCS-4
 * characters, SN: N bytes; 1 <= N <= MPFS_MAX_STR_CHARS) into a->descr and
 * a->itemsize. */
bool mpfs_array_parse_dtype(const uint8_t *s, size_t n, struct mpfs_array *a);

/* Sets a->count and a->nbytes from a's shape and itemsize, as numpy sizes
 * an array. Returns false when numpy could not make an array of that shape
 * and dtype: a dimension above INT64_MAX, or the product of the nonzero
 * dimensions times the itemsize above INT64_MAX (numpy checks this even
 * when another dimension is 0, so an empty array cannot declare anything). */
bool mpfs_array_sized(struct mpfs_array *a);

/* Writes the nbytes of nested array a, little-endian, C order, into out.
 * The document must be the one a was read from. Reads nothing past
 * doc->size whatever the bytes now say (elements that no longer decode
 * as numbers come out as zero, as mpfs_scalar_next() reads them). */
void mpfs_array_fill(const struct mpfs_doc *doc, const struct mpfs_array *a, uint8_t *out);

/* Rows of nested array a: its innermost lists, count / shape[ndim - 1]
 * (1 for a 1-d array; 0 for an empty one). */
uint64_t mpfs_array_rows(const struct mpfs_array *a);

/* mpfs_array_fill() of rows [first, first + n) only (clipped to the rows
 * there are), into out, which points at row first's bytes: calls on
 * disjoint ranges may run in parallel. */
void mpfs_array_fill_rows(const struct mpfs_doc *doc, const struct mpfs_array *a, uint64_t first,
			  uint64_t n, uint8_t *out);

/* mpfs_array_fill() with every element through the general decoder: the
 * reference the fast loops are tested against. */
void mpfs_array_fill_slow(const struct mpfs_doc *doc, const struct mpfs_array *a, uint8_t *out);

/* Copies the nbytes of a from src to dst with each number's bytes reversed
 * (big- to little-endian and back; complex numbers part by part). */
void mpfs_array_swap(const struct mpfs_array *a, const uint8_t *src, uint8_t *dst);

/* Writes shape as "256,128" (empty for 0-d) into out; returns the length. */
size_t mpfs_array_shape_str(const struct mpfs_array *a, char *out, size_t cap);

#endif
