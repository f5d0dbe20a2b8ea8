#include "codec/npy.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define NPY_PREAMBLE 10 /* magic (6), version (2), header length (2) */
#define NPY_ALIGN 64

size_t mpfs_npy_header(const struct mpfs_array *a, char out[MPFS_NPY_HEADER_MAX])
{
	char *dict = out + NPY_PREAMBLE;
	size_t cap = MPFS_NPY_HEADER_MAX - NPY_PREAMBLE;
	size_t n, total;

	n = (size_t)snprintf(dict, cap, "{'descr': '%s', 'fortran_order': False, 'shape': (",
			     a->descr);
	for (unsigned d = 0; d < a->ndim; d++)
		n += (size_t)snprintf(dict + n, cap - n, "%s%" PRIu64, d ? ", " : "", a->shape[d]);
	n += (size_t)snprintf(dict + n, cap - n, "%s), }", a->ndim == 1 ? "," : "");

	/* Pad with spaces and end with a newline so data starts aligned. */
	total = (NPY_PREAMBLE + n + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
	memset(dict + n, ' ', total - NPY_PREAMBLE - n - 1);
	out[total - 1] = '\n';

	memcpy(out, "\x93NUMPY\x01\x00", 8);
	out[8] = (char)((total - NPY_PREAMBLE) & 0xff);
	out[9] = (char)((total - NPY_PREAMBLE) >> 8);
	return total;
}
