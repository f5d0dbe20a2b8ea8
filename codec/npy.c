#include "codec/npy.h"
#include "codec/encode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_PREAMBLE 10 /* magic (6), version (2), header length (2) */
#define NPY_ALIGN    64

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

/* Finds 'key': in the header dict and returns the text after the colon. */
static const char *dict_value(const char *dict, size_t n, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i + kl + 2 < n; i++) {
		if ((dict[i] == '\'' || dict[i] == '"') && !memcmp(dict + i + 1, key, kl) &&
		    dict[i + 1 + kl] == dict[i]) {
			const char *p = dict + i + kl + 2;
			while (p < dict + n && (*p == ' ' || *p == ':'))
				p++;
			return p;
		}
	}
	return NULL;
}

/* Copies the elements of a Fortran-order (first index fastest) array into
 * out in C order (last index fastest). */
static void to_c_order(const struct mpfs_array *a, const uint8_t *f, uint8_t *out)
{
	uint64_t idx[MPFS_MAX_DIMS] = {0}, stride[MPFS_MAX_DIMS];

	stride[0] = a->itemsize;
	for (unsigned d = 1; d < a->ndim; d++)
		stride[d] = stride[d - 1] * a->shape[d - 1];
	for (uint64_t i = 0; i < a->count; i++) {
		uint64_t off = 0;
		for (unsigned d = 0; d < a->ndim; d++)
			off += idx[d] * stride[d];
		memcpy(out + i * a->itemsize, f + off, a->itemsize);
		for (unsigned d = a->ndim; d-- > 0;) { /* odometer, last index first */
			if (++idx[d] < a->shape[d])
				break;
			idx[d] = 0;
		}
	}
}

enum mpfs_codec_err mpfs_npy_parse_header(const uint8_t *buf, size_t avail, uint64_t len,
					  struct mpfs_array *a, size_t *data_off, bool *fortran,
					  struct mpfs_error *err)
{
	char dict[MPFS_NPY_HEAD_MAX - 12 + 1];
	size_t hl, start;
	const char *p, *end;

	memset(a, 0, sizeof(*a));
	if (avail > len)
		avail = (size_t)len;
	if (avail < NPY_PREAMBLE || memcmp(buf, "\x93NUMPY", 6))
		return mpfs_error_set(err, MPFS_E_ARRAY, 0, "not an NPY file (bad magic)");
	if (buf[6] == 1) {
		hl = buf[8] | (size_t)buf[9] << 8;
		start = 10;
	} else if ((buf[6] == 2 || buf[6] == 3) && avail >= 12) {
		hl = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
		start = 12;
	} else {
		return mpfs_error_set(err, MPFS_E_ARRAY, 6, "NPY version %u.%u not supported",
				      buf[6], buf[7]);
	}
	if (hl > avail - start || hl > sizeof(dict) - 1)
		return mpfs_error_set(err, MPFS_E_ARRAY, 8, "NPY header longer than the file");
	memcpy(dict, buf + start, hl);
	dict[hl] = '\0';
	end = dict + hl;

	p = dict_value(dict, hl, "descr");
	if (!p || (*p != '\'' && *p != '"'))
		return mpfs_error_set(err, MPFS_E_ARRAY, start, "NPY header: no 'descr' string");
	const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
	if (!q || !mpfs_array_parse_dtype((const uint8_t *)p + 1, (size_t)(q - p - 1), a))
		return mpfs_error_set(err, MPFS_E_DTYPE, start,
				      "NPY header: descr is not a plain numeric dtype");
	p = dict_value(dict, hl, "fortran_order");
	if (!p || (strncmp(p, "False", 5) && strncmp(p, "True", 4)))
		return mpfs_error_set(err, MPFS_E_ARRAY, start,
				      "NPY header: fortran_order must be True or False");
	*fortran = *p == 'T';
	p = dict_value(dict, hl, "shape");
	if (!p || *p != '(')
		return mpfs_error_set(err, MPFS_E_ARRAY, start, "NPY header: no 'shape' tuple");
	for (p++;;) {
		char *e;
		unsigned long long d;

		while (*p == ' ' || *p == ',')
			p++;
		if (*p == ')')
			break;
		if (*p < '0' || *p > '9' || a->ndim == MPFS_MAX_DIMS)
			return mpfs_error_set(err, MPFS_E_ARRAY, start, "NPY header: bad shape");
		errno = 0;
		d = strtoull(p, &e, 10);
		if (errno)
			return mpfs_error_set(err, MPFS_E_ARRAY, start,
					      "NPY header: shape overflows");
		a->shape[a->ndim++] = d;
		p = e;
	}
	/* numpy's own limit, zero dimensions or not: a shape of 2^63 bytes
	 * or more is no array numpy makes, and nothing may loop over it */
	if (!mpfs_array_sized(a))
		return mpfs_error_set(err, MPFS_E_ARRAY, start,
				      "NPY header: shape overflows (2^63 bytes or more, counting "
				      "only nonzero dimensions)");
	if (a->nbytes != len - start - hl)
		return mpfs_error_set(
			err, MPFS_E_ARRAY, start + hl,
			"NPY data is %llu bytes, the header's shape and dtype need %llu",
			(unsigned long long)(len - start - hl), (unsigned long long)a->nbytes);
	*data_off = start + hl;
	return MPFS_OK;
}

enum mpfs_codec_err mpfs_npy_parse(const uint8_t *buf, size_t len, struct mpfs_array *a,
				   const uint8_t **data, uint8_t **copy, struct mpfs_error *err)
{
	enum mpfs_codec_err rc;
	size_t off;
	bool fortran;

	if ((rc = mpfs_npy_parse_header(buf, len, len, a, &off, &fortran, err)))
		return rc;
	*data = buf + off;
	*copy = NULL;
	if (fortran && a->ndim > 1) {
		*copy = malloc(a->nbytes ? a->nbytes : 1);
		if (!*copy)
			return mpfs_error_set(err, MPFS_E_NOMEM, 0, "out of memory");
		to_c_order(a, *data, *copy);
		*data = *copy;
	}
	return MPFS_OK;
}
