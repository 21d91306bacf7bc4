/* The per-field work of a certificate document in C: field salts (HMAC-SHA256 of a seed), leaf entries
 * (RFC 8785 JSON of {"path", "salt", "value"}), leaf hashes and the RFC 6962 roots in SHA-256 and SM3, for
 * the hot paths of issuing (Document.issued), verifying a document and decoding an offline payload.
 *
 * registry/certificates/fields.py is the specification and the fallback: it calls these functions when the
 * module was built (pip install -e . builds it; it links the system's OpenSSL libcrypto, the same library
 * hashlib uses) and does the same work in Python otherwise. tests/unit/registry/test_leaves_c.py compares the
 * two on arbitrary paths, salts, values and hidden leaves, and OpenSSL's own SHA-256 and SM3 are the hashes.
 *
 * What it does not do, it hands back: document_roots returns None when a path or a value is not one of the
 * plain JSON values it writes (a str, None, a bool, an int within +-2^53) or a text has a lone surrogate;
 * the caller then takes the general encoders (rfc8785), which also raise their own errors.
 *
 * The GIL is held throughout: a document is ~20 fields, ~10 us of work; nothing here blocks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/evp.h>
#include <string.h>

#define DIGEST 32
#define HMAC_BLOCK 64
#define MAX_SEED HMAC_BLOCK

static EVP_MD *md_sha256; /* fetched once at import: EVP_MD_fetch is a provider lookup */
static EVP_MD *md_sm3;

/* --- a growable byte buffer ------------------------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) {
        if (cap > PY_SSIZE_T_MAX / 2) { PyErr_NoMemory(); return -1; }
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) { PyErr_NoMemory(); return -1; }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

#define buf_lit(b, s) buf_put((b), (s), (Py_ssize_t)(sizeof(s) - 1))

static const char HEX[] = "0123456789abcdef";

static int buf_hex(Buf *b, const unsigned char *s, Py_ssize_t n) {
    if (buf_reserve(b, 2 * n) < 0) return -1;
    char *out = b->data + b->len;
    for (Py_ssize_t i = 0; i < n; i++) {
        out[2 * i] = HEX[s[i] >> 4];
        out[2 * i + 1] = HEX[s[i] & 15];
    }
    b->len += 2 * n;
    return 0;
}

/* A JSON string as Python's json encoder with ensure_ascii=False writes it (and RFC 8785 §3.2.2.2): '"' and
 * '\\' escaped, \b \f \n \r \t by their short forms, other controls below 0x20 as \u00xx in lower case, the
 * rest as UTF-8. Returns 1 when the text has a lone surrogate (no UTF-8: the caller hands back), -1 on error. */
static int buf_json_str(Buf *b, PyObject *text) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) { PyErr_Clear(); return 1; }
        return -1;
    }
    if (buf_reserve(b, n + 2) < 0) return -1;
    b->data[b->len++] = '"';
    Py_ssize_t start = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        if (buf_put(b, s + start, i - start) < 0) return -1;
        start = i + 1;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        Py_ssize_t len = 2;
        switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                esc[1] = 'u'; esc[2] = '0'; esc[3] = '0'; esc[4] = HEX[c >> 4]; esc[5] = HEX[c & 15];
                len = 6;
        }
        if (buf_put(b, esc, len) < 0) return -1;
    }
    if (buf_put(b, s + start, n - start) < 0) return -1;
    return buf_lit(b, "\"");
}

/* A field value as JSON (registry.certificates.fields.value_json): 1 for a value it does not write. */
static int buf_json_value(Buf *b, PyObject *value) {
    if (value == Py_None) return buf_lit(b, "null");
    if (value == Py_True) return buf_lit(b, "true");
    if (value == Py_False) return buf_lit(b, "false");
    if (PyUnicode_CheckExact(value)) return buf_json_str(b, value);
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred()) return -1;
        const long long limit = 1LL << 53;
        if (overflow || v <= -limit || v >= limit) return 1;
        char digits[24];
        int len = snprintf(digits, sizeof digits, "%lld", v);
        return buf_put(b, digits, len);
    }
    return 1;
}

/* --- hashing ------------------------------------------------------------------------------------------ */

static int digest(EVP_MD_CTX *ctx, const EVP_MD *md, const void *a, size_t an, const void *b, size_t bn,
                  unsigned char *out) {
    unsigned int len = 0;
    if (!EVP_DigestInit_ex2(ctx, md, NULL) || !EVP_DigestUpdate(ctx, a, an) || (bn && !EVP_DigestUpdate(ctx, b, bn))
        || !EVP_DigestFinal_ex(ctx, out, &len) || len != DIGEST) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL digest failed");
        return -1;
    }
    return 0;
}

/* RFC 6962 §2.1 over leaf hashes: neighbours paired left to right, an unpaired last node promoted (the same
 * levels as registry.crypto.merkle.root_of_hashed_leaves). Folds ``nodes`` in place. */
static int fold_root(EVP_MD_CTX *ctx, const EVP_MD *md, unsigned char *nodes, Py_ssize_t n, unsigned char *root) {
    if (n == 0) return digest(ctx, md, "", 0, NULL, 0, root);
    unsigned char pair[1 + 2 * DIGEST];
    pair[0] = 0x01;
    while (n > 1) {
        Py_ssize_t half = n / 2;
        for (Py_ssize_t i = 0; i < half; i++) {
            memcpy(pair + 1, nodes + 2 * i * DIGEST, 2 * DIGEST);
            if (digest(ctx, md, pair, sizeof pair, NULL, 0, nodes + i * DIGEST) < 0) return -1;
        }
        if (n & 1) memmove(nodes + half * DIGEST, nodes + (n - 1) * DIGEST, DIGEST);
        n = half + (n & 1);
    }
    memcpy(root, nodes, DIGEST);
    return 0;
}

/* --- derive_salts --------------------------------------------------------------------------------------- */

PyDoc_STRVAR(derive_salts_doc,
"derive_salts(seed, label, paths, size) -> list[bytes]\n\n"
"HMAC-SHA256(seed, label || UTF-8(path))[:size] for each path (RFC 2104; a seed of at most 64 bytes).");

static PyObject *derive_salts(PyObject *self, PyObject *args) {
    Py_buffer seed, label;
    PyObject *paths;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "y*y*On:derive_salts", &seed, &label, &paths, &size)) return NULL;
    PyObject *result = NULL, *seq = NULL;
    EVP_MD_CTX *ctx = NULL;
    Buf msg = {0};
    if (seed.len > MAX_SEED || size < 0 || size > DIGEST) {
        PyErr_SetString(PyExc_ValueError, "seed longer than one SHA-256 block, or a salt size above 32");
        goto done;
    }
    seq = PySequence_Fast(paths, "paths must be a sequence");
    if (seq == NULL) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    unsigned char ipad[HMAC_BLOCK], opad[HMAC_BLOCK + DIGEST], inner[DIGEST], outer[DIGEST];
    memset(ipad, 0, HMAC_BLOCK);
    memcpy(ipad, seed.buf, (size_t)seed.len);
    for (int i = 0; i < HMAC_BLOCK; i++) {
        opad[i] = ipad[i] ^ 0x5c;
        ipad[i] ^= 0x36;
    }
    if ((ctx = EVP_MD_CTX_new()) == NULL) { PyErr_NoMemory(); goto done; }
    if ((result = PyList_New(n)) == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *path = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(path)) {
            PyErr_Format(PyExc_TypeError, "field path must be str, not %.80s", Py_TYPE(path)->tp_name);
            Py_CLEAR(result);
            goto done;
        }
        Py_ssize_t plen;
        const char *p = PyUnicode_AsUTF8AndSize(path, &plen); /* UnicodeEncodeError for a lone surrogate, as in Python */
        msg.len = 0;
        if (p == NULL || buf_put(&msg, label.buf, label.len) < 0 || buf_put(&msg, p, plen) < 0
            || digest(ctx, md_sha256, ipad, HMAC_BLOCK, msg.data, (size_t)msg.len, inner) < 0) {
            Py_CLEAR(result);
            goto done;
        }
        memcpy(opad + HMAC_BLOCK, inner, DIGEST);
        PyObject *salt;
        if (digest(ctx, md_sha256, opad, sizeof opad, NULL, 0, outer) < 0
            || (salt = PyBytes_FromStringAndSize((const char *)outer, size)) == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, salt);
    }
done:
    PyMem_Free(msg.data);
    EVP_MD_CTX_free(ctx);
    Py_XDECREF(seq);
    PyBuffer_Release(&seed);
    PyBuffer_Release(&label);
    return result;
}

/* --- document_roots ------------------------------------------------------------------------------------- */

PyDoc_STRVAR(document_roots_doc,
"document_roots(paths, salts, values, hidden_sha256, hidden_sm3, sha256, sm3, fields_json)\n"
"    -> (root_sha256 | None, root_sm3 | None, fields_json | None) | None\n\n"
"The RFC 6962 roots of a document's field leaves in tree order. Field i is shown when salts[i] is bytes: its\n"
"leaf hash is H(0x00 || {\"path\":<path>,\"salt\":\"<hex>\",\"value\":<value>}); it is hidden when salts[i] is\n"
"None: hidden_sha256[i] and hidden_sm3[i] are its 32-byte leaf hashes. sha256 and sm3 say which roots to make.\n"
"With fields_json, also the UTF-8 text of the shown fields as the document's JSON 'fields' object holds them\n"
"(without braces): \"<path>\":{\"salt\":\"<hex>\",\"value\":<value>}, joined by commas.\n"
"None when a path or value is not plain JSON text (see registry.certificates.fields.value_json).");

static PyObject *document_roots(PyObject *self, PyObject *args) {
    PyObject *paths, *salts, *values, *hidden256, *hiddensm3;
    int want256, wantsm3, want_json;
    if (!PyArg_ParseTuple(args, "OOOOOppp:document_roots", &paths, &salts, &values, &hidden256, &hiddensm3,
                          &want256, &wantsm3, &want_json))
        return NULL;
    PyObject *result = NULL, *ps = NULL, *ss = NULL, *vs = NULL, *h256 = NULL, *hsm3 = NULL;
    EVP_MD_CTX *ctx = NULL;
    unsigned char *leaves256 = NULL, *leavessm3 = NULL;
    Buf entry = {0}, json = {0};
    int plain = 1;

    if ((ps = PySequence_Fast(paths, "paths must be a sequence")) == NULL
        || (ss = PySequence_Fast(salts, "salts must be a sequence")) == NULL
        || (vs = PySequence_Fast(values, "values must be a sequence")) == NULL)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(ps);
    if (PySequence_Fast_GET_SIZE(ss) != n || PySequence_Fast_GET_SIZE(vs) != n) {
        PyErr_SetString(PyExc_ValueError, "paths, salts and values must have the same length");
        goto done;
    }
    if (hidden256 != Py_None && (h256 = PySequence_Fast(hidden256, "hidden_sha256 must be a sequence")) == NULL)
        goto done;
    if (hiddensm3 != Py_None && (hsm3 = PySequence_Fast(hiddensm3, "hidden_sm3 must be a sequence")) == NULL)
        goto done;
    if ((h256 && PySequence_Fast_GET_SIZE(h256) != n) || (hsm3 && PySequence_Fast_GET_SIZE(hsm3) != n)) {
        PyErr_SetString(PyExc_ValueError, "hidden leaf hashes must have one item per path");
        goto done;
    }
    if ((ctx = EVP_MD_CTX_new()) == NULL) { PyErr_NoMemory(); goto done; }
    size_t bytes = (size_t)(n ? n : 1) * DIGEST;
    if ((want256 && (leaves256 = PyMem_Malloc(bytes)) == NULL) || (wantsm3 && (leavessm3 = PyMem_Malloc(bytes)) == NULL)) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n && plain; i++) {
        PyObject *path = PySequence_Fast_GET_ITEM(ps, i), *salt = PySequence_Fast_GET_ITEM(ss, i);
        if (salt == Py_None) { /* a hidden field: its leaf hashes as given */
            PyObject *sources[2] = {h256 ? PySequence_Fast_GET_ITEM(h256, i) : NULL,
                                    hsm3 ? PySequence_Fast_GET_ITEM(hsm3, i) : NULL};
            unsigned char *targets[2] = {leaves256, leavessm3};
            for (int a = 0; a < 2; a++) {
                if (targets[a] == NULL) continue;
                PyObject *h = sources[a];
                if (h == NULL || !PyBytes_Check(h) || PyBytes_GET_SIZE(h) != DIGEST) {
                    PyErr_Format(PyExc_ValueError, "hidden field %zd needs a 32-byte %s leaf hash", i,
                                 a ? "SM3" : "SHA-256");
                    goto done;
                }
                memcpy(targets[a] + i * DIGEST, PyBytes_AS_STRING(h), DIGEST);
            }
            continue;
        }
        if (!PyUnicode_CheckExact(path) || !PyBytes_Check(salt)) { plain = 0; break; }
        /* '\x00{"path":<path>,"salt":"<hex>","value":<value>}' */
        entry.len = 0;
        int r;
        if (buf_put(&entry, "\0{\"path\":", 9) < 0 || (r = buf_json_str(&entry, path)) < 0) goto done;
        if (r) { plain = 0; break; }
        Py_ssize_t path_end = entry.len;
        if (buf_lit(&entry, ",\"salt\":\"") < 0
            || buf_hex(&entry, (const unsigned char *)PyBytes_AS_STRING(salt), PyBytes_GET_SIZE(salt)) < 0
            || buf_lit(&entry, "\",\"value\":") < 0)
            goto done;
        Py_ssize_t value_start = entry.len;
        if ((r = buf_json_value(&entry, PySequence_Fast_GET_ITEM(vs, i))) < 0) goto done;
        if (r) { plain = 0; break; }
        Py_ssize_t value_end = entry.len;
        if (buf_lit(&entry, "}") < 0) goto done;
        if (leaves256 && digest(ctx, md_sha256, entry.data, (size_t)entry.len, NULL, 0, leaves256 + i * DIGEST) < 0)
            goto done;
        if (leavessm3 && digest(ctx, md_sm3, entry.data, (size_t)entry.len, NULL, 0, leavessm3 + i * DIGEST) < 0)
            goto done;
        if (want_json) { /* <path>:{"salt":"<hex>","value":<value>} from the same pieces */
            if ((json.len && buf_lit(&json, ",") < 0) || buf_put(&json, entry.data + 9, path_end - 9) < 0
                || buf_lit(&json, ":{\"salt\":\"") < 0
                || buf_hex(&json, (const unsigned char *)PyBytes_AS_STRING(salt), PyBytes_GET_SIZE(salt)) < 0
                || buf_lit(&json, "\",\"value\":") < 0
                || buf_put(&json, entry.data + value_start, value_end - value_start) < 0 || buf_lit(&json, "}") < 0)
                goto done;
        }
    }
    if (!plain) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    unsigned char root256[DIGEST], rootsm3[DIGEST];
    if ((leaves256 && fold_root(ctx, md_sha256, leaves256, n, root256) < 0)
        || (leavessm3 && fold_root(ctx, md_sm3, leavessm3, n, rootsm3) < 0))
        goto done;
    result = Py_BuildValue("(NNN)",
                           leaves256 ? PyBytes_FromStringAndSize((const char *)root256, DIGEST) : Py_NewRef(Py_None),
                           leavessm3 ? PyBytes_FromStringAndSize((const char *)rootsm3, DIGEST) : Py_NewRef(Py_None),
                           want_json ? PyBytes_FromStringAndSize(json.data ? json.data : "", json.len)
                                     : Py_NewRef(Py_None));
done:
    PyMem_Free(entry.data);
    PyMem_Free(json.data);
    PyMem_Free(leaves256);
    PyMem_Free(leavessm3);
    EVP_MD_CTX_free(ctx);
    Py_XDECREF(ps);
    Py_XDECREF(ss);
    Py_XDECREF(vs);
    Py_XDECREF(h256);
    Py_XDECREF(hsm3);
    return result;
}

/* --- batch_root ------------------------------------------------------------------------------------------- */

PyDoc_STRVAR(batch_root_doc,
"batch_root(digest, index, size, proof, sm3) -> bytes | None\n\n"
"The root that a document digest's leaf H(0x00 || digest), its index in a tree of size leaves and its audit\n"
"path (a sequence of 32-byte hashes) lead to, by RFC 9162 §2.1.3.2 steps 1-6 in SHA-256 (SM3 with sm3);\n"
"None when the path does not fit index and size. ValueError for a step that is not 32 bytes.");

static PyObject *batch_root(PyObject *self, PyObject *args) {
    Py_buffer leaf_in;
    unsigned long long fn, size;
    PyObject *proof;
    int sm3;
    if (!PyArg_ParseTuple(args, "y*KKOp:batch_root", &leaf_in, &fn, &size, &proof, &sm3)) return NULL;
    PyObject *result = NULL, *seq = PySequence_Fast(proof, "proof must be a sequence of 32-byte hashes");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = sm3 ? md_sm3 : md_sha256;
    unsigned char node[1 + 2 * DIGEST], r[DIGEST];
    if (seq == NULL) goto done;
    if (ctx == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    node[0] = 0x00;
    if (digest(ctx, md, node, 1, leaf_in.buf, (size_t)leaf_in.len, r) < 0) goto done;
    node[0] = 0x01;
    if (size == 0) { /* no leaf: no path fits */
        result = Py_NewRef(Py_None);
        goto done;
    }
    unsigned long long sn = size - 1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **steps = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = steps[i];
        if (!PyBytes_Check(p) || PyBytes_GET_SIZE(p) != DIGEST) {
            PyErr_SetString(PyExc_ValueError, "an audit path step is not 32 bytes");
            goto done;
        }
        if (sn == 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        int left = (fn & 1) || fn == sn; /* the step is the left neighbour */
        memcpy(node + 1, left ? PyBytes_AS_STRING(p) : (const char *)r, DIGEST);
        memcpy(node + 1 + DIGEST, left ? (const char *)r : PyBytes_AS_STRING(p), DIGEST);
        if (digest(ctx, md, node, sizeof node, NULL, 0, r) < 0) goto done;
        if (left)
            while (!(fn & 1) && fn != 0) { /* step ii: skip the levels where this node was promoted */
                fn >>= 1;
                sn >>= 1;
            }
        fn >>= 1;
        sn >>= 1;
    }
    result = sn == 0 ? PyBytes_FromStringAndSize((const char *)r, DIGEST) : Py_NewRef(Py_None);
done:
    EVP_MD_CTX_free(ctx);
    Py_XDECREF(seq);
    PyBuffer_Release(&leaf_in);
    return result;
}

/* --- the module -------------------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"derive_salts", derive_salts, METH_VARARGS, derive_salts_doc},
    {"document_roots", document_roots, METH_VARARGS, document_roots_doc},
    {"batch_root", batch_root, METH_VARARGS, batch_root_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_leaves",
    "Field salts, leaf entries and RFC 6962 roots of certificate documents in C (see registry.certificates.fields).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__leaves(void) {
    if (md_sha256 == NULL) md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (md_sm3 == NULL) md_sm3 = EVP_MD_fetch(NULL, "SM3", NULL);
    if (md_sha256 == NULL || md_sm3 == NULL) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL offers no SHA-256 or no SM3: the Python implementation is used");
        return NULL;
    }
    return PyModule_Create(&module);
}
