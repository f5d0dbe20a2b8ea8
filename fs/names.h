/* Entry names: map keys made into safe, unique, reversible file names.
 *
 * A key is shown as itself when it is a safe name: not empty, not "." or
 * "..", without '/' or NUL, not starting with '%', at most NAME_MAX bytes
 * with its suffix (".npy"), and not taken by an earlier entry. Otherwise it
 * is shown escaped:
 *     "%" ESC(key) SUFFIX      for a string key
 *     "%#" ESC(json) SUFFIX    for any other key (int, nil, ...), as JSON
 * where ESC writes the bytes '/', NUL, '%', '.', '#' and '~' as %XX (upper-
 * case hex) and leaves the rest. ESC is reversible, and no plain name starts
 * with '%', so escaped names never clash. A key too long even for that is
 * shown as "%~" INDEX "~" and a prefix of its escaped form; its full key is
 * in the xattr user.mpfs.key. */
#ifndef MPFS_FS_NAMES_H
#define MPFS_FS_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MPFS_NAME_MAX 255

/* True if key[0..n) followed by suffix is a safe plain name. */
bool mpfs_name_is_plain(const uint8_t *key, size_t n, const char *suffix);

/* Writes the escaped name of key[0..n) into out (MPFS_NAME_MAX + 1 bytes);
 * tag is "" for string keys and "#" for JSON text of other keys; index is
 * used only when the escaped form would be too long. Returns the length. */
size_t mpfs_name_escape(const uint8_t *key, size_t n, const char *tag, const char *suffix,
			uint32_t index, char out[MPFS_NAME_MAX + 1]);

/* Reverses ESC: decodes name[0..n) (without the leading "%" or "%#" and
 * the suffix) into out, which has room for n bytes. Returns the decoded
 * length, or -1 if name holds a malformed escape. */
long mpfs_name_unescape(const char *name, size_t n, uint8_t *out);

#endif
