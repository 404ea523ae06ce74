# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The hash chain of the audit log, in C and without the GIL: byte for byte what the pure-Python
loop of :meth:`vigil.audit.logfile.AuditFile._write` gives (``tests/test_audit_chain.py`` checks
the equality with hypothesis).

Why this exists: chaining runs on the writer thread, one SHA-256 and one splice per event. In
Python that is ~1.6 µs an event with the GIL held, which the deciding thread waits for (measured on
the shared harness: the chain cost ~0.02-0.05 x the reference's p50, ``docs/benchmarks.md``,
"Audit durability"). Here the splice and the hash (OpenSSL's SHA-256 through EVP) run with the GIL released,
so decisions go on while the writer chains. Built only when OpenSSL's headers are there
(``setup.py``: optional); otherwise the Python loop runs."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memchr, memcpy

cdef extern from "openssl/evp.h" nogil:
    ctypedef struct EVP_MD:
        pass
    ctypedef struct EVP_MD_CTX:
        pass
    EVP_MD *EVP_MD_fetch(void *libctx, const char *algorithm, const char *properties)
    EVP_MD_CTX *EVP_MD_CTX_new()
    void EVP_MD_CTX_free(EVP_MD_CTX *ctx)
    int EVP_DigestInit_ex2(EVP_MD_CTX *ctx, const EVP_MD *type, const void *params)
    int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt)
    int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s)

# fetched once: OpenSSL 3's one-shot SHA256() looks the algorithm up at every call
cdef EVP_MD *_SHA256 = EVP_MD_fetch(NULL, b"SHA256", NULL)

cdef const char *_HEX = b"0123456789abcdef"
cdef const char *_SEQ = b',"seq":'
cdef const char *_PREV = b',"prev":"'
DEF SEQ_LEN = 7
DEF PREV_LEN = 9
DEF HEAD_LEN = 64


cdef inline Py_ssize_t _digits(long long v, char *out) noexcept nogil:
    """``v`` (>= 0) in decimal at ``out``; returns the length."""
    cdef char tmp[24]
    cdef Py_ssize_t n = 0, i
    if v == 0:
        out[0] = 48  # '0'
        return 1
    while v > 0:
        tmp[n] = <char>(48 + v % 10)
        v //= 10
        n += 1
    for i in range(n):
        out[i] = tmp[n - 1 - i]
    return n


def chain_block(bytes chunk, bytes mark, long long seq, bytes head, Py_ssize_t cap):
    """Chain every line of ``chunk`` (event lines, each a JSON object ended by ``\\n``): before
    its closing brace, splice ``mark``, ``"seq"`` (``seq`` + 1, + 2, ...) and ``"prev"`` (the
    SHA-256 hex of the line before, ``head`` for the first).

    Returns ``(block, count, seq, head, last)``: the chained lines joined by ``\\n`` (none after
    the last), how many, the last seq, the last line's hash and its length; ``None`` when a line
    is longer than ``cap`` or does not end in ``}`` (the caller's Python path handles those)."""
    cdef Py_ssize_t size = PyBytes_GET_SIZE(chunk)
    cdef Py_ssize_t mlen = PyBytes_GET_SIZE(mark)
    cdef const char *src = PyBytes_AS_STRING(chunk)
    cdef const char *mk = PyBytes_AS_STRING(mark)
    cdef const char *nl
    cdef Py_ssize_t n = 0, pos = 0, ln, i
    if PyBytes_GET_SIZE(head) != HEAD_LEN or _SHA256 == NULL:
        return None
    # count the lines and check each (with the GIL: no allocation yet)
    while pos < size:
        nl = <const char *>memchr(src + pos, 10, size - pos)
        if nl == NULL:
            return None  # a chunk always ends with a newline
        ln = nl - (src + pos)
        if ln > cap or ln < 2 or src[pos + ln - 1] != 125:
            return None
        n += 1
        pos += ln + 1
    if n == 0:
        return (b"", 0, seq, head, 0)
    if seq < 0 or seq > 9_000_000_000_000_000_000 - n:  # far below LLONG_MAX: never overflows
        return None
    cdef Py_ssize_t bound = size + n * (mlen + SEQ_LEN + 20 + PREV_LEN + HEAD_LEN + 2)
    out_obj = PyBytes_FromStringAndSize(NULL, bound)
    cdef char *out = PyBytes_AS_STRING(out_obj)
    cdef char hexhead[HEAD_LEN]
    cdef unsigned char md[32]
    cdef unsigned int md_len = 0
    cdef Py_ssize_t w = 0, start = 0, last = 0
    cdef int ok = 1
    cdef EVP_MD_CTX *ctx = EVP_MD_CTX_new()
    if ctx == NULL:
        return None
    memcpy(hexhead, PyBytes_AS_STRING(head), HEAD_LEN)
    with nogil:
        pos = 0
        while pos < size:
            nl = <const char *>memchr(src + pos, 10, size - pos)
            ln = nl - (src + pos)
            if w:
                out[w] = 10  # newline
                w += 1
            start = w
            memcpy(out + w, src + pos, ln - 1)  # the line without its closing brace
            w += ln - 1
            memcpy(out + w, mk, mlen)
            w += mlen
            memcpy(out + w, _SEQ, SEQ_LEN)
            w += SEQ_LEN
            seq += 1
            w += _digits(seq, out + w)
            memcpy(out + w, _PREV, PREV_LEN)
            w += PREV_LEN
            memcpy(out + w, hexhead, HEAD_LEN)
            w += HEAD_LEN
            out[w] = 34  # '"'
            out[w + 1] = 125  # '}'
            w += 2
            if (
                EVP_DigestInit_ex2(ctx, _SHA256, NULL) != 1
                or EVP_DigestUpdate(ctx, out + start, w - start) != 1
                or EVP_DigestFinal_ex(ctx, md, &md_len) != 1
            ):
                ok = 0
                break
            for i in range(32):
                hexhead[2 * i] = _HEX[md[i] >> 4]
                hexhead[2 * i + 1] = _HEX[md[i] & 15]
            last = w - start
            pos += ln + 1
    EVP_MD_CTX_free(ctx)
    if not ok:
        return None
    return (out_obj[:w], n, seq, PyBytes_FromStringAndSize(hexhead, HEAD_LEN), last)
