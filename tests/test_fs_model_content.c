/* test_fs_model (see test_fs_model.c): contents, the values as the tree
 * shows them, the .npy files the test writes, how written content is
 * judged (valid, refused, or not for certain), and the content to write. */
#include "fs_model.h"

/* ---- rendering values as the tree shows them ---------------------------- */

void b_set(struct bytes *b, const void *p, size_t n)
{
	cr_assert(n <= MAXC);
	memcpy(b->p, p, n);
	b->n = n;
}

static void b_str(struct bytes *b, const char *s)
{
	b_set(b, s, strlen(s));
}

bool b_eq(const struct bytes *a, const struct bytes *b)
{
	return a->n == b->n && !memcmp(a->p, b->p, a->n);
}

/* Python's repr of a double. */
static void py_repr(double d, char *out, size_t cap)
{
	char e[40], digits[40];
	int exp10, nd = 0;
	if (isnan(d)) {
		snprintf(out, cap, "NaN");
		return;
	}
	if (isinf(d)) {
		snprintf(out, cap, d < 0 ? "-Infinity" : "Infinity");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec - 1, d);
		if (strtod(e, NULL) == d)
			break;
	}
	const char *s = e;
	bool neg = *s == '-';
	if (neg)
		s++;
	for (; *s && *s != 'e'; s++)
		if (*s >= '0' && *s <= '9')
			digits[nd++] = *s;
	exp10 = atoi(s + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	size_t o = 0;
	if (neg)
		out[o++] = '-';
	if (exp10 >= -4 && exp10 < 16) {
		if (exp10 >= 0) {
			for (int i = 0; i <= exp10; i++)
				out[o++] = i < nd ? digits[i] : '0';
			out[o++] = '.';
			if (nd > exp10 + 1)
				for (int i = exp10 + 1; i < nd; i++)
					out[o++] = digits[i];
			else
				out[o++] = '0';
		} else {
			out[o++] = '0';
			out[o++] = '.';
			for (int i = 0; i < -exp10 - 1; i++)
				out[o++] = '0';
			for (int i = 0; i < nd; i++)
				out[o++] = digits[i];
		}
		out[o] = '\0';
	} else {
		out[o++] = digits[0];
		if (nd > 1) {
			out[o++] = '.';
			for (int i = 1; i < nd; i++)
				out[o++] = digits[i];
		}
		snprintf(out + o, cap - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
	}
}

void render(const struct val *v, struct bytes *out)
{
	char s[MAXC + 64];
	size_t o = 0;
	switch (v->k) {
	case K_INT:
		snprintf(s, sizeof(s), "%" PRId64 "\n", v->i);
		b_str(out, s);
		return;
	case K_FLOAT:
		py_repr(v->f, s, sizeof(s) - 1);
		strcat(s, "\n");
		b_str(out, s);
		return;
	case K_STR:
		s[o++] = '"';
		for (size_t i = 0; i < v->b.n; i++) {
			uint8_t c = v->b.p[i];
			const char *esc = c == '"'    ? "\\\""
					  : c == '\\' ? "\\\\"
					  : c == '\n' ? "\\n"
					  : c == '\r' ? "\\r"
					  : c == '\t' ? "\\t"
					  : c == '\b' ? "\\b"
					  : c == '\f' ? "\\f"
						      : NULL;
			if (esc)
				o += (size_t)sprintf(s + o, "%s", esc);
			else if (c < 0x20 || c == 0x7f)
				o += (size_t)sprintf(s + o, "\\u%04x", c);
			else
				s[o++] = (char)c;
		}
		s[o++] = '"';
		s[o++] = '\n';
		b_set(out, s, o);
		return;
	case K_BIN:
	case K_NPY: *out = v->b; return;
	case K_NONE: out->n = 0; return;
	}
}

/* ---- .npy files (always <f8, canonical v1.0 header) ----------------------- */

static const int shapes[][3] = {{1, 3}, {1, 4}, {2, 2, 2}, {2, 2, 3}, {2, 1, 4}};
#define NSHAPES (sizeof(shapes) / sizeof(shapes[0]))

static int shape_count(int s)
{
	return shapes[s][0] == 1 ? shapes[s][1] : shapes[s][1] * shapes[s][2];
}

static void npy_header(int s, uint8_t out[NPY_HDR])
{
	char dict[NPY_HDR];
	int n;
	if (shapes[s][0] == 1)
		n = snprintf(dict, sizeof(dict),
			     "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }",
			     shapes[s][1]);
	else
		n = snprintf(dict, sizeof(dict),
			     "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }",
			     shapes[s][1], shapes[s][2]);
	memcpy(out, "\x93NUMPY\x01\x00", 8);
	out[8] = (uint8_t)(NPY_HDR - 10);
	out[9] = 0;
	memset(out + 10, ' ', NPY_HDR - 10);
	memcpy(out + 10, dict, (size_t)n);
	out[NPY_HDR - 1] = '\n';
}

void npy_make(int s, const double *data, struct bytes *out)
{
	npy_header(s, out->p);
	memcpy(out->p + NPY_HDR, data, 8 * (size_t)shape_count(s));
	out->n = NPY_HDR + 8 * (size_t)shape_count(s);
}

/* The shape whose header c starts with, or -1. */
static int npy_shape_of(const struct bytes *c)
{
	uint8_t h[NPY_HDR];
	if (c->n < NPY_HDR)
		return -1;
	for (int s = 0; s < (int)NSHAPES; s++) {
		npy_header(s, h);
		if (!memcmp(h, c->p, NPY_HDR))
			return s;
	}
	return -1;
}

/* ---- judging content ----------------------------------------------------- */

static bool is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool digits(const uint8_t *p, size_t n, size_t *i)
{
	size_t s = *i;
	while (*i < n && p[*i] >= '0' && p[*i] <= '9')
		(*i)++;
	return *i > s;
}

/* Text content as the given kind would take it: R_VALID with *out set,
 * R_INVALID (refused), or R_UNKNOWN (content this model cannot judge). */
static enum res judge_text(const struct bytes *c, enum kind old, struct val *out)
{
	size_t a = 0, z = c->n;
	while (a < z && is_ws(c->p[a]))
		a++;
	while (z > a && is_ws(c->p[z - 1]))
		z--;
	const uint8_t *t = c->p + a;
	size_t n = z - a;
	char s[MAXC + 1];
	memcpy(s, t, n);
	s[n] = '\0';
	memset(out, 0, sizeof(*out));
	if (n == 0)
		return R_UNKNOWN;
	if (!strcmp(s, "NaN") || !strcmp(s, "Infinity") || !strcmp(s, "-Infinity")) {
		out->k = K_FLOAT;
		out->f = s[0] == 'N' ? NAN : s[0] == '-' ? -INFINITY : INFINITY;
		return R_VALID;
	}
	for (size_t i = 0; i < c->n; i++)
		if (!strchr("0123456789.-+eEwxyz\" \t\n", c->p[i]) || !c->p[i])
			return R_UNKNOWN;
	if (t[0] == '"') {
		bool ok = n >= 2 && t[n - 1] == '"';
		for (size_t i = 1; ok && i + 1 < n; i++) {
			if (t[i] == '"')
				ok = false;
			else if (t[i] < 0x20)
				return R_UNKNOWN;
		}
		if (ok) {
			out->k = K_STR;
			b_set(&out->b, t + 1, n - 2);
			return R_VALID;
		}
	} else {
		/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
		size_t i = 0, ds, de = 0;
		bool frac = false, ex = false, ok = true;
		if (t[i] == '-')
			i++;
		ds = i;
		if (i < n && t[i] == '0')
			i++;
		else if (!(i < n && t[i] >= '1' && t[i] <= '9' && digits(t, n, &i)))
			ok = false;
		size_t nd = i - ds;
		if (ok && i < n && t[i] == '.') {
			i++;
			size_t f = i;
			ok = digits(t, n, &i);
			nd += i - f;
			frac = true;
		}
		if (ok && i < n && (t[i] == 'e' || t[i] == 'E')) {
			i++;
			if (i < n && (t[i] == '+' || t[i] == '-'))
				i++;
			size_t f = i;
			ok = digits(t, n, &i);
			de = i - f;
			ex = true;
		}
		if (ok && i == n) {
			if (nd > 15 || de > 2)
				return R_UNKNOWN;
			if (!frac && !ex) {
				if (!strcmp(s, "-0"))
					return R_UNKNOWN;
				long long v = strtoll(s, NULL, 10);
				if (old == K_FLOAT) {
					out->k = K_FLOAT;
					out->f = (double)v;
				} else {
					out->k = K_INT;
					out->i = v;
				}
			} else {
				out->k = K_FLOAT;
				out->f = strtod(s, NULL);
				if (out->f != 0 && (fabs(out->f) < 1e-30 || fabs(out->f) > 1e30))
					return R_UNKNOWN;
			}
			return R_VALID;
		}
	}
	/* not JSON */
	if (old != K_STR && old != K_NONE)
		return R_INVALID;
	a = 0, z = c->n;
	while (a < z && (c->p[a] == ' ' || c->p[a] == '\t' || c->p[a] == '\n'))
		a++;
	while (z > a && (c->p[z - 1] == ' ' || c->p[z - 1] == '\t' || c->p[z - 1] == '\n'))
		z--;
	if (z == a)
		return R_UNKNOWN;
	out->k = K_STR;
	b_set(&out->b, c->p + a, z - a);
	return R_VALID;
}

static enum res judge_npy(const struct bytes *c, struct val *out)
{
	memset(out, 0, sizeof(*out));
	if (c->n == 0)
		return R_UNKNOWN;
	if (c->n < 10 || memcmp(c->p, "\x93NUMPY", 6) || c->n < NPY_HDR)
		return R_INVALID;
	int s = npy_shape_of(c);
	if (s < 0)
		return R_UNKNOWN;
	if (c->n != NPY_HDR + 8 * (size_t)shape_count(s))
		return R_INVALID;
	out->k = K_NPY;
	out->b = *c;
	return R_VALID;
}

/* Content c committed over a value of kind old (K_NONE: a new key; npy: the
 * name ends in .npy). */
enum res judge(const struct bytes *c, enum kind old, bool npy, struct val *out)
{
	if (old == K_NPY || (old == K_NONE && npy))
		return judge_npy(c, out);
	if (old == K_BIN) {
		memset(out, 0, sizeof(*out));
		out->k = K_BIN;
		out->b = *c;
		return R_VALID;
	}
	return judge_text(c, old, out);
}

bool val_same(const struct val *a, const struct val *b)
{
	struct bytes ra, rb;
	render(a, &ra);
	render(b, &rb);
	return a->k == b->k && b_eq(&ra, &rb);
}

/* ---- content generation ---------------------------------------------------------- */

static void gen_word(struct model *m, char *s, int len, bool first_letter)
{
	static const char al[] = "wxyz0123456789";
	for (int i = 0; i < len; i++)
		s[i] = al[rnd(m, (i == 0 && first_letter) ? 4 : sizeof(al) - 1)];
	s[len] = '\0';
}

void gen_text(struct model *m, struct bytes *out)
{
	char s[80], w[16];
	static const char *const garbage[] = {"4w", "\"ab", "1 2", "--1", "1..5", "w\"",
					      ".5", "1e",   "01",  "1-",  "+1",	  "\"x\"y"};
	static const char *const special[] = {"NaN", "Infinity", "-Infinity"};
	switch (rnd(m, 12)) {
	case 0:
	case 1:
	case 2: snprintf(s, sizeof(s), "%d", (int)rnd(m, 200000) - 1000); break;
	case 3:
		snprintf(s, sizeof(s), "%.*f", 1 + (int)rnd(m, 4),
			 ((double)rnd(m, 40000) - 20000) / 997.0);
		break;
	case 4: snprintf(s, sizeof(s), "%de%d", (int)rnd(m, 200) - 100, (int)rnd(m, 12) - 6); break;
	case 5:
	case 10:
		gen_word(m, w, (int)rnd(m, 6), false);
		snprintf(s, sizeof(s), "%s\"%s\"", rnd(m, 4) ? "" : "  ", w);
		break;
	case 6:
	case 7:
		gen_word(m, w, 1 + (int)rnd(m, 6), true);
		snprintf(s, sizeof(s), "%s", w);
		break;
	case 8:
		snprintf(s, sizeof(s), "%s", garbage[rnd(m, sizeof(garbage) / sizeof(*garbage))]);
		break;
	case 9: snprintf(s, sizeof(s), "%s", special[rnd(m, 3)]); break;
	default: snprintf(s, sizeof(s), " \t%d", (int)rnd(m, 100)); break;
	}
	if (rnd(m, 10) < 7)
		strcat(s, "\n");
	b_str(out, s);
}

void gen_npy(struct model *m, struct bytes *out)
{
	double d[8];
	int s = (int)rnd(m, NSHAPES);
	for (int i = 0; i < 8; i++)
		d[i] = ((double)rnd(m, 33) - 16) / 4;
	npy_make(s, d, out);
}

/* Is content c of a file of content kind ck one the model can judge? */
bool judgeable(const struct model *m, int x, const struct bytes *c)
{
	struct val v;
	(void)m;
	if (c->n == 0)
		return true;
	if (m->n[x].ck == C_BIN)
		return true;
	if (m->n[x].ck == C_NPY)
		return judge_npy(c, &v) != R_UNKNOWN;
	return judge_text(c, K_STR, &v) != R_UNKNOWN && judge_text(c, K_INT, &v) != R_UNKNOWN;
}

/* A write into node x's content c: its offset and bytes. */
void gen_write(struct model *m, int x, const struct bytes *c, uint64_t *off, struct bytes *w)
{
	switch (m->n[x].ck) {
	case C_TEXT:
		switch (rnd(m, 4)) {
		case 0:
		case 1:
			gen_text(m, w);
			*off = 0;
			return;
		case 2: {
			static const char al[] = "0123456789.-wxyz\"\n";
			w->n = 1 + rnd(m, 3);
			for (size_t i = 0; i < w->n; i++)
				w->p[i] = (uint8_t)al[rnd(m, sizeof(al) - 1)];
			*off = rnd(m, (unsigned)c->n + 1);
			return;
		}
		default:
			gen_text(m, w);
			*off = c->n;
			return;
		}
	case C_BIN:
		w->n = 1 + rnd(m, 10);
		for (size_t i = 0; i < w->n; i++)
			w->p[i] = (uint8_t)rnd(m, 256);
		*off = rnd(m, (unsigned)c->n + 4);
		return;
	case C_NPY: {
		int s = npy_shape_of(c);
		switch (rnd(m, 5)) {
		case 0:
		case 1:
			gen_npy(m, w);
			*off = 0;
			return;
		case 2:
		case 3: {
			double d = ((double)rnd(m, 33) - 16) / 4;
			int cnt = s >= 0 ? shape_count(s) : 2;
			*off = NPY_HDR + 8 * (uint64_t)rnd(m, (unsigned)cnt + (rnd(m, 6) == 0));
			b_set(w, &d, 8);
			return;
		}
		default:
			w->n = 1;
			w->p[0] = rnd(m, 2) ? 'X' : 0x93;
			*off = 0;
			return;
		}
	}
	}
}

uint64_t gen_size(struct model *m, int x, const struct bytes *c)
{
	switch (m->n[x].ck) {
	case C_TEXT: return rnd(m, 3) == 0 ? 0 : rnd(m, (unsigned)c->n + 1);
	case C_BIN: return rnd(m, 3) == 0 ? 0 : rnd(m, (unsigned)c->n + 6);
	default: return rnd(m, 3) == 0 ? 0 : 8 * (uint64_t)rnd(m, (unsigned)c->n / 8 + 2);
	}
}

void apply_write(struct bytes *c, uint64_t off, const struct bytes *w)
{
	if (off > c->n)
		memset(c->p + c->n, 0, (size_t)off - c->n);
	memcpy(c->p + off, w->p, w->n);
	if (off + w->n > c->n)
		c->n = (size_t)off + w->n;
}

void apply_trunc(struct bytes *c, uint64_t size)
{
	if (size > c->n)
		memset(c->p + c->n, 0, (size_t)size - c->n);
	c->n = (size_t)size;
}
