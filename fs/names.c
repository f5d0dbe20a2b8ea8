#include "fs/names.h"

#include <stdio.h>
#include <string.h>

bool mpfs_name_is_plain(const uint8_t *key, size_t n, const char *suffix)
{
	if (n == 0 || key[0] == '%' || n + strlen(suffix) > MPFS_NAME_MAX)
		return false;
	if ((n == 1 && key[0] == '.') || (n == 2 && key[0] == '.' && key[1] == '.'))
		return false;
	return !memchr(key, '/', n) && !memchr(key, '\0', n);
}

static bool needs_escape(uint8_t c)
{
	return c == '/' || c == '\0' || c == '%' || c == '.' || c == '#' || c == '~';
}

/* Appends ESC(key) to out[at..cap) without splitting an escape; returns the
 * new length. */
static size_t esc(const uint8_t *key, size_t n, char *out, size_t at, size_t cap)
{
	for (size_t i = 0; i < n; i++) {
		if (!needs_escape(key[i])) {
			if (at + 1 > cap)
				break;
			out[at++] = (char)key[i];
		} else {
			if (at + 3 > cap)
				break;
			at += (size_t)snprintf(out + at, 4, "%%%02X", key[i]);
		}
	}
	return at;
}

size_t mpfs_name_escape(const uint8_t *key, size_t n, const char *tag, const char *suffix,
			uint32_t index, char out[MPFS_NAME_MAX + 1])
{
	size_t sl = strlen(suffix), len, full = 1 + strlen(tag) + sl;

	for (size_t i = 0; i < n; i++)
		full += needs_escape(key[i]) ? 3 : 1;
	if (full <= MPFS_NAME_MAX) {
		len = (size_t)snprintf(out, MPFS_NAME_MAX + 1, "%%%s", tag);
		len = esc(key, n, out, len, MPFS_NAME_MAX - sl);
	} else {
		len = (size_t)snprintf(out, MPFS_NAME_MAX + 1, "%%~%u~", index);
		len = esc(key, n, out, len, MPFS_NAME_MAX - sl);
	}
	memcpy(out + len, suffix, sl + 1);
	return len + sl;
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

long mpfs_name_unescape(const char *name, size_t n, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (name[i] != '%') {
			out[o++] = (uint8_t)name[i];
			continue;
		}
		if (i + 2 >= n)
			return -1;
		int hi = hex(name[i + 1]), lo = hex(name[i + 2]);
		if (hi < 0 || lo < 0)
			return -1;
		out[o++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return (long)o;
}
