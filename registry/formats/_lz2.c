/* The LZ2 decoder's common case in C: Base45 (RFC 9285) and the CBOR envelope and body of an offline payload
 * (RFC 8949), for the offline verifier's hot path.
 *
 * registry/formats/lz2.py is the specification and does everything else: this module only ever answers for
 * a payload that the Python decoder accepts, and answers exactly what it would. Anything else -- an error of
 * any kind, a form the encoder does not write (names spelt out instead of field codes, a text the encoder
 * would have packed, a float, a tag), a payload the validation would refuse -- is None, and the caller then
 * runs the Python decoder, which decodes it or says what is wrong. tests/unit/qr/test_lz2_c.py compares the
 * two on encoded payloads of every shape and on altered bytes.
 *
 * What "accepted" means here, item by item (lz2.py's module docstring has the grammar):
 *   - every data item has the shortest head for its argument and a definite length (RFC 8949 §4.2.1), and
 *     each map's keys are field codes (unsigned integers below the number of codes) in strictly ascending
 *     order: the deterministic encoding the decoder insists on, and no duplicate keys;
 *   - the envelope is [body: bstr, signature: bstr of 0 or 65 bytes],
 *     [body, [signed_at: uint, signature: bstr .size 65]] (an intl statement) or
 *     [body, [signed_at: uint, key_id: bstr .size 8, signature: bstr of 8..72 bytes]] (a gm statement);
 *   - the body is [2, identifier: non-empty tstr, type_code: non-empty tstr, seed: bstr of 0 or 16 bytes,
 *     disclosed, hidden: {code: bstr .size 32}, index: uint, size: uint > index, proof: bstr of 32-byte
 *     steps, chain_id: uint, ledger: bstr .size 20, block_number: uint, block_timestamp: uint,
 *     ? [sm3 hidden with the same codes, sm3 proof as long as proof]], with a seed only when nothing is hidden
 *     and no field both disclosed and hidden;
 *   - disclosed values (with a seed; without one each is [salt: bstr .size 16, value]) are an ASCII tstr, an
 *     integer within +-(2^53 - 1), true, false, null, or GB 18030 bytes of a text with a character outside
 *     ASCII, all in the packed character set, that encodes back to exactly those bytes.
 *
 * The GIL is held throughout (a payload is ~1.3 KB of text; nothing here blocks).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define HASH_LEN 32
#define SEED_LEN 16
#define SALT_LEN 16
#define SIGNATURE_LEN 65
#define ADDRESS_LEN 20
#define KEY_ID_LEN 8
#define MIN_DER 8
#define MAX_DER 72
#define FORMAT_VERSION 2
#define BODY_ITEMS 13
#define MAX_CODES 256
#define SAFE_INT ((uint64_t)1 << 53) /* RFC 8785's integers: |value| < 2^53 */

/* --- Base45 -------------------------------------------------------------------------------------------- */

static signed char B45[256];

static PyObject *b45decode(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg) || !PyUnicode_IS_ASCII(arg)) Py_RETURN_NONE;
    const unsigned char *s = (const unsigned char *)PyUnicode_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    if (n % 3 == 1) Py_RETURN_NONE;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n / 3 * 2 + (n % 3 ? 1 : 0));
    if (out == NULL) return NULL;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t i = 0;
    for (; i + 3 <= n; i += 3) {
        int c = B45[s[i]], d = B45[s[i + 1]], e = B45[s[i + 2]];
        if ((c | d | e) < 0) goto refuse;
        long v = c + 45L * d + 2025L * e;
        if (v > 0xFFFF) goto refuse;
        *o++ = (unsigned char)(v >> 8);
        *o++ = (unsigned char)v;
    }
    if (i < n) {
        int c = B45[s[i]], d = B45[s[i + 1]];
        if ((c | d) < 0 || c + 45 * d > 0xFF) goto refuse;
        *o = (unsigned char)(c + 45 * d);
    }
    return out;
refuse:
    Py_DECREF(out);
    Py_RETURN_NONE;
}

/* --- CBOR, deterministic only ---------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *p, *end;
} Rd;

/* One head: the major type and its argument, or -1 for a head that is not the shortest one for its argument,
 * an indefinite length, a reserved value, or the end of the input. Major type 7 (true, false, null) is
 * -1 here too: `value_of` reads it where a value may be one. */
static int head(Rd *r, int *major, uint64_t *arg) {
    if (r->p >= r->end) return -1;
    unsigned ib = *r->p++;
    *major = (int)(ib >> 5);
    unsigned ai = ib & 31;
    if (*major == 7) return -1;
    if (ai < 24) {
        *arg = ai;
        return 0;
    }
    int n = ai == 24 ? 1 : ai == 25 ? 2 : ai == 26 ? 4 : ai == 27 ? 8 : 0;
    if (n == 0 || r->end - r->p < n) return -1;
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | *r->p++;
    uint64_t least = n == 1 ? 24 : n == 2 ? 0x100 : n == 4 ? 0x10000 : 0x100000000ULL;
    if (v < least) return -1;
    *arg = v;
    return 0;
}

static int expect(Rd *r, int major, uint64_t *arg) {
    int m;
    return head(r, &m, arg) < 0 || m != major ? -1 : 0;
}

/* A byte or text string's contents (major 2 or 3). */
static int string(Rd *r, int major, const unsigned char **s, Py_ssize_t *n) {
    uint64_t len;
    if (expect(r, major, &len) < 0 || len > (uint64_t)(r->end - r->p)) return -1;
    *s = r->p;
    *n = (Py_ssize_t)len;
    r->p += len;
    return 0;
}

static PyObject *bytes_of(Rd *r, Py_ssize_t want_min, Py_ssize_t want_max) {
    const unsigned char *s;
    Py_ssize_t n;
    if (string(r, 2, &s, &n) < 0 || n < want_min || n > want_max) return NULL;
    return PyBytes_FromStringAndSize((const char *)s, n);
}

static PyObject *text_of(Rd *r) { /* a non-empty text; NULL (no exception set) otherwise */
    const unsigned char *s;
    Py_ssize_t n;
    if (string(r, 3, &s, &n) < 0 || n == 0) return NULL;
    PyObject *t = PyUnicode_DecodeUTF8((const char *)s, n, NULL);
    if (t == NULL) PyErr_Clear();
    return t;
}

static int uint_of(Rd *r, uint64_t *v) { return expect(r, 0, v); }

static PyObject *steps(PyObject *proof) { /* a proof's concatenated 32-byte steps as a list */
    Py_ssize_t n = PyBytes_GET_SIZE(proof) / HASH_LEN;
    PyObject *list = PyList_New(n);
    if (list == NULL) return NULL;
    const char *s = PyBytes_AS_STRING(proof);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *step = PyBytes_FromStringAndSize(s + i * HASH_LEN, HASH_LEN);
        if (step == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, step);
    }
    return list;
}

/* --- disclosed values -------------------------------------------------------------------------------------- */

/* registry/formats/gb_text.py GB_SAFE: ASCII printable, U+00B7, U+2014, U+2018, U+2019, U+201C, U+201D,
 * U+2026, U+3000..U+3011, U+4E00..U+9FA5, U+FF01..U+FF5E. */
static int gb_safe(Py_UCS4 c) {
    return (c >= 0x20 && c <= 0x7E) || c == 0xB7 || c == 0x2014 || c == 0x2018 || c == 0x2019 || c == 0x201C ||
           c == 0x201D || c == 0x2026 || (c >= 0x3000 && c <= 0x3011) || (c >= 0x4E00 && c <= 0x9FA5) ||
           (c >= 0xFF01 && c <= 0xFF5E);
}

/* The text of GB 18030 bytes when the encoder packs that text to exactly these bytes (gb_text.opened's
 * (value, True)); None when it does not or they do not decode. New reference, or NULL with an exception set.
 * ``cache`` is gb_text.GB_TEXTS (bytes -> (text, packs)), shared with the Python decoder and bounded alike. */
static PyObject *gb_text(const unsigned char *s, Py_ssize_t n, PyObject *cache, Py_ssize_t cache_size) {
    PyObject *key = PyBytes_FromStringAndSize((const char *)s, n);
    if (key == NULL) return NULL;
    PyObject *known = PyDict_GetItemWithError(cache, key); /* borrowed */
    if (known != NULL) {
        Py_DECREF(key);
        if (!PyTuple_CheckExact(known) || PyTuple_GET_SIZE(known) != 2) Py_RETURN_NONE;
        PyObject *text = PyTuple_GET_ITEM(known, 0);
        if (PyTuple_GET_ITEM(known, 1) != Py_True || !PyUnicode_CheckExact(text)) Py_RETURN_NONE;
        Py_INCREF(text);
        return text;
    }
    if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    PyObject *text = PyUnicode_Decode((const char *)s, n, "gb18030", "strict");
    if (text == NULL) { /* not GB 18030: the Python decoder says so */
        PyErr_Clear();
        Py_DECREF(key);
        Py_RETURN_NONE;
    }
    int packs = !PyUnicode_IS_ASCII(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    for (Py_ssize_t i = 0; packs && i < len; i++) packs = gb_safe(PyUnicode_READ(kind, data, i));
    if (packs) {
        PyObject *again = PyUnicode_AsEncodedString(text, "gb18030", "strict");
        if (again == NULL) {
            PyErr_Clear();
            packs = 0;
        } else {
            packs = PyBytes_GET_SIZE(again) == n && memcmp(PyBytes_AS_STRING(again), s, (size_t)n) == 0;
            Py_DECREF(again);
        }
    }
    /* the Python decoder's memo: what it would store for these bytes */
    if (PyDict_GET_SIZE(cache) >= cache_size) PyDict_Clear(cache);
    PyObject *entry = Py_BuildValue("(OO)", text, packs ? Py_True : Py_False);
    if (entry == NULL || PyDict_SetItem(cache, key, entry) < 0) {
        Py_XDECREF(entry);
        Py_DECREF(key);
        Py_DECREF(text);
        return NULL;
    }
    Py_DECREF(entry);
    Py_DECREF(key);
    if (!packs) {
        Py_DECREF(text);
        Py_RETURN_NONE;
    }
    return text;
}

/* A disclosed value in the form the encoder writes it: a new reference; None (new) when it is in another
 * form; NULL with an exception set on a failure of Python itself. */
static PyObject *value_of(Rd *r, PyObject *cache, Py_ssize_t cache_size) {
    if (r->p >= r->end) Py_RETURN_NONE;
    unsigned ib = *r->p;
    if (ib >> 5 == 7) {
        r->p++;
        if (ib == 0xF4) Py_RETURN_FALSE;
        if (ib == 0xF5) Py_RETURN_TRUE;
        /* null is the one value that needs a marker: the caller cannot tell it from "another form" */
        if (ib == 0xF6) return PyTuple_New(0);
        Py_RETURN_NONE;
    }
    int major;
    uint64_t arg;
    const unsigned char *s;
    Py_ssize_t n;
    switch (ib >> 5) {
    case 0:
        if (head(r, &major, &arg) < 0 || arg >= SAFE_INT) Py_RETURN_NONE;
        return PyLong_FromUnsignedLongLong(arg);
    case 1: /* -1 - arg */
        if (head(r, &major, &arg) < 0 || arg >= SAFE_INT - 1) Py_RETURN_NONE;
        return PyLong_FromLongLong(-1 - (long long)arg);
    case 2:
        if (string(r, 2, &s, &n) < 0) Py_RETURN_NONE;
        return gb_text(s, n, cache, cache_size);
    case 3: {
        if (string(r, 3, &s, &n) < 0) Py_RETURN_NONE;
        for (Py_ssize_t i = 0; i < n; i++)
            if (s[i] & 0x80) Py_RETURN_NONE; /* a text beyond ASCII the encoder did not pack: the Python decides */
        return PyUnicode_DecodeASCII((const char *)s, n, NULL);
    }
    default:
        Py_RETURN_NONE;
    }
}

/* --- the payload ------------------------------------------------------------------------------------------ */

/* A map of field code -> 32-byte hash into ``names`` (codes, ascending) and a new dict name -> hash. */
static PyObject *hashes_of(Rd *r, PyObject *codes, Py_ssize_t n_codes, unsigned char *seen, int mark) {
    uint64_t n, code;
    if (expect(r, 5, &n) < 0 || n > (uint64_t)n_codes) return NULL;
    PyObject *out = PyDict_New();
    if (out == NULL) return NULL;
    long last = -1;
    for (uint64_t i = 0; i < n; i++) {
        if (uint_of(r, &code) < 0 || code >= (uint64_t)n_codes || (long)code <= last) goto refuse;
        last = (long)code;
        if (seen[code] & mark) goto refuse;
        seen[code] |= mark;
        PyObject *leaf = bytes_of(r, HASH_LEN, HASH_LEN);
        if (leaf == NULL) goto refuse;
        int bad = PyDict_SetItem(out, PyTuple_GET_ITEM(codes, (Py_ssize_t)code), leaf);
        Py_DECREF(leaf);
        if (bad) goto refuse;
    }
    return out;
refuse:
    Py_DECREF(out);
    return NULL;
}

enum { SHOWN = 1, HIDDEN = 2, HIDDEN_SM3 = 4 };

/* parse(envelope, codes, gb_cache, gb_cache_size) -> None, or the decoded items:
 *   (identifier, type_code, seed, names, salts (None with a seed), values, hidden, index, size, proof,
 *    chain_id, ledger, block_number, block_timestamp, sm3_hidden (None when not carried), sm3_proof (None),
 *    signature (bytes) or statement (signed_at, key_id (b"" for an intl statement), signature), body) */
static PyObject *parse(PyObject *self, PyObject *args) {
    Py_buffer env;
    PyObject *codes, *cache;
    Py_ssize_t cache_size;
    if (!PyArg_ParseTuple(args, "y*O!O!n", &env, &PyTuple_Type, &codes, &PyDict_Type, &cache, &cache_size))
        return NULL;
    Py_ssize_t n_codes = PyTuple_GET_SIZE(codes);
    PyObject *result = NULL;
    PyObject *identifier = NULL, *type_code = NULL, *seed = NULL, *names = NULL, *salts = NULL, *values = NULL;
    PyObject *hidden = NULL, *proof = NULL, *proof_steps = NULL, *ledger = NULL, *sm3_hidden = NULL;
    PyObject *sm3_proof = NULL, *sm3_steps = NULL, *signed_ = NULL, *body = NULL;
    unsigned char seen[MAX_CODES] = {0};
    if (n_codes > MAX_CODES) goto done;

    /* the envelope */
    Rd r = {env.buf, (const unsigned char *)env.buf + env.len};
    uint64_t n, v;
    const unsigned char *b;
    Py_ssize_t blen;
    if (expect(&r, 4, &n) < 0 || n != 2 || string(&r, 2, &b, &blen) < 0) goto done;
    if (r.p < r.end && *r.p >> 5 == 4) {
        uint64_t signed_at;
        if (expect(&r, 4, &n) < 0 || (n != 2 && n != 3) || uint_of(&r, &signed_at) < 0) goto done;
        PyObject *key_id = n == 2 ? PyBytes_FromStringAndSize(NULL, 0) : bytes_of(&r, KEY_ID_LEN, KEY_ID_LEN);
        if (key_id == NULL) goto done;
        PyObject *sig = n == 2 ? bytes_of(&r, SIGNATURE_LEN, SIGNATURE_LEN) : bytes_of(&r, MIN_DER, MAX_DER);
        if (sig == NULL) {
            Py_DECREF(key_id);
            goto done;
        }
        signed_ = Py_BuildValue("(KNN)", (unsigned long long)signed_at, key_id, sig);
    } else {
        signed_ = bytes_of(&r, 0, SIGNATURE_LEN);
        if (signed_ != NULL && PyBytes_GET_SIZE(signed_) != 0 && PyBytes_GET_SIZE(signed_) != SIGNATURE_LEN)
            goto done;
    }
    if (signed_ == NULL || r.p != r.end) goto done;

    /* the body */
    r.p = b;
    r.end = b + blen;
    uint64_t items;
    if (expect(&r, 4, &items) < 0 || (items != BODY_ITEMS && items != BODY_ITEMS + 1)) goto done;
    if (uint_of(&r, &v) < 0 || v != FORMAT_VERSION) goto done;
    if ((identifier = text_of(&r)) == NULL || (type_code = text_of(&r)) == NULL) goto done;
    if ((seed = bytes_of(&r, 0, SEED_LEN)) == NULL) goto done;
    int with_seed = PyBytes_GET_SIZE(seed) == SEED_LEN;
    if (!with_seed && PyBytes_GET_SIZE(seed) != 0) goto done;

    uint64_t shown;
    if (expect(&r, 5, &shown) < 0 || shown > (uint64_t)n_codes) goto done;
    if ((names = PyList_New((Py_ssize_t)shown)) == NULL || (values = PyList_New((Py_ssize_t)shown)) == NULL)
        goto done;
    if (!with_seed && (salts = PyList_New((Py_ssize_t)shown)) == NULL) goto done;
    long last = -1;
    for (Py_ssize_t i = 0; i < (Py_ssize_t)shown; i++) {
        uint64_t code;
        if (uint_of(&r, &code) < 0 || code >= (uint64_t)n_codes || (long)code <= last) goto done;
        last = (long)code;
        seen[code] |= SHOWN;
        PyObject *name = PyTuple_GET_ITEM(codes, (Py_ssize_t)code);
        if (!PyUnicode_CheckExact(name) || PyUnicode_GET_LENGTH(name) == 0) goto done;
        Py_INCREF(name);
        PyList_SET_ITEM(names, i, name);
        if (!with_seed) {
            if (expect(&r, 4, &n) < 0 || n != 2) goto done;
            PyObject *salt = bytes_of(&r, SALT_LEN, SALT_LEN);
            if (salt == NULL) goto done;
            PyList_SET_ITEM(salts, i, salt);
        }
        PyObject *value = value_of(&r, cache, cache_size);
        if (value == NULL) goto fail;
        if (value == Py_None) {
            Py_DECREF(value);
            goto done;
        }
        if (PyTuple_CheckExact(value)) { /* null */
            Py_DECREF(value);
            value = Py_NewRef(Py_None);
        }
        PyList_SET_ITEM(values, i, value);
    }
    if ((hidden = hashes_of(&r, codes, n_codes, seen, HIDDEN)) == NULL) goto done;
    for (Py_ssize_t c = 0; c < n_codes; c++)
        if ((seen[c] & (SHOWN | HIDDEN)) == (SHOWN | HIDDEN)) goto done; /* disclosed and hidden */
    if (with_seed && PyDict_GET_SIZE(hidden)) goto done; /* the seed would give the hidden salts away */
    uint64_t index, size, chain_id, block_number, block_timestamp;
    if (uint_of(&r, &index) < 0 || uint_of(&r, &size) < 0 || index >= size) goto done;
    if ((proof = bytes_of(&r, 0, PY_SSIZE_T_MAX)) == NULL || PyBytes_GET_SIZE(proof) % HASH_LEN) goto done;
    if (uint_of(&r, &chain_id) < 0 || (ledger = bytes_of(&r, ADDRESS_LEN, ADDRESS_LEN)) == NULL) goto done;
    if (uint_of(&r, &block_number) < 0 || uint_of(&r, &block_timestamp) < 0) goto done;
    if (items == BODY_ITEMS + 1) {
        if (expect(&r, 4, &n) < 0 || n != 2) goto done;
        if ((sm3_hidden = hashes_of(&r, codes, n_codes, seen, HIDDEN_SM3)) == NULL) goto done;
        for (Py_ssize_t c = 0; c < n_codes; c++)
            if (!(seen[c] & HIDDEN) != !(seen[c] & HIDDEN_SM3)) goto done; /* the same fields hidden in both */
        if ((sm3_proof = bytes_of(&r, 0, PY_SSIZE_T_MAX)) == NULL) goto done;
        if (PyBytes_GET_SIZE(sm3_proof) != PyBytes_GET_SIZE(proof)) goto done;
        if ((sm3_steps = steps(sm3_proof)) == NULL) goto fail;
    }
    if (r.p != r.end) goto done;
    if ((proof_steps = steps(proof)) == NULL) goto fail;
    if ((body = PyBytes_FromStringAndSize((const char *)b, blen)) == NULL) goto fail;
    result = Py_BuildValue(
        "(OOOOOOOKKOKOKKOOOO)", identifier, type_code, seed, names, salts ? salts : Py_None, values, hidden,
        (unsigned long long)index, (unsigned long long)size, proof_steps, (unsigned long long)chain_id, ledger,
        (unsigned long long)block_number, (unsigned long long)block_timestamp, sm3_hidden ? sm3_hidden : Py_None,
        sm3_steps ? sm3_steps : Py_None, signed_, body);
    goto fail; /* result or NULL with the exception of Py_BuildValue */

done: /* a refusal, unless Python itself failed (memory) */
    if (PyErr_Occurred()) goto fail;
    result = Py_NewRef(Py_None);
fail:
    Py_XDECREF(identifier);
    Py_XDECREF(type_code);
    Py_XDECREF(seed);
    Py_XDECREF(names);
    Py_XDECREF(salts);
    Py_XDECREF(values);
    Py_XDECREF(hidden);
    Py_XDECREF(proof);
    Py_XDECREF(proof_steps);
    Py_XDECREF(ledger);
    Py_XDECREF(sm3_hidden);
    Py_XDECREF(sm3_proof);
    Py_XDECREF(sm3_steps);
    Py_XDECREF(signed_);
    Py_XDECREF(body);
    PyBuffer_Release(&env);
    return result;
}

static PyMethodDef methods[] = {
    {"b45decode", b45decode, METH_O, "Base45 text -> bytes, or None when it is not strictly valid (RFC 9285)."},
    {"parse", parse, METH_VARARGS, "An LZ2 envelope's items in the form the encoder writes, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_lz2", "The LZ2 decoder's common case in C (registry/formats/lz2.py decides).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__lz2(void) {
    static const char ALPHABET[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    memset(B45, -1, sizeof B45);
    for (int i = 0; i < 45; i++) B45[(unsigned char)ALPHABET[i]] = (signed char)i;
    return PyModule_Create(&module);
}
