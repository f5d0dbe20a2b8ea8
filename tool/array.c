/* The numbers of an array file: dtype and shape from its xattrs, elements
 * from the NPY bytes the mount serves (parsed by codec/npy.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/npy.h"
#include "tool/tool.h"

int mpfs_tool_array_load(struct mpfs_fs *fs, const char *path, char **bytes,
			 struct mpfs_tool_array *a)
{
	struct mpfs_array arr;
	struct mpfs_error err;
	size_t len;
	long n;
	int rc;

	memset(a, 0, sizeof(*a));
	*bytes = NULL;
	/* A pickled object array is raw bytes, never parsed (or unpickled). */
	char enc[16];
	n = mpfs_fs_getxattr(fs, path, "user.mpfs.encoding", enc, sizeof(enc) - 1);
	if (n == 6 && !memcmp(enc, "pickle", 6))
		return -ENODATA;
	n = mpfs_fs_getxattr(fs, path, "user.mpfs.dtype", a->dtype, sizeof(a->dtype) - 1);
	if (n < 0)
		return (int)n;
	a->dtype[n] = '\0';
	n = mpfs_fs_getxattr(fs, path, "user.mpfs.shape", a->shape, sizeof(a->shape) - 1);
	if (n < 0)
		return (int)n;
	a->shape[n] = '\0';
	rc = mpfs_tool_read(fs, path, bytes, &len);
	if (rc)
		return rc;
	if (mpfs_npy_parse((const uint8_t *)*bytes, len, &arr, &a->data, &a->copy, &err)) {
		free(*bytes);
		*bytes = NULL;
		return -EINVAL;
	}
	a->count = arr.count;
	a->itemsize = arr.itemsize;
	a->kind = arr.descr[1];
	snprintf(a->dtype, sizeof(a->dtype), "%s", arr.descr);
	return 0;
}

void mpfs_tool_array_free(char *bytes, struct mpfs_tool_array *a)
{
	free(bytes);
	free(a->copy);
	a->copy = NULL;
}

static double half(uint16_t h)
{
	int e = (h >> 10) & 0x1f, m = h & 0x3ff;
	double v = e == 0    ? ldexp(m, -24)
		   : e == 31 ? (m ? NAN : INFINITY)
			     : ldexp(m + 1024, e - 25);
	return h & 0x8000 ? -v : v;
}

/* The size-byte number at p, in the array's byte order, as a double. */
static double number(char byteorder, char kind, unsigned size, const uint8_t *p)
{
	uint8_t b[8];
	union {
		uint8_t b[8];
		int8_t i1;
		int16_t i2;
		int32_t i4;
		int64_t i8;
		uint8_t u1;
		uint16_t u2;
		uint32_t u4;
		uint64_t u8;
		float f4;
		double f8;
	} u;

	for (unsigned i = 0; i < size; i++)
		b[i] = byteorder == '>' ? p[size - 1 - i] : p[i];
	memcpy(u.b, b, size);
	switch (kind) {
	case 'b': return u.u1 != 0;
	case 'i': return size == 1 ? u.i1 : size == 2 ? u.i2 : size == 4 ? u.i4 : (double)u.i8;
	case 'u': return size == 1 ? u.u1 : size == 2 ? u.u2 : size == 4 ? u.u4 : (double)u.u8;
	default: return size == 2 ? half(u.u2) : size == 4 ? u.f4 : u.f8;
	}
}

bool mpfs_tool_array_numeric(const struct mpfs_tool_array *a)
{
	switch (a->kind) {
	case 'b':
	case 'i':
	case 'u': return a->itemsize <= 8;
	case 'f': return a->itemsize == 2 || a->itemsize == 4 || a->itemsize == 8;
	case 'c': return a->itemsize == 8 || a->itemsize == 16;
	default: return false; /* strings, times, long doubles: bytes only */
	}
}

double mpfs_tool_array_at(const struct mpfs_tool_array *a, uint64_t i)
{
	const uint8_t *p = a->data + i * a->itemsize;

	if (!mpfs_tool_array_numeric(a))
		return NAN;
	if (a->kind == 'c')
		return number(a->dtype[0], 'f', a->itemsize / 2u, p);
	return number(a->dtype[0], a->kind, a->itemsize, p);
}

double mpfs_tool_array_imag(const struct mpfs_tool_array *a, uint64_t i)
{
	const uint8_t *p = a->data + i * a->itemsize;

	if (a->kind != 'c' || !mpfs_tool_array_numeric(a))
		return 0;
	return number(a->dtype[0], 'f', a->itemsize / 2u, p + a->itemsize / 2u);
}

void mpfs_tool_hash(const void *p, size_t n, char out[17])
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}
