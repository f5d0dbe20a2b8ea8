/* Fuzz target: any bytes as an archive. Decoding and classifying must never
 * crash or leak, and what succeeds must keep the codec's promises:
 *  - re-encoding with no edits gives the input back, byte for byte;
 *  - every text file's JSON parses back (with the old value kept in mind);
 *  - every nested array fills exactly its size; every NPY header parses.
 * Built with libFuzzer by tests/fuzz/run.sh; replayed over tests/fuzz/corpus
 * and the shared fixtures as an ordinary test (replay.c). */
#include <stdlib.h>
#include <string.h>

#include "codec/encode.h"
#include "codec/json.h"
#include "codec/model.h"
#include "codec/npy.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

struct sink {
	const uint8_t *want;
	size_t n, at;
};

static int compare(void *ctx, const void *buf, size_t n)
{
	struct sink *s = ctx;
	CHECK(s->at + n <= s->n && !memcmp(s->want + s->at, buf, n));
	s->at += n;
	return 0;
}

static void check_node(const struct mpfs_doc *doc, const struct mpfs_node *n)
{
	struct mpfs_strbuf text, back;
	struct mpfs_error err;

	switch (n->kind) {
	case MPFS_N_TEXT:
		mpfs_strbuf_init(&text);
		mpfs_strbuf_init(&back);
		mpfs_json_render(doc, n->val, &text);
		if (!text.oom)
			CHECK(mpfs_encode_json(doc, n->val, text.p, text.len, &back, &err) ==
				      MPFS_OK ||
			      err.code == MPFS_E_NOMEM);
		mpfs_strbuf_destroy(&text);
		mpfs_strbuf_destroy(&back);
		break;
	case MPFS_N_ARRAY: {
		char hdr[MPFS_NPY_HEADER_MAX];
		size_t hl = mpfs_npy_header(n->array, hdr), at;
		struct mpfs_array a;
		const uint8_t *elems;
		uint8_t *copy, *file;

		CHECK(hl % 64 == 0);
		if (n->array->nbytes > (1u << 20))
			break; /* big, and already checked against the bytes present */
		file = malloc(hl + n->array->nbytes + 1);
		CHECK(file);
		memcpy(file, hdr, hl);
		if (n->array->encoding == MPFS_ENC_NESTED)
			mpfs_array_fill(doc, n->array, file + hl);
		else
			memcpy(file + hl, doc->buf + n->array->data_off, n->array->nbytes);
		CHECK(mpfs_npy_parse((uint8_t *)file, hl + n->array->nbytes, &a, &elems, &copy,
				     &err) == MPFS_OK);
		CHECK(a.nbytes == n->array->nbytes && !strcmp(a.descr, n->array->descr));
		(void)at;
		free(copy);
		free(file);
		break;
	}
	default:
		for (uint32_t i = 0; i < n->nchildren; i++)
			check_node(doc, &n->children[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mpfs_model m;
	struct mpfs_error err;
	struct sink s = {data, size, 0};

	if (mpfs_model_init(&m, data, size, &err)) {
		CHECK(err.msg[0] && err.off <= size);
		return 0;
	}
	CHECK(mpfs_encode_doc(&m.doc, NULL, 0, compare, &s) == 0 && s.at == size);
	check_node(&m.doc, &m.root);
	mpfs_model_destroy(&m);
	return 0;
}
