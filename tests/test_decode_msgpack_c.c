/* codec/decode.c agrees with msgpack-c's own unpacker on values its packer
 * wrote: every width, and random documents. */
#define TU_WRAP_ALLOCS
#include <msgpack.h>

#include "decode_env.h"

/* ---- agreement with msgpack-c --------------------------------------------- */

/* Compares our value with msgpack-c's object for the same bytes. */
static void same_as_msgpack_c(const struct mpfs_doc *doc, const struct mpfs_val *v,
			      const msgpack_object *o, const char *where)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL: cr_assert_eq(v->type, MPFS_NIL, "%s: nil", where); break;
	case MSGPACK_OBJECT_BOOLEAN:
		cr_assert_eq(v->type, MPFS_BOOL, "%s: bool", where);
		cr_assert_eq(v->b, o->via.boolean, "%s: bool value", where);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		cr_assert_eq(v->type, MPFS_UINT, "%s: uint (tag %#x)", where, v->tag);
		cr_assert_eq(v->u, o->via.u64, "%s: uint value", where);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		cr_assert_eq(v->type, MPFS_INT, "%s: int (tag %#x)", where, v->tag);
		cr_assert_eq(v->i, o->via.i64, "%s: int value", where);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		cr_assert_eq(v->type, MPFS_FLOAT, "%s: float", where);
		cr_assert_eq(v->tag, o->type == MSGPACK_OBJECT_FLOAT32 ? 0xca : 0xcb, "%s: width",
			     where);
		cr_assert_eq(bits(v->f), bits(o->via.f64), "%s: float bits", where);
		break;
	case MSGPACK_OBJECT_STR:
	case MSGPACK_OBJECT_BIN:
	case MSGPACK_OBJECT_EXT: {
		const char *ptr = o->type == MSGPACK_OBJECT_STR	  ? o->via.str.ptr
				  : o->type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr
								  : o->via.ext.ptr;
		uint32_t size = o->type == MSGPACK_OBJECT_STR	? o->via.str.size
				: o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size
								: o->via.ext.size;
		enum mpfs_type t = o->type == MSGPACK_OBJECT_STR   ? MPFS_STR
				   : o->type == MSGPACK_OBJECT_BIN ? MPFS_BIN
								   : MPFS_EXT;
		cr_assert_eq(v->type, t, "%s: type %d, expected %d", where, v->type, t);
		cr_assert_eq(v->len, size, "%s: len", where);
		if (size)
			cr_assert(memcmp(mpfs_val_data(doc, v), ptr, size) == 0, "%s: payload",
				  where);
		if (t == MPFS_EXT)
			cr_assert_eq(v->ext_type, o->via.ext.type, "%s: ext type", where);
		break;
	}
	case MSGPACK_OBJECT_ARRAY: {
		cr_assert_eq(v->type, MPFS_ARRAY, "%s: array", where);
		cr_assert_eq(v->len, o->via.array.size, "%s: array len", where);
		uint64_t off = v->off + v->hdr;
		for (uint32_t i = 0; i < v->len; i++) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%.200s[%u]", where, i);
			if (v->items) {
				same_as_msgpack_c(doc, &v->items[i], &o->via.array.ptr[i], sub);
			} else {
				struct mpfs_val e;
				off = mpfs_scalar_at(doc->buf, off, &e);
				same_as_msgpack_c(doc, &e, &o->via.array.ptr[i], sub);
			}
		}
		break;
	}
	case MSGPACK_OBJECT_MAP:
		cr_assert_eq(v->type, MPFS_MAP, "%s: map", where);
		cr_assert_eq(v->len, o->via.map.size, "%s: map len", where);
		for (uint32_t i = 0; i < v->len; i++) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%.200s{%u}", where, i);
			same_as_msgpack_c(doc, &v->items[2 * i], &o->via.map.ptr[i].key, sub);
			same_as_msgpack_c(doc, &v->items[2 * i + 1], &o->via.map.ptr[i].val, sub);
		}
		break;
	}
}

static void agree(const msgpack_sbuffer *sb, const char *what)
{
	struct dc d;
	msgpack_unpacked up;
	size_t off = 0;

	dc_bytes(&d, sb->data, sb->size);
	expect_ok(&d, what);
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, (const char *)d.buf, d.n, &off),
		     MSGPACK_UNPACK_SUCCESS, "%s: msgpack-c refuses it", what);
	cr_assert_eq(off, d.n);
	same_as_msgpack_c(&d.doc, &d.doc.root, &up.data, what);
	msgpack_unpacked_destroy(&up);
	dc_free(&d);
}

static char blob[70000];

/* Every width msgpack-c's packer can write, with the tag each must have. */
Test(codec_decode, agrees_with_msgpack_c_on_every_width)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct dc d;
	static const uint8_t tags[] = {
		0x05, 0xcc, 0xcc, 0xcd, 0xce, 0xcf, 0xe0, 0xd0, 0xd0, 0xd1, 0xd2, 0xd3,
		0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xca, 0xcb, 0xc0, 0xc3,
		0xc2, 0xa5, 0xd9, 0xda, 0xdb, 0xbf, 0xda, 0xdb, 0xc4, 0xc5, 0xc6, 0xd4,
		0xd5, 0xd6, 0xd7, 0xd8, 0xc7, 0xc7, 0xc8, 0xc9, 0x90, 0xdc, 0x80, 0xde,
	};

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (char)('A' + i % 50);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, sizeof(tags));
	msgpack_pack_uint8(&pk, 5);
	msgpack_pack_uint8(&pk, 200);
	msgpack_pack_fix_uint8(&pk, 7);
	msgpack_pack_fix_uint16(&pk, 65535);
	msgpack_pack_fix_uint32(&pk, UINT32_MAX);
	msgpack_pack_fix_uint64(&pk, UINT64_MAX);
	msgpack_pack_int8(&pk, -32);
	msgpack_pack_int8(&pk, -33);
	msgpack_pack_fix_int8(&pk, INT8_MIN);
	msgpack_pack_fix_int16(&pk, INT16_MIN);
	msgpack_pack_fix_int32(&pk, INT32_MIN);
	msgpack_pack_fix_int64(&pk, INT64_MIN);
	msgpack_pack_uint64(&pk, 255);
	msgpack_pack_uint64(&pk, 65535);
	msgpack_pack_uint64(&pk, UINT32_MAX);
	msgpack_pack_uint64(&pk, (uint64_t)INT64_MAX + 1);
	msgpack_pack_fix_int8(&pk, 1); /* non-negative, signed encoding */
	msgpack_pack_fix_int16(&pk, 300);
	msgpack_pack_fix_int32(&pk, -70000);
	msgpack_pack_fix_int64(&pk, INT64_MAX);
	msgpack_pack_float(&pk, 0.1f);
	msgpack_pack_double(&pk, 0.1);
	msgpack_pack_nil(&pk);
	msgpack_pack_true(&pk);
	msgpack_pack_false(&pk);
	msgpack_pack_str_with_body(&pk, blob, 5);
	msgpack_pack_str_with_body(&pk, blob, 32);
	msgpack_pack_str_with_body(&pk, blob, 256);
	msgpack_pack_str_with_body(&pk, blob, 65536);
	msgpack_pack_v4raw(&pk, 31); /* old raw: no raw8 */
	msgpack_pack_v4raw_body(&pk, blob, 31);
	msgpack_pack_v4raw(&pk, 32);
	msgpack_pack_v4raw_body(&pk, blob, 32);
	msgpack_pack_v4raw(&pk, 65536);
	msgpack_pack_v4raw_body(&pk, blob, 65536);
	msgpack_pack_bin_with_body(&pk, blob, 3);
	msgpack_pack_bin_with_body(&pk, blob, 256);
	msgpack_pack_bin_with_body(&pk, blob, 65536);
	msgpack_pack_ext_with_body(&pk, blob, 1, 1);
	msgpack_pack_ext_with_body(&pk, blob, 2, 2);
	msgpack_pack_ext_with_body(&pk, blob, 4, -1);
	msgpack_pack_ext_with_body(&pk, blob, 8, -1);
	msgpack_pack_ext_with_body(&pk, blob, 16, 127);
	msgpack_pack_ext_with_body(&pk, blob, 0, 3);
	msgpack_pack_ext_with_body(&pk, blob, 12, -1);
	msgpack_pack_ext_with_body(&pk, blob, 256, -128);
	msgpack_pack_ext_with_body(&pk, blob, 65536, 42);
	msgpack_pack_array(&pk, 0);
	msgpack_pack_array(&pk, 16);
	for (int i = 0; i < 16; i++)
		msgpack_pack_int(&pk, i - 8);
	msgpack_pack_map(&pk, 0);
	msgpack_pack_map(&pk, 16);
	for (int i = 0; i < 16; i++) {
		msgpack_pack_int(&pk, i);
		msgpack_pack_str_with_body(&pk, blob, (size_t)i);
	}
	agree(&sb, "every width");

	/* And the tags are the ones written. */
	dc_bytes(&d, sb.data, sb.size);
	expect_ok(&d, "every width");
	cr_assert_not_null(d.doc.root.items);
	cr_assert_eq(d.doc.root.len, sizeof(tags));
	for (size_t i = 0; i < sizeof(tags); i++)
		cr_assert_eq(d.doc.root.items[i].tag, tags[i], "element %zu: tag %#x, expected %#x",
			     i, d.doc.root.items[i].tag, tags[i]);
	dc_free(&d);

	/* array32 and map32 need 65536 entries. */
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "a", 1);
	msgpack_pack_array(&pk, 65536);
	for (int i = 0; i < 65536; i++)
		msgpack_pack_uint32(&pk, (uint32_t)i * 65537u);
	agree(&sb, "array32");
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 65536);
	for (int i = 0; i < 65536; i++) {
		msgpack_pack_uint32(&pk, (uint32_t)i);
		msgpack_pack_nil(&pk);
	}
	agree(&sb, "map32");
	msgpack_sbuffer_destroy(&sb);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, so a failure replays. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static void pack_random(msgpack_packer *pk, int depth)
{
	uint64_t r = rng();
	unsigned kind = (unsigned)(r % (depth < 4 ? 26 : 22));
	size_t n;

	r = rng();
	switch (kind) {
	case 0: msgpack_pack_nil(pk); break;
	case 1: r & 1 ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
	case 2: msgpack_pack_uint64(pk, r >> (r % 64)); break;
	case 3: msgpack_pack_int64(pk, (int64_t)r >> (r % 64)); break;
	case 4: msgpack_pack_fix_uint8(pk, (uint8_t)r); break;
	case 5: msgpack_pack_fix_uint16(pk, (uint16_t)r); break;
	case 6: msgpack_pack_fix_uint32(pk, (uint32_t)r); break;
	case 7: msgpack_pack_fix_uint64(pk, r); break;
	case 8: msgpack_pack_fix_int8(pk, (int8_t)r); break;
	case 9: msgpack_pack_fix_int16(pk, (int16_t)r); break;
	case 10: msgpack_pack_fix_int32(pk, (int32_t)r); break;
	case 11: msgpack_pack_fix_int64(pk, (int64_t)r); break;
	case 12: {
		uint32_t x = (uint32_t)r;
		float f;
		memcpy(&f, &x, 4);
		msgpack_pack_float(pk, f);
		break;
	}
	case 13: {
		double f;
		memcpy(&f, &r, 8);
		msgpack_pack_double(pk, f);
		break;
	}
	case 14:
	case 15:
		n = r % 4 ? r % 40 : r % 300;
		msgpack_pack_str_with_body(pk, blob + r % 1000, n);
		break;
	case 16:
		n = r % 300;
		msgpack_pack_v4raw(pk, n);
		msgpack_pack_v4raw_body(pk, blob, n);
		break;
	case 17:
	case 18:
		n = r % 4 ? r % 20 : r % 300;
		for (size_t i = 0; i < n && i < 16; i++)
			blob[1000 + i] = (char)rng();
		msgpack_pack_bin_with_body(pk, blob + 1000, n);
		break;
	case 19:
	case 20:
	case 21: {
		static const size_t lens[] = {0, 1, 2, 3, 4, 5, 8, 12, 16, 17, 255, 256};
		n = lens[r % 12];
		msgpack_pack_ext_with_body(pk, blob, n, (int8_t)(r >> 8));
		break;
	}
	case 22:
	case 23:
		n = r % 8 ? r % 6 : r % 40;
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			pack_random(pk, depth + 1);
		break;
	default:
		n = r % 8 ? r % 5 : r % 20;
		msgpack_pack_map(pk, n);
		for (size_t i = 0; i < 2 * n; i++)
			pack_random(pk, depth + 1);
		break;
	}
}

Test(codec_decode, agrees_with_msgpack_c_on_random_documents)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (char)('a' + i % 26);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	for (int doc = 0; doc < 500; doc++) {
		char what[32];
		msgpack_sbuffer_clear(&sb);
		/* A container at the top so that documents hold many values. */
		msgpack_pack_array(&pk, 8);
		for (int i = 0; i < 8; i++)
			pack_random(&pk, 1);
		snprintf(what, sizeof(what), "random document %d", doc);
		agree(&sb, what);
	}
	msgpack_sbuffer_destroy(&sb);
}
