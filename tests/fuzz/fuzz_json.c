/* Fuzz target: any bytes as the new content of a text file. The JSON parser
 * must never crash or read past the text, and what it accepts must be one
 * valid MsgPack value, whatever the old value was (first byte picks it). */
#include <stdlib.h>
#include <string.h>

#include "codec/encode.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

/* Old values of every kind whose width or family the parser keeps. */
static const struct {
	uint8_t b[5];
	size_t n;
} olds[] = {
	{{0xc0}, 1},		       /* nil */
	{{0xcc, 0x05}, 2},	       /* uint8 */
	{{0xd0, 0xfb}, 2},	       /* int8 */
	{{0xca, 0x3f, 0x80, 0, 0}, 5}, /* float32 1.0 */
	{{0xa1, 'x'}, 2},	       /* fixstr */
	{{0xc4, 0x01, 'x'}, 3},	       /* bin8 */
	{{0xda, 0x00, 0x00}, 3},       /* raw16 */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mpfs_doc doc, out_doc;
	struct mpfs_strbuf out;
	struct mpfs_error err;
	size_t k;
	char *text;

	if (size == 0)
		return 0;
	k = data[0] % (sizeof(olds) / sizeof(olds[0]));
	CHECK(mpfs_doc_init(&doc, olds[k].b, olds[k].n, &err) == MPFS_OK);
	/* The text in its own allocation, so reading past it is caught. */
	text = malloc(size - 1 ? size - 1 : 1);
	CHECK(text);
	memcpy(text, data + 1, size - 1);
	mpfs_strbuf_init(&out);
	if (mpfs_encode_json(&doc, &doc.root, text, size - 1, &out, &err) == MPFS_OK) {
		CHECK(!out.oom && out.len);
		CHECK(mpfs_doc_init(&out_doc, (uint8_t *)out.p, out.len, &err) == MPFS_OK ||
		      err.code == MPFS_E_DEPTH);
		if (err.code != MPFS_E_DEPTH)
			mpfs_doc_destroy(&out_doc);
	} else {
		CHECK(err.msg[0]);
	}
	mpfs_strbuf_destroy(&out);
	mpfs_doc_destroy(&doc);
	free(text);
	return 0;
}
