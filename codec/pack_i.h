/* Private to codec/: msgpack-c packing into a strbuf. */
#ifndef MPFS_CODEC_PACK_I_H
#define MPFS_CODEC_PACK_I_H

#include <msgpack.h>

#include "codec/strbuf.h"
#include "codec/value.h"

/* A packer appending to out (out->oom tells of a failure). */
void mpfs_pack_init(msgpack_packer *pk, struct mpfs_strbuf *out);

/* A string of len bytes in the family old was written in: bin when it was a
 * bin; old-spec raw (fixraw/raw16/raw32, never str8) when it was a
 * raw16/raw32 or the archive (doc, may be NULL) keeps to the old spec;
 * else str. */
void mpfs_pack_str_like(msgpack_packer *pk, const struct mpfs_doc *doc, const struct mpfs_val *old,
			const void *s, size_t len);

#endif
