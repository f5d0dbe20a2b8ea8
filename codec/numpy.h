/* The other forms msgpack-numpy (Python's msgpack_numpy.encode) writes
 * besides plain compact arrays:
 *  - numpy scalars (np.int64(5), np.float32(0.5), np.bool_(True)) as a map
 *    {nd: false, type: '<i8', data: <itemsize bytes>}, without kind or shape;
 *  - object arrays as a compact map with kind 'O' whose data is a pickle.
 * A pickle is never unpickled here: it is only ever shown as its bytes. */
#ifndef MPFS_CODEC_NUMPY_H
#define MPFS_CODEC_NUMPY_H

#include <stdbool.h>

#include "codec/array.h"
#include "codec/strbuf.h"
#include "codec/value.h"

/* True if map v is a numpy scalar: exactly the keys nd (false), type (a str
 * or bin naming a bool, int, uint, float or complex dtype) and data (bin or
 * str of exactly one item). Fills *a as a 0-d compact array (src = v,
 * data_off = the data bytes); a is untouched otherwise. Anything else with
 * nd false is an ordinary map. */
bool mpfs_numpy_scalar(const struct mpfs_doc *doc, const struct mpfs_val *v, struct mpfs_array *a);

/* True if compact map v (mpfs_array_is_compact) holds a pickled object
 * array: its kind is the string "O". */
bool mpfs_numpy_is_pickled(const struct mpfs_doc *doc, const struct mpfs_val *v);

/* Fills *a for pickled object array v: descr "|O", itemsize 0, the shape if
 * the map has a valid one (else 0-d), nbytes and data_off the pickle's
 * bytes. Fails with MPFS_E_ARRAY (err naming the offset) when data is not a
 * bin or str. */
enum mpfs_codec_err mpfs_numpy_pickled(const struct mpfs_doc *doc, const struct mpfs_val *v,
				       struct mpfs_array *a, struct mpfs_error *err);

/* Appends the value of numpy scalar a (of doc, from mpfs_numpy_scalar) as
 * JSON, without newline, as mpfs_json_render writes numbers: true/false,
 * integers in decimal, floats (float16 and float32 widened to double) in
 * their shortest form. Complex and long double (f16) scalars are not text
 * (the model makes them 0-d arrays): they render as null. Only memory can fail (out->oom). */
void mpfs_numpy_scalar_render(const struct mpfs_doc *doc, const struct mpfs_array *a,
			      struct mpfs_strbuf *out);

/* Encodes text (one JSON value) as the new value of numpy scalar old (of
 * doc), appending MsgPack to out. A number or bool stays a numpy scalar in
 * the map as written (its keys, their order and spelling), with old's dtype
 * where the value fits, else the dtype the MsgPack rules give (docs/
 * writing.md §3): an integer the smallest int or uint at least as wide that
 * holds it, a float the narrowest float that holds it exactly (float64
 * always does), a float into an integer scalar <f8, an integer into a bool
 * <i8, a bool |b1. Any other JSON value (string, null, list, object)
 * replaces the scalar as a plain value. Text that is not JSON fails with
 * MPFS_E_ARRAY (err names the offset into text). */
enum mpfs_codec_err mpfs_numpy_scalar_encode(const struct mpfs_doc *doc,
					     const struct mpfs_array *old, const char *text,
					     size_t len, struct mpfs_strbuf *out,
					     struct mpfs_error *err);

/* Appends a new compact array as msgpack-numpy writes one: {b'nd': true,
 * b'type': str, b'kind': b'', b'shape': [...], b'data': bin}, keys as bin
 * (its decode looks for bin keys only). */
void mpfs_numpy_encode_array(const struct mpfs_array *a, const uint8_t *data,
			     struct mpfs_strbuf *out);

#endif
