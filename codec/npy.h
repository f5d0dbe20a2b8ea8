/* NPY format v1.0 headers (numpy/lib/format.py, NEP 1). */
#ifndef MPFS_CODEC_NPY_H
#define MPFS_CODEC_NPY_H

#include <stddef.h>

#include "codec/array.h"

/* Big enough for any header of an array of MPFS_MAX_DIMS dimensions. */
#define MPFS_NPY_HEADER_MAX 1024

/* Writes the complete header (magic, version, length, dict, padding) for a
 * into out and returns its length, a multiple of 64 so the data that follows
 * is aligned as numpy itself writes it. */
size_t mpfs_npy_header(const struct mpfs_array *a, char out[MPFS_NPY_HEADER_MAX]);

#endif
