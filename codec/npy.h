/* NPY format v1.0 headers (numpy/lib/format.py, NEP 1). */
#ifndef MPFS_CODEC_NPY_H
#define MPFS_CODEC_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "codec/value.h"

#include "codec/array.h"

/* Big enough for any header of an array of MPFS_MAX_DIMS dimensions. */
#define MPFS_NPY_HEADER_MAX 1024

/* Writes the complete header (magic, version, length, dict, padding) for a
 * into out and returns its length, a multiple of 64 so the data that follows
 * is aligned as numpy itself writes it. */
size_t mpfs_npy_header(const struct mpfs_array *a, char out[MPFS_NPY_HEADER_MAX]);

/* Enough of an NPY file's start for any header mpfs_npy_parse accepts. */
#define MPFS_NPY_HEAD_MAX (12 + 65536)

/* Parses the header of an NPY file of len bytes, of which buf holds the
 * first avail (at least min(len, MPFS_NPY_HEAD_MAX) for a verdict), into *a
 * (src and data_off unset), with the data's offset in *data_off and its
 * order in *fortran. Fails as mpfs_npy_parse does for a broken header or a
 * data size that does not match it: the data itself is not needed. */
enum mpfs_codec_err mpfs_npy_parse_header(const uint8_t *buf, size_t avail, uint64_t len,
					  struct mpfs_array *a, size_t *data_off, bool *fortran,
					  struct mpfs_error *err);

/* Parses a whole NPY file (v1, v2 or v3 header) into *a (src and data_off
 * unset) and points *data at its elements in C order: into buf, or for a
 * Fortran-order file into a reordered copy, returned in *copy for the
 * caller to free (NULL otherwise). Fails with MPFS_E_ARRAY or MPFS_E_DTYPE
 * when the header is broken or the data size does not match it, and with
 * MPFS_E_NOMEM. */
enum mpfs_codec_err mpfs_npy_parse(const uint8_t *buf, size_t len, struct mpfs_array *a,
				   const uint8_t **data, uint8_t **copy, struct mpfs_error *err);

#endif
