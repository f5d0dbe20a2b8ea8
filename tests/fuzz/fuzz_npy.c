/* Fuzz target: any bytes as the new content of an array file (the .npy
 * writer path of fs/edit.c). mpfs_npy_parse must never crash, read past the
 * file or trust a declared size; what it accepts is encoded as nested lists
 * (over a seed-style array), as a compact map (over an old one, and new),
 * and each encoding either refuses, writing nothing, or decodes back to the
 * very same array: nested lists with the same shape and dtype (byte order
 * aside), compact maps exactly. Output stays bounded by the data.
 * Built with libFuzzer by tests/fuzz/run.sh; replayed over
 * tests/fuzz/npy-corpus as an ordinary test (replay.c). */
#include <stdlib.h>
#include <string.h>

#include "codec/array.h"
#include "codec/encode.h"
#include "codec/npy.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

/* [1.5, 1]: a seed-style array of the old archive */
static const uint8_t nested_bytes[] = {0x92, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x01};
/* {"nd": true, "type": "<f8", "kind": "", "shape": [1], "data": bin(8)} */
static const uint8_t compact_bytes[] = {
	0x85, 0xa2, 'n', 'd', 0xc3, 0xa4, 't',	'y', 'p', 'e', 0xa3, '<', 'f',	'8',  0xa4,
	'k',  'i',  'n', 'd', 0xc4, 0,	  0xa5, 's', 'h', 'a', 'p',  'e', 0x91, 0x01, 0xa4,
	'd',  'a',  't', 'a', 0xc4, 8,	  0,	0,   0,	  0,   0,    0,	  0xf0, 0x3f, /* 1.0 */
};

static struct mpfs_doc nested_doc, compact_doc;
static struct mpfs_array nested_old, compact_old;

static void setup(void)
{
	static bool done;
	struct mpfs_error err;

	if (done)
		return;
	done = true;
	CHECK(mpfs_doc_init(&nested_doc, nested_bytes, sizeof(nested_bytes), &err) == MPFS_OK);
	CHECK(mpfs_array_nested(&nested_doc.root, &nested_old));
	CHECK(mpfs_doc_init(&compact_doc, compact_bytes, sizeof(compact_bytes), &err) == MPFS_OK);
	CHECK(mpfs_array_compact(&compact_doc, &compact_doc.root, &compact_old, &err) == MPFS_OK);
}

/* The n elements of a in x and y (little-endian) hold the same values:
 * bools by truth (numpy reads any nonzero byte as True), float32 NaNs as
 * NaNs (a signalling one is quieted on its way through a double), all else
 * bit for bit. */
static bool same_values(const struct mpfs_array *a, const uint8_t *x, const uint8_t *y)
{
	for (uint64_t i = 0; i < a->count; i++, x += a->itemsize, y += a->itemsize) {
		float f, g;
		if (a->descr[1] == 'b') {
			if (!*x != !*y)
				return false;
		} else if (a->descr[1] == 'f' && a->itemsize == 4) {
			memcpy(&f, x, 4);
			memcpy(&g, y, 4);
			if (!(f != f && g != g) && memcmp(x, y, 4))
				return false;
		} else if (memcmp(x, y, a->itemsize)) {
			return false;
		}
	}
	return true;
}

static bool same_shape(const struct mpfs_array *a, const struct mpfs_array *b)
{
	return a->ndim == b->ndim && !memcmp(a->shape, b->shape, a->ndim * sizeof(a->shape[0]));
}

/* Encodes a over old (NULL: a new compact map); checks the refusal or the
 * value decoded back. le: the data little-endian. */
static void encode(const struct mpfs_doc *doc, const struct mpfs_array *old,
		   const struct mpfs_array *a, const uint8_t *data, const uint8_t *le)
{
	struct mpfs_strbuf out;
	struct mpfs_error err = {0};
	struct mpfs_doc back;
	struct mpfs_array b;
	enum mpfs_codec_err rc;

	mpfs_strbuf_init(&out);
	rc = mpfs_encode_array(doc, old, a, data, &out, &err);
	if (rc) {
		CHECK(rc == MPFS_E_ARRAY || rc == MPFS_E_DTYPE || rc == MPFS_E_NOMEM);
		CHECK(err.code == rc && err.msg[0] && out.len == 0);
		mpfs_strbuf_destroy(&out);
		return;
	}
	CHECK(!out.oom && out.len);
	/* bounded by the data: each element at most 9 bytes, each list header
	 * at most 5 and charged to an element, or to the bound on empty ones;
	 * a compact map is its data plus a header of at most 1 KiB */
	CHECK(out.len <= 1024 + 5 * (uint64_t)(MPFS_NESTED_EMPTY_LISTS + 1) +
				 (9 + 5 * (uint64_t)a->ndim) * a->count + a->nbytes);
	CHECK(mpfs_doc_init(&back, (const uint8_t *)out.p, out.len, &err) == MPFS_OK);
	if (old && old->encoding == MPFS_ENC_NESTED) {
		uint8_t *filled = malloc(a->nbytes ? a->nbytes : 1);
		CHECK(filled);
		CHECK(mpfs_array_nested(&back.root, &b));
		CHECK(!strcmp(b.descr + 1, a->descr + 1) && same_shape(a, &b));
		CHECK(b.count == a->count && b.nbytes == a->nbytes);
		mpfs_array_fill(&back, &b, filled);
		CHECK(same_values(a, filled, le));
		free(filled);
	} else {
		CHECK(mpfs_array_compact(&back, &back.root, &b, &err) == MPFS_OK);
		CHECK(!strcmp(b.descr, a->descr) && same_shape(a, &b));
		CHECK(b.nbytes == a->nbytes && !memcmp(back.buf + b.data_off, data, a->nbytes));
	}
	mpfs_doc_destroy(&back);
	mpfs_strbuf_destroy(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t size)
{
	struct mpfs_array a, sized;
	struct mpfs_error err = {0};
	const uint8_t *data;
	uint8_t *copy, *file, *le;

	setup();
	/* The file in its own allocation, so reading past it is caught. */
	file = malloc(size ? size : 1);
	CHECK(file);
	if (size)
		memcpy(file, buf, size);
	if (mpfs_npy_parse(file, size, &a, &data, &copy, &err)) {
		CHECK(err.msg[0] && err.off <= size);
		CHECK(err.code == MPFS_E_ARRAY || err.code == MPFS_E_DTYPE ||
		      err.code == MPFS_E_NOMEM);
		free(file);
		return 0;
	}
	/* What parses is an array numpy makes, whose data is in the file. */
	sized = a;
	CHECK(mpfs_array_sized(&sized) && sized.count == a.count && sized.nbytes == a.nbytes);
	CHECK(a.nbytes <= size && (copy ? data == copy : data == file + size - a.nbytes));
	le = malloc(a.nbytes ? a.nbytes : 1);
	CHECK(le);
	if (a.descr[0] == '>')
		mpfs_array_swap(&a, data, le);
	else if (a.nbytes)
		memcpy(le, data, a.nbytes);

	encode(&nested_doc, &nested_old, &a, data, le);
	encode(&compact_doc, &compact_old, &a, data, le);
	encode(&nested_doc, NULL, &a, data, le);

	free(le);
	free(copy);
	free(file);
	return 0;
}
