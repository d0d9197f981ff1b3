/* The node reader's per-entry loops in C (issue 17): read a batch of journal entries on a
 * systemd-python `_Reader`'s own sd_journal handle and write them straight into dcos-log's
 * formats, or collect a batch of MESSAGE values for grep= (from entries, or a file's distinct
 * values for app/journal/index.py), without building a Python object per entry and without
 * the GIL.
 *
 * The output is byte for byte what app/journal/entry.py and encoders.py produce (tests/
 * journal/test_fast.py compares them): orjson's string escapes, then Go's extra escapes
 * (<, >, &, U+2028, U+2029), keys sorted, a repeated field's last value, a value that is
 * not UTF-8 as a list of byte values, timestamps from the cursor.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-journal.h>

/* systemd-python 235, systemd/_reader.c: the object layout of `_Reader`. The type is
 * checked (PyObject_TypeCheck against systemd._reader._Reader) before the cast. */
typedef struct {
    PyObject_HEAD
    sd_journal *j;
} Reader;

static PyTypeObject *reader_type;

enum { FMT_COUNT = 0, FMT_JSON = 1, FMT_TEXT = 2, FMT_SSE = 3, FMT_LINES = 4 };

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static int reserve(Buf *b, size_t need) {
    if (b->len + need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int put(Buf *b, const void *s, size_t n) {
    int r = reserve(b, n);
    if (r < 0)
        return r;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

/* ---- UTF-8 (RFC 3629, as CPython's strict decoder) --------------------------------- */

static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            if (c == 0xE0 && s[i + 1] < 0xA0)
                return 0; /* overlong */
            if (c == 0xED && s[i + 1] > 0x9F)
                return 0; /* surrogate */
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 ||
                (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && s[i + 1] < 0x90)
                return 0; /* overlong */
            if (c == 0xF4 && s[i + 1] > 0x8F)
                return 0; /* above U+10FFFF */
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* ---- JSON ------------------------------------------------------------------------- */

static const char HEX[] = "0123456789abcdef";
static unsigned char special[256]; /* bytes that are not copied as they are */

static void init_special(void) {
    for (int c = 0; c < 0x20; c++)
        special[c] = 1;
    special['"'] = special['\\'] = 1;
    special['<'] = special['>'] = special['&'] = 1; /* Go */
    special[0xE2] = 1;                              /* U+2028, U+2029 (Go) */
}

/* A JSON string of valid UTF-8 `s`. */
static int json_string(Buf *b, const unsigned char *s, size_t n) {
    int r = reserve(b, 6 * n + 2);
    if (r < 0)
        return r;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (!special[c]) {
            *o++ = (char)c;
            continue;
        }
        switch (c) {
        case '"':
            *o++ = '\\';
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            *o++ = '\\';
            break;
        case '\b':
            *o++ = '\\';
            *o++ = 'b';
            break;
        case '\t':
            *o++ = '\\';
            *o++ = 't';
            break;
        case '\n':
            *o++ = '\\';
            *o++ = 'n';
            break;
        case '\f':
            *o++ = '\\';
            *o++ = 'f';
            break;
        case '\r':
            *o++ = '\\';
            *o++ = 'r';
            break;
        case '<':
            memcpy(o, "\\u003c", 6);
            o += 6;
            break;
        case '>':
            memcpy(o, "\\u003e", 6);
            o += 6;
            break;
        case '&':
            memcpy(o, "\\u0026", 6);
            o += 6;
            break;
        case 0xE2:
            if (i + 2 < n && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
                memcpy(o, s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
                o += 6;
                i += 2;
            } else {
                *o++ = (char)c;
            }
            break;
        default: /* other control characters */
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = HEX[c >> 4];
            *o++ = HEX[c & 15];
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 0;
}

/* A value: a string if UTF-8, else journalctl's list of byte values. */
static int json_value(Buf *b, const unsigned char *s, size_t n) {
    if (valid_utf8(s, n))
        return json_string(b, s, n);
    int r = reserve(b, 4 * n + 2);
    if (r < 0)
        return r;
    char *o = b->p + b->len;
    *o++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        o += sprintf(o, "%u", (unsigned)s[i]);
    }
    *o++ = ']';
    b->len = (size_t)(o - b->p);
    return 0;
}

/* ---- one entry's fields, copied (libsystemd reuses its buffers between calls) ------- */

typedef struct {
    size_t key, key_len, value, value_len; /* offsets into Fields.data */
} Field;

typedef struct {
    Buf data;
    Field *items;
    size_t n, cap;
} Fields;

static int load_fields(sd_journal *j, Fields *f, const char **error) {
    const void *d;
    size_t l;
    int r;
    f->n = 0;
    f->data.len = 0;
    sd_journal_restart_data(j);
    /* As SD_JOURNAL_FOREACH_DATA (systemd-python's _get_all): an error ends the entry. */
    while (sd_journal_enumerate_data(j, &d, &l) > 0) {
        const char *eq = memchr(d, '=', l);
        if (!eq) {
            *error = "journal gave us a field without '='";
            return -EBADMSG;
        }
        if (f->n == f->cap) {
            size_t cap = f->cap ? 2 * f->cap : 64;
            Field *items = realloc(f->items, cap * sizeof(Field));
            if (!items)
                return -ENOMEM;
            f->items = items;
            f->cap = cap;
        }
        Field *it = &f->items[f->n++];
        it->key = f->data.len;
        it->key_len = (size_t)(eq - (const char *)d);
        it->value = it->key + it->key_len + 1;
        it->value_len = l - it->key_len - 1;
        r = put(&f->data, d, l);
        if (r < 0)
            return r;
    }
    return 0;
}

static int key_cmp(const Fields *f, const Field *a, const Field *b) {
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(f->data.p + a->key, f->data.p + b->key, n);
    if (c)
        return c;
    return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

/* Stable insertion sort by key (an entry has tens of fields): equal keys keep their
 * order, so the last of a repeated field is the last of its run. */
static void sort_fields(Fields *f) {
    for (size_t i = 1; i < f->n; i++) {
        Field x = f->items[i];
        size_t k = i;
        while (k > 0 && key_cmp(f, &f->items[k - 1], &x) > 0) {
            f->items[k] = f->items[k - 1];
            k--;
        }
        f->items[k] = x;
    }
}

static int parse_hex_after(const char *cursor, const char *tag, uint64_t *out) {
    const char *p = strstr(cursor, tag);
    if (!p)
        return -EBADMSG;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p + strlen(tag), &end, 16);
    if (errno || end == p + strlen(tag))
        return -EBADMSG;
    *out = v;
    return 0;
}

static int json_entry(Buf *b, Fields *f, const char *cursor, uint64_t mono, uint64_t real,
                      const char **error) {
    int r;
    sort_fields(f);
    r = put(b, "{\"fields\":{", 11);
    if (r < 0)
        return r;
    int first = 1;
    for (size_t i = 0; i < f->n; i++) {
        const Field *it = &f->items[i];
        if (i + 1 < f->n && key_cmp(f, it, &f->items[i + 1]) == 0)
            continue; /* a repeated field: the last value wins */
        const unsigned char *key = (const unsigned char *)f->data.p + it->key;
        if (!valid_utf8(key, it->key_len)) {
            *error = "journal field name is not UTF-8";
            return -EBADMSG;
        }
        if (!first && (r = put(b, ",", 1)) < 0)
            return r;
        first = 0;
        if ((r = json_string(b, key, it->key_len)) < 0 || (r = put(b, ":", 1)) < 0)
            return r;
        r = json_value(b, (const unsigned char *)f->data.p + it->value, it->value_len);
        if (r < 0)
            return r;
    }
    char tail[128];
    int n = snprintf(tail, sizeof tail, "},\"cursor\":\"");
    if ((r = put(b, tail, (size_t)n)) < 0 || (r = put(b, cursor, strlen(cursor))) < 0)
        return r;
    n = snprintf(tail, sizeof tail, "\",\"monotonic_timestamp\":%llu,\"realtime_timestamp\":%llu}",
                 (unsigned long long)mono, (unsigned long long)real);
    return put(b, tail, (size_t)n);
}

typedef struct {
    time_t second;
    char text[64];
    size_t len;
} Clock;

static void local_time(Clock *c, uint64_t realtime) {
    time_t second = (time_t)(realtime / 1000000);
    if (second == c->second && c->len)
        return;
    struct tm tm;
    c->second = second;
    c->len = localtime_r(&second, &tm) ? strftime(c->text, sizeof c->text, "%Y-%m-%d %H:%M:%S", &tm)
                                       : 0;
}

/* ---- read(): a batch of entries, encoded ------------------------------------------ */

typedef struct {
    sd_journal *j;
    int fmt, reverse, include_current;
    Py_ssize_t max_entries;
    long long since, until, limit; /* -1: none */
    /* results */
    Py_ssize_t looked, emitted;
    long long last_realtime;
    int ended;
    Buf out;
    Fields fields;
    Clock clock;
    const char *error;
} ReadJob;

/* Text and task lines: only the last MESSAGE is kept (copied: libsystemd may reuse its
 * buffer on the next field); an entry without one writes nothing. */
static int write_message(ReadJob *job, uint64_t real) {
    Buf *m = &job->fields.data;
    const void *d;
    size_t l;
    int found = 0, r;
    sd_journal_restart_data(job->j);
    while (sd_journal_enumerate_data(job->j, &d, &l) > 0) {
        if (l < 8 || memcmp(d, "MESSAGE=", 8) != 0)
            continue;
        m->len = 0;
        if ((r = put(m, (const char *)d + 8, l - 8)) < 0)
            return r;
        found = 1;
    }
    if (!found)
        return 0;
    Buf *b = &job->out;
    if (job->fmt == FMT_TEXT) {
        local_time(&job->clock, real);
        if ((r = put(b, job->clock.text, job->clock.len)) < 0 || (r = put(b, ": ", 2)) < 0)
            return r;
    }
    if ((r = put(b, m->p ? m->p : "", m->len)) < 0)
        return r;
    return put(b, "\n", 1);
}

static int read_one(ReadJob *job) {
    sd_journal *j = job->j;
    char *cursor = NULL;
    uint64_t real = 0, mono = 0;
    int r;
    int need_cursor = job->fmt == FMT_JSON || job->fmt == FMT_SSE;
    if (need_cursor) {
        r = sd_journal_get_cursor(j, &cursor);
        if (r < 0)
            return r;
        if ((r = parse_hex_after(cursor, ";m=", &mono)) < 0 ||
            (r = parse_hex_after(cursor, ";t=", &real)) < 0) {
            free(cursor);
            return r;
        }
    } else {
        r = sd_journal_get_realtime_usec(j, &real);
        if (r < 0)
            return r;
    }
    job->looked++;
    job->last_realtime = (long long)real;
    if ((job->since >= 0 && (long long)real < job->since) ||
        (job->until >= 0 && (long long)real > job->until)) {
        free(cursor);
        return 0;
    }
    job->emitted++;
    if (job->fmt == FMT_COUNT) {
        return 0;
    }
    Buf *b = &job->out;
    if (job->fmt == FMT_TEXT || job->fmt == FMT_LINES) {
        r = write_message(job, real);
        free(cursor);
        return r;
    }
    r = load_fields(j, &job->fields, &job->error);
    if (r < 0) {
        free(cursor);
        return r;
    }
    switch (job->fmt) {
    case FMT_JSON:
        r = json_entry(b, &job->fields, cursor, mono, real, &job->error);
        if (r >= 0)
            r = put(b, "\n", 1);
        break;
    case FMT_SSE:
        r = put(b, "data: ", 6);
        if (r >= 0)
            r = json_entry(b, &job->fields, cursor, mono, real, &job->error);
        if (r >= 0)
            r = put(b, "\n\n", 2);
        break;
    }
    free(cursor);
    return r < 0 ? r : 0;
}

static int run_read(ReadJob *job) {
    sd_journal *j = job->j;
    int r;
    while (job->looked < job->max_entries) {
        if (job->limit >= 0 && job->emitted >= job->limit)
            return 0;
        if (job->include_current) {
            job->include_current = 0;
        } else {
            r = job->reverse ? sd_journal_previous(j) : sd_journal_next(j);
            if (r < 0)
                return r;
            if (r == 0) {
                job->ended = 1;
                return 0;
            }
        }
        r = read_one(job);
        if (r < 0)
            return r;
    }
    return 0;
}

static sd_journal *journal_of(PyObject *reader) {
    if (!PyObject_TypeCheck(reader, reader_type)) {
        PyErr_SetString(PyExc_TypeError, "expected a systemd.journal._Reader");
        return NULL;
    }
    sd_journal *j = ((Reader *)reader)->j;
    if (!j)
        PyErr_SetString(PyExc_ValueError, "journal handle is closed");
    return j;
}

static PyObject *raise_errno(int r, const char *message) {
    if (r == -ENOMEM)
        return PyErr_NoMemory();
    errno = -r;
    if (message)
        return PyErr_Format(PyExc_OSError, "%s", message);
    return PyErr_SetFromErrno(PyExc_OSError);
}

PyDoc_STRVAR(read_doc,
             "read(reader, max_entries, fmt, reverse, include_current, since, until, limit)\n"
             "-> (looked, emitted, data, last_realtime, ended)\n\n"
             "Step over up to max_entries entries (forward, or back with reverse; the entry "
             "the handle is on first when include_current), encode those inside "
             "[since, until] (-1: open) up to limit (-1: none) in fmt, and stop at the end "
             "of the journal (ended).");

static PyObject *fast_read(PyObject *self, PyObject *args) {
    PyObject *reader;
    ReadJob job;
    memset(&job, 0, sizeof job);
    job.last_realtime = -1;
    if (!PyArg_ParseTuple(args, "OnippLLL:read", &reader, &job.max_entries, &job.fmt,
                          &job.reverse, &job.include_current, &job.since, &job.until,
                          &job.limit))
        return NULL;
    if (job.fmt < FMT_COUNT || job.fmt > FMT_LINES)
        return PyErr_Format(PyExc_ValueError, "unknown format %d", job.fmt);
    if (!(job.j = journal_of(reader)))
        return NULL;
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = run_read(&job);
    Py_END_ALLOW_THREADS
    free(job.fields.data.p);
    free(job.fields.items);
    PyObject *result = NULL;
    if (r < 0) {
        raise_errno(r, job.error);
    } else {
        result = Py_BuildValue("nny#LN", job.looked, job.emitted, job.out.p ? job.out.p : "",
                               (Py_ssize_t)job.out.len, job.last_realtime, PyBool_FromLong(job.ended));
    }
    free(job.out.p);
    return result;
}

/* ---- Joined: values for one batched RE2 search ------------------------------------ */

/* Values each followed by '\n' in text; value i is text[starts[i]:starts[i+1]-1]. */
typedef struct {
    Buf text;
    Buf starts; /* Py_ssize_t offsets: one more than the values */
} Joined;

static int joined_begin(Joined *v) {
    Py_ssize_t zero = 0;
    return put(&v->starts, &zero, sizeof zero);
}

static int joined_add(Joined *v, const void *p, size_t n) {
    int r;
    if ((r = put(&v->text, p, n)) < 0 || (r = put(&v->text, "\n", 1)) < 0)
        return r;
    Py_ssize_t end = (Py_ssize_t)v->text.len;
    return put(&v->starts, &end, sizeof end);
}

/* The text as bytes, without its last newline. */
static PyObject *joined_text(const Joined *v) {
    Py_ssize_t len = v->text.len ? (Py_ssize_t)v->text.len - 1 : 0;
    return PyBytes_FromStringAndSize(v->text.p ? v->text.p : "", len);
}

static void joined_free(Joined *v) {
    free(v->text.p);
    free(v->starts.p);
}

/* ---- messages(): a batch of MESSAGE values for grep= ------------------------------ */

typedef struct {
    sd_journal *j;
    int reverse, include_current;
    Py_ssize_t max_entries;
    Py_ssize_t looked;
    int ended;
    Joined messages; /* an entry without MESSAGE: empty */
    Buf missing;     /* Py_ssize_t indices of entries without MESSAGE */
} ScanJob;

static int run_scan(ScanJob *job) {
    sd_journal *j = job->j;
    const void *d;
    size_t l;
    int r;
    if ((r = joined_begin(&job->messages)) < 0)
        return r;
    while (job->looked < job->max_entries) {
        if (job->include_current) {
            job->include_current = 0;
        } else {
            r = job->reverse ? sd_journal_previous(j) : sd_journal_next(j);
            if (r < 0)
                return r;
            if (r == 0) {
                job->ended = 1;
                return 0;
            }
        }
        /* The first MESSAGE, as systemd-python's _get("MESSAGE") gives it. */
        r = sd_journal_get_data(j, "MESSAGE", &d, &l);
        if (r == -ENOENT) {
            if ((r = put(&job->missing, &job->looked, sizeof job->looked)) < 0 ||
                (r = joined_add(&job->messages, "", 0)) < 0)
                return r;
        } else if (r < 0 || (r = joined_add(&job->messages, (const char *)d + 8, l - 8)) < 0) {
            return r;
        }
        job->looked++;
    }
    return 0;
}

static PyObject *offsets_list(const Buf *b) {
    Py_ssize_t n = (Py_ssize_t)(b->len / sizeof(Py_ssize_t));
    PyObject *list = PyList_New(n);
    if (!list)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t v;
        memcpy(&v, b->p + i * sizeof v, sizeof v);
        PyObject *x = PyLong_FromSsize_t(v);
        if (!x) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, x);
    }
    return list;
}

PyDoc_STRVAR(messages_doc,
             "messages(reader, max_entries, reverse, include_current)\n"
             "-> (text, starts, missing, ended)\n\n"
             "The MESSAGE of up to max_entries entries, in read order, each followed by a "
             "newline in text; message i is text[starts[i]:starts[i+1]-1]; missing lists "
             "the entries without MESSAGE (empty in text).");

static PyObject *fast_messages(PyObject *self, PyObject *args) {
    PyObject *reader;
    ScanJob job;
    memset(&job, 0, sizeof job);
    if (!PyArg_ParseTuple(args, "Onpp:messages", &reader, &job.max_entries, &job.reverse,
                          &job.include_current))
        return NULL;
    if (!(job.j = journal_of(reader)))
        return NULL;
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = run_scan(&job);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (r < 0) {
        raise_errno(r, NULL);
    } else {
        PyObject *text = joined_text(&job.messages);
        PyObject *starts = text ? offsets_list(&job.messages.starts) : NULL;
        PyObject *missing = starts ? offsets_list(&job.missing) : NULL;
        if (missing)
            result = Py_BuildValue("OOON", text, starts, missing, PyBool_FromLong(job.ended));
        Py_XDECREF(text);
        Py_XDECREF(starts);
        Py_XDECREF(missing);
    }
    joined_free(&job.messages);
    free(job.missing.p);
    return result;
}

/* ---- unique_begin()/unique_next(): a field's distinct values, for the index ------- */

PyDoc_STRVAR(unique_begin_doc,
             "unique_begin(reader, field)\n\n"
             "Start enumerating the distinct values of field (sd_journal_query_unique).");

static PyObject *fast_unique_begin(PyObject *self, PyObject *args) {
    PyObject *reader;
    const char *field;
    if (!PyArg_ParseTuple(args, "Os:unique_begin", &reader, &field))
        return NULL;
    sd_journal *j = journal_of(reader);
    if (!j)
        return NULL;
    int r = sd_journal_query_unique(j, field);
    if (r < 0)
        return raise_errno(r, NULL);
    Py_RETURN_NONE;
}

typedef struct {
    sd_journal *j;
    Py_ssize_t max_values, count, longest;
    int ended;
    Joined values;
} UniqueJob;

static int run_unique(UniqueJob *job) {
    const void *d;
    size_t l;
    int r;
    if ((r = joined_begin(&job->values)) < 0)
        return r;
    while (job->count < job->max_values) {
        r = sd_journal_enumerate_unique(job->j, &d, &l);
        if (r < 0)
            return r;
        if (r == 0) {
            job->ended = 1;
            return 0;
        }
        const char *eq = memchr(d, '=', l);
        size_t skip = eq ? (size_t)(eq - (const char *)d) + 1 : l;
        if ((r = joined_add(&job->values, (const char *)d + skip, l - skip)) < 0)
            return r;
        if ((Py_ssize_t)(l - skip) > job->longest)
            job->longest = (Py_ssize_t)(l - skip);
        job->count++;
    }
    return 0;
}

PyDoc_STRVAR(unique_next_doc,
             "unique_next(reader, max_values) -> (text, starts, longest, ended)\n\n"
             "Up to max_values more values of unique_begin's field, without the 'FIELD=' "
             "prefix, joined as messages() joins them (value i is "
             "text[starts[i]:starts[i+1]-1]); longest: the longest value's length; ended: "
             "no more values.");

static PyObject *fast_unique_next(PyObject *self, PyObject *args) {
    PyObject *reader;
    UniqueJob job;
    memset(&job, 0, sizeof job);
    if (!PyArg_ParseTuple(args, "On:unique_next", &reader, &job.max_values))
        return NULL;
    if (!(job.j = journal_of(reader)))
        return NULL;
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = run_unique(&job);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (r < 0) {
        raise_errno(r, NULL);
    } else {
        PyObject *text = joined_text(&job.values);
        PyObject *starts = text ? offsets_list(&job.values.starts) : NULL;
        if (starts)
            result = Py_BuildValue("OOnN", text, starts, job.longest, PyBool_FromLong(job.ended));
        Py_XDECREF(text);
        Py_XDECREF(starts);
    }
    joined_free(&job.values);
    return result;
}

static PyMethodDef methods[] = {
    {"read", fast_read, METH_VARARGS, read_doc},
    {"messages", fast_messages, METH_VARARGS, messages_doc},
    {"unique_begin", fast_unique_begin, METH_VARARGS, unique_begin_doc},
    {"unique_next", fast_unique_next, METH_VARARGS, unique_next_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "app.journal._fast",
    "The node reader's per-entry journal loops in C.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fast(void) {
    init_special();
    PyObject *reader_module = PyImport_ImportModule("systemd._reader");
    if (!reader_module)
        return NULL;
    PyObject *type = PyObject_GetAttrString(reader_module, "_Reader");
    Py_DECREF(reader_module);
    if (!type)
        return NULL;
    if (!PyType_Check(type)) {
        Py_DECREF(type);
        PyErr_SetString(PyExc_ImportError, "systemd._reader._Reader is not a type");
        return NULL;
    }
    reader_type = (PyTypeObject *)type; /* kept for the module's lifetime */
    return PyModule_Create(&module);
}
