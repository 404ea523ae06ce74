# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The audit event lines of decision records, written by C code for the event's fixed schema
(version 1): byte for byte what ``orjson.dumps(decision_event(record))`` gives, each line ended by
a newline. :class:`LineBuffer` is the sink's buffer: it encodes each record as it is added and
hands the lines out in chunks.

Why this exists: the audit event was the tail of the decision latency (``docs/benchmarks.md``,
"Latest runs"). orjson over an event dict costs ~1.1-2.7 µs an event, mostly building and walking
Python dicts and calling the ``to_json`` hook for the context's Cedar values; writing the known
fields straight into a buffer costs a fraction.

orjson stays the reference and the fallback: a record with errors, a context value this writer
does not know (a non-empty set, an entity reference, a decimal, an integer outside 64 bits, ...)
or text that is not valid Unicode goes to ``orjson.dumps(to_json(value))`` for that value, or to
the caller's ``fallback(record)`` for the whole record. ``tests/test_audit_events.py`` checks the
equality with hypothesis. Only built when compiled (``setup.py``); without it
:mod:`vigil.audit.events` uses orjson for everything."""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_Next
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.ref cimport PyObject
from libc.time cimport time_t, tm

from vigil.model.decision cimport DecisionRecord
from vigil.policy.extensions cimport IPAddr

import orjson

from vigil.model import decision as _decision
from vigil.policy.json_values import to_json

# The byte-level writers are C: the output buffer, literals (their length taken by sizeof, so none
# is counted by hand; a build where a literal reaches the macro as a pointer fails to compile), JSON
# strings escaped as orjson escapes them, integers.
cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #include <time.h>

    /* A growing byte buffer in raw memory (no Python object: it can be filled without calling
       into Python, so a LineBuffer's append is atomic under the GIL). It may start in a caller's
       stack array (owned == 0) and moves to the heap when it outgrows it. */
    typedef struct { char *data; Py_ssize_t length; Py_ssize_t capacity; int owned; } vigil_buf;

    static void vigil_init(vigil_buf *b, char *start, Py_ssize_t capacity) {
        b->data = start;
        b->length = 0;
        b->capacity = capacity;
        b->owned = 0;
    }

    static int vigil_grow(vigil_buf *b, Py_ssize_t extra) {
        Py_ssize_t need = b->length + extra, capacity = b->capacity * 2;
        char *data;
        if (capacity < need) capacity = need;
        if (b->owned) {
            data = (char *)PyMem_RawRealloc(b->data, (size_t)capacity);
        } else {
            data = (char *)PyMem_RawMalloc((size_t)capacity);
            if (data != NULL && b->length) memcpy(data, b->data, (size_t)b->length);
        }
        if (data == NULL) { PyErr_NoMemory(); return -1; }
        b->data = data;
        b->capacity = capacity;
        b->owned = 1;
        return 0;
    }

    static void vigil_release(vigil_buf *b) {
        if (b->owned) PyMem_RawFree(b->data);
        b->data = NULL;
        b->length = b->capacity = 0;
        b->owned = 0;
    }

    static CYTHON_INLINE __attribute__((always_inline)) int vigil_reserve(vigil_buf *b, Py_ssize_t extra) {
        return b->length + extra <= b->capacity ? 0 : vigil_grow(b, extra);
    }

    static CYTHON_INLINE __attribute__((always_inline)) int vigil_put(vigil_buf *b, const char *s, Py_ssize_t n) {
        if (vigil_reserve(b, n) < 0) return -1;
        memcpy(b->data + b->length, s, (size_t)n);
        b->length += n;
        return 0;
    }

    #define VIGIL_IS_ARRAY(a) (!__builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0])))
    #define VIGIL_LIT(b, s) \
        vigil_put((b), (s), (Py_ssize_t)(sizeof(s) - 1 + 0 * sizeof(char[VIGIL_IS_ARRAY(s) ? 1 : -1])))

    /* any byte of x below 0x20, or '"', or '\\' (exact for "any"; SWAR zero-byte tests) */
    static CYTHON_INLINE int vigil_needs_escape(uint64_t x) {
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        uint64_t quote = x ^ (ones * 0x22), backslash = x ^ (ones * 0x5C);
        return (((x - ones * 0x20) & ~x)
                | ((quote - ones) & ~quote)
                | ((backslash - ones) & ~backslash)) & highs ? 1 : 0;
    }

    static const char vigil_hex[] = "0123456789abcdef";

    /* 1 for the bytes JSON text must escape: below 0x20, the quote and the backslash */
    static const unsigned char vigil_escaped[256] = {
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    };

    /* the UTF-8 text s[0:n] as a JSON string, escaped as orjson escapes it */
    static int vigil_put_utf8(vigil_buf *b, const unsigned char *s, Py_ssize_t n) {
        Py_ssize_t i = 0;
        char *out;
        uint64_t word;
        if (vigil_reserve(b, 6 * n + 2) < 0) return -1;  /* an escaped byte takes six at most */
        out = b->data + b->length;
        *out++ = '"';
        for (; i + 8 <= n; i += 8) {
            memcpy(&word, s + i, 8);
            if (vigil_needs_escape(word)) break;
            memcpy(out, &word, 8);
            out += 8;
        }
        if (i == n - n % 8 && n >= 8 && i < n) {
            /* the last bytes, as the word ending the text (it overlaps the one before) */
            memcpy(&word, s + n - 8, 8);
            if (!vigil_needs_escape(word)) {
                memcpy(out - (8 - n % 8), &word, 8);
                out += n % 8;
                i = n;
            }
        }
        for (; i < n; i++) {
            unsigned char c = s[i];
            if (!vigil_escaped[c]) { *out++ = (char)c; continue; }
            *out++ = '\\\\';
            switch (c) {
            case '"': *out++ = '"'; break;
            case '\\\\': *out++ = '\\\\'; break;
            case '\\b': *out++ = 'b'; break;
            case '\\t': *out++ = 't'; break;
            case '\\n': *out++ = 'n'; break;
            case '\\f': *out++ = 'f'; break;
            case '\\r': *out++ = 'r'; break;
            default:
                *out++ = 'u'; *out++ = '0'; *out++ = '0';
                *out++ = vigil_hex[c >> 4]; *out++ = vigil_hex[c & 15];
            }
        }
        *out++ = '"';
        b->length = out - b->data;
        return 0;
    }

    /* a str as a JSON string: 0; 1 (nothing written, no exception) for text UTF-8 cannot carry
       (lone surrogates); -1 with an exception when out of memory */
    static int vigil_put_str(vigil_buf *b, PyObject *text) {
        const char *utf8;
        Py_ssize_t n;
        if (PyUnicode_IS_COMPACT_ASCII(text)) {
            utf8 = (const char *)PyUnicode_DATA(text);
            n = PyUnicode_GET_LENGTH(text);
        } else {
            utf8 = PyUnicode_AsUTF8AndSize(text, &n);
            if (utf8 == NULL) { PyErr_Clear(); return 1; }
        }
        return vigil_put_utf8(b, (const unsigned char *)utf8, n);
    }

    static int vigil_put_long(vigil_buf *b, long long value) {
        char digits[24];
        int i = 24;
        unsigned long long u = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
        do { digits[--i] = (char)('0' + u % 10); u /= 10; } while (u);
        if (value < 0) digits[--i] = '-';
        return vigil_put(b, digits + i, 24 - i);
    }

    /* "<prefix>-<counter as at least ten hex digits>", quoted (DecisionRecord.id) */
    static int vigil_put_id(vigil_buf *b, const char *prefix, Py_ssize_t prefix_n, unsigned long long counter) {
        char digits[16];
        int i = 16;
        if (vigil_reserve(b, prefix_n + 20) < 0) return -1;
        do { digits[--i] = vigil_hex[counter & 15]; counter >>= 4; } while (counter);
        while (i > 6) digits[--i] = '0';
        b->data[b->length++] = '"';
        memcpy(b->data + b->length, prefix, (size_t)prefix_n);
        b->length += prefix_n;
        b->data[b->length++] = '-';
        memcpy(b->data + b->length, digits + i, (size_t)(16 - i));
        b->length += 16 - i;
        b->data[b->length++] = '"';
        return 0;
    }

    /* "YYYY-MM-DDTHH:MM:SS.ffffffZ" quoted, for 0 <= micros < 10000-01-01; the formatted second
       is cached (called with the GIL held) */
    static long long vigil_cached_second = -1;
    static char vigil_cached_prefix[24];

    static int vigil_put_time(vigil_buf *b, long long micros) {
        long long second = micros / 1000000, frac = micros % 1000000;
        char *out;
        int i;
        if (second != vigil_cached_second) {
            time_t t = (time_t)second;
            struct tm parts;
            gmtime_r(&t, &parts);
            snprintf(vigil_cached_prefix, sizeof vigil_cached_prefix, "%04d-%02d-%02dT%02d:%02d:%02d.",
                     parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
                     parts.tm_min, parts.tm_sec);
            vigil_cached_second = second;
        }
        if (vigil_reserve(b, 30) < 0) return -1;
        out = b->data + b->length;
        *out++ = '"';
        memcpy(out, vigil_cached_prefix, 20);
        out += 20;
        for (i = 5; i >= 0; i--) { out[i] = (char)('0' + frac % 10); frac /= 10; }
        out += 6;
        *out++ = 'Z';
        *out++ = '"';
        b->length = out - b->data;
        return 0;
    }
    """
    ctypedef struct vigil_buf:
        char* data
        Py_ssize_t length
        Py_ssize_t capacity
    void vigil_init(vigil_buf* b, char* start, Py_ssize_t capacity)
    void vigil_release(vigil_buf* b)
    int vigil_reserve(vigil_buf* b, Py_ssize_t extra) except -1
    int vigil_put(vigil_buf* b, const char* s, Py_ssize_t n) except -1
    int VIGIL_LIT(vigil_buf* b, const char* s) except -1
    int vigil_put_str(vigil_buf* b, object text) except -1
    int vigil_put_long(vigil_buf* b, long long value) except -1
    int vigil_put_id(vigil_buf* b, const char* prefix, Py_ssize_t prefix_n, unsigned long long counter) except -1
    int vigil_put_time(vigil_buf* b, long long micros) except -1
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size)


# A context nested deeper than this goes to orjson (which raises past its own limit).
cdef int MAX_DEPTH = 32
# 10000-01-01 in epoch microseconds: later times (and times before 1970) use the Python formatter.
cdef double MAX_EPOCH_MICROS = 253402300800.0 * 1000000.0


cdef int _put_strings(vigil_buf* b, object items) except -1:
    """A tuple of str as a JSON array; 1 (the caller falls back) for anything else."""
    cdef tuple strings
    cdef object item
    cdef bint first = True
    if type(items) is not tuple:
        return 1
    strings = items
    VIGIL_LIT(b, b"[")
    for item in strings:
        if not isinstance(item, str):
            return 1
        if not first:
            VIGIL_LIT(b, b",")
        first = False
        if vigil_put_str(b, item):
            return 1
    return VIGIL_LIT(b, b"]")


cdef int _is_uid(object uid):
    """True for a ``(type, id)`` pair of str."""
    cdef tuple pair
    if type(uid) is not tuple:
        return False
    pair = uid
    return len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], str)


cdef int _put_uid(vigil_buf* b, tuple uid, bint action) except -1:
    """``"<type>","id":"<id>"`` of a pair :func:`_is_uid` accepted (``"name"`` for an action's);
    1 for text JSON cannot carry."""
    if vigil_put_str(b, uid[0]):
        return 1
    if action:
        VIGIL_LIT(b, b',"name":')
    else:
        VIGIL_LIT(b, b',"id":')
    return vigil_put_str(b, uid[1])


cdef int _put_value(vigil_buf* b, object value, int depth) except -1:
    """A context value as ``to_json`` then orjson write it. Values this writer does not know go
    through ``orjson.dumps(to_json(value))`` (whose errors propagate); returns 1 (fall back for the
    record) for text that is not valid Unicode and for a record with a key that is not a str."""
    cdef object t = type(value)
    cdef long long number
    cdef int overflow = 0
    cdef object text
    cdef bytes encoded
    if t is str:
        return vigil_put_str(b, value)
    if t is bool:
        if value:
            return VIGIL_LIT(b, b"true")
        return VIGIL_LIT(b, b"false")
    if t is int:
        number = PyLong_AsLongLongAndOverflow(value, &overflow)
        if not overflow:
            return vigil_put_long(b, number)
    elif t is IPAddr:
        text = (<IPAddr>value).text
        if type(text) is str:
            VIGIL_LIT(b, b'{"__extn":{"fn":"ip","arg":')
            if vigil_put_str(b, text):
                return 1
            return VIGIL_LIT(b, b"}}")
    elif t is dict and depth < MAX_DEPTH:
        return _put_object(b, value, depth + 1)
    elif t is frozenset and not value:
        return VIGIL_LIT(b, b"[]")
    encoded = orjson.dumps(to_json(value))
    return vigil_put(b, encoded, len(encoded))


cdef int _put_object(vigil_buf* b, dict obj, int depth) except -1:
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* item
    cdef bint first = True
    VIGIL_LIT(b, b"{")
    while PyDict_Next(obj, &pos, &key, &item):
        if type(<object>key) is not str:
            return 1  # orjson refuses it: the record's fallback raises orjson's error
        if not first:
            VIGIL_LIT(b, b",")
        first = False
        if vigil_put_str(b, <object>key):
            return 1
        VIGIL_LIT(b, b":")
        if _put_value(b, <object>item, depth):
            return 1
    return VIGIL_LIT(b, b"}")


cdef int _put_record(vigil_buf* b, DecisionRecord r, const char* prefix, Py_ssize_t prefix_n) except -1:
    """One event line (without its newline). 1 when the record needs the fallback: errors, an
    error, a property overlay, a delegation, a field of an unexpected type, text that is not valid Unicode."""
    cdef object context = r.context
    cdef object value = r._id
    cdef double scaled = r.time * 1000000.0
    if r.errors or r.error is not None or r.overlay is not None or r.delegation is not None or not (scaled >= 0.0 and scaled < MAX_EPOCH_MICROS):
        return 1
    if context is not None and type(context) is not dict:
        return 1
    if not _is_uid(r.principal) or not _is_uid(r.action) or not _is_uid(r.resource):
        return 1
    if not isinstance(r.policy_revision, str):
        return 1
    VIGIL_LIT(b, b'{"v":1,"type":"decision","id":')
    if type(value) is int and 0 <= value <= 0xFFFFFFFFFFFFFFFF:
        vigil_put_id(b, prefix, prefix_n, value)
    elif vigil_put_str(b, r.id):
        return 1
    VIGIL_LIT(b, b',"time":')
    vigil_put_time(b, <long long>scaled)  # truncates toward zero, as int() of a float does
    if r.allowed:
        VIGIL_LIT(b, b',"decision":"allow","subject":{"type":')
    else:
        VIGIL_LIT(b, b',"decision":"deny","subject":{"type":')
    if _put_uid(b, <tuple>r.principal, False):
        return 1
    VIGIL_LIT(b, b'},"action":{"type":')
    if _put_uid(b, <tuple>r.action, True):
        return 1
    VIGIL_LIT(b, b'},"resource":{"type":')
    if _put_uid(b, <tuple>r.resource, False):
        return 1
    VIGIL_LIT(b, b'},"reason_codes":')
    if _put_strings(b, r.reason_codes):
        return 1
    VIGIL_LIT(b, b',"policies":')
    if _put_strings(b, r.policies):
        return 1
    VIGIL_LIT(b, b',"risk":')
    vigil_put_long(b, r.risk)
    VIGIL_LIT(b, b',"signals":')
    if _put_strings(b, r.signals):
        return 1
    VIGIL_LIT(b, b',"advice":')
    if _put_strings(b, r.advice):
        return 1
    VIGIL_LIT(b, b',"policy_revision":')
    if vigil_put_str(b, r.policy_revision):
        return 1
    VIGIL_LIT(b, b',"latency_ns":')
    vigil_put_long(b, r.latency_ns)
    VIGIL_LIT(b, b',"context":')
    if context is None:
        VIGIL_LIT(b, b"{}")
    elif _put_object(b, context, 1):
        return 1
    return VIGIL_LIT(b, b"}\n")


cdef int _put_line(vigil_buf* out, object record, object fallback, const char* prefix,
                   Py_ssize_t prefix_n) except -1:
    """Append ``record``'s event line and its newline to ``out``: written here when it can be,
    else (a field it does not write, a value orjson refuses) ``fallback(record)``, whose
    exceptions propagate. Encoded in a scratch buffer first, so
    ``out`` only ever receives whole lines in one step with no Python call in between."""
    cdef char stack[2048]
    cdef vigil_buf scratch
    cdef bytes line
    cdef int written = 0
    vigil_init(&scratch, stack, sizeof(stack))
    try:
        if type(record) is DecisionRecord:
            try:
                written = not _put_record(&scratch, <DecisionRecord>record, prefix, prefix_n)
            except (TypeError, ValueError):  # orjson refused a context value: the fallback decides
                written = 0
        if written:
            return vigil_put(out, scratch.data, scratch.length)
        line = fallback(record)
        vigil_put(out, line, len(line))
        return VIGIL_LIT(out, b"\n")
    finally:
        vigil_release(&scratch)


cdef class LineBuffer:
    """Event lines encoded as decisions are made, taken by the sink in chunks.

    ``add(record)`` appends the record's line at once, while the record is fresh in the CPU's
    caches, so the sink keeps bytes instead of records (records kept for a batch were measured to
    slow every decision: their memory is not reused while they wait, and encoding them later
    misses cache); ``take()`` returns the lines so far as one ``bytes`` and their count, and
    empties the buffer, keeping its memory. ``fallback(record) -> bytes`` writes a record this
    writer cannot (and must not raise). Both steps run without releasing the GIL once a line is
    encoded, so threads may add and take concurrently: every line is in exactly one chunk."""

    cdef vigil_buf buf
    cdef Py_ssize_t count
    cdef unsigned long long total
    cdef object fallback
    cdef object prefix
    cdef const char* prefix_utf8
    cdef Py_ssize_t prefix_n

    def __cinit__(self, fallback):
        self.fallback = fallback
        self.prefix = _decision.ID_PREFIX
        self.prefix_utf8 = PyUnicode_AsUTF8AndSize(self.prefix, &self.prefix_n)
        if self.prefix_utf8 == NULL:
            raise ValueError("decision id prefix is not text")
        vigil_init(&self.buf, NULL, 0)
        self.count = 0
        self.total = 0

    def __dealloc__(self):
        vigil_release(&self.buf)

    def __len__(self):
        return self.count

    def add(self, record):
        """Append ``record``'s line; returns its ordinal (1 for the first line ever added, then 2,
        ...: the line is in the chunk of the take that first returns a running total at least as
        large). Raises only what ``fallback`` raises (and MemoryError)."""
        _put_line(&self.buf, record, self.fallback, self.prefix_utf8, self.prefix_n)
        self.count += 1
        self.total += 1
        return self.total

    def take(self):
        """``(bytes of every line added since the last take, how many lines)``."""
        out = PyBytes_FromStringAndSize(self.buf.data, self.buf.length)
        n = self.count
        self.buf.length = 0
        self.count = 0
        return out, n
