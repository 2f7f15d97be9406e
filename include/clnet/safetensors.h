/* clnet — safetensors weight files: a strict reader (from a file or from a
 * buffer) and an atomic writer. Host memory only; nothing here touches
 * OpenCL. The format, the checks and the tensor names clnet models use are
 * described in docs/weights.md. */
#ifndef CLNET_SAFETENSORS_H
#define CLNET_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest JSON header accepted (the reference implementation's limit). */
#define CLNET_SAFETENSORS_MAX_HEADER ((uint64_t)100000000)

/* One tensor of a parsed file. All pointers are borrowed from the
 * clnet_safetensors that holds the entry: valid until it is freed. */
typedef struct clnet_safetensors_entry {
    const char *name;              /* non-empty, NUL-terminated UTF-8 */
    const char *dtype;             /* "F32", "F16", "BF16", "F64", "I64", "I32", "I16",
                                    * "I8", "U8", "BOOL", "U16", "U32", "U64", "F8_E4M3"
                                    * or "F8_E5M2" */
    size_t elem_size;              /* bytes per element of dtype */
    int ndim;                      /* 0..CLNET_MAX_DIMS (0: a scalar) */
    int64_t shape[CLNET_MAX_DIMS]; /* shape[ndim..] are 0 */
    size_t numel;                  /* product of the shape (1 for a scalar) */
    size_t offset;                 /* byte offset of the tensor in the data section */
    size_t size;                   /* bytes: numel * elem_size */
    /* The tensor's bytes exactly as stored: little-endian, row-major. The data
     * section starts 16-byte aligned, so data is aligned to elem_size whenever
     * offset is a multiple of it (always so in files clnet writes); otherwise
     * copy it out with memcpy. */
    const void *data;
} clnet_safetensors_entry;

/* One "__metadata__" pair; borrowed like the entries. */
typedef struct clnet_safetensors_meta {
    const char *key, *value;
} clnet_safetensors_meta;

/* A parsed file; read-only plain data. It owns its memory (names, metadata
 * and a copy of the data section) and depends on nothing the caller passed.
 * Thread-safety: immutable after parsing, so any number of threads may read
 * one concurrently. The parser and writer keep no state of their own, but
 * cJSON 1.7 records the position of a JSON syntax error in a process-wide
 * variable (never read by clnet): parsing malformed headers in several
 * threads at once races on it. */
typedef struct clnet_safetensors {
    size_t count;
    const clnet_safetensors_entry *entries; /* count entries, in header order */
    size_t metadata_count;
    const clnet_safetensors_meta *metadata; /* in header order */
    size_t data_size;                       /* bytes in the data section */
    const void *data;                       /* the data section */
} clnet_safetensors;

/* Parses a safetensors file held in buf[0..len). The layout: an unsigned
 * 64-bit little-endian header length N; N bytes of UTF-8 JSON, an object that
 * maps each tensor name to {"dtype": ..., "shape": [...], "data_offsets":
 * [begin, end]} and may hold "__metadata__": {string: string}; then the data
 * section, to which the offsets are relative. Everything is checked before
 * anything is trusted (docs/weights.md lists the checks): the header length
 * (2 <= N <= CLNET_SAFETENSORS_MAX_HEADER and N <= len - 8), the JSON, names
 * (non-empty, unique), dtypes, shapes (integers in [0, 2^53)), sizes
 * (overflow-safe; shape times dtype size must equal end - begin) and offsets
 * (the tensors' byte ranges must tile the data section exactly: no overlap, no
 * gap, nothing past its end). A violation is CLNET_ERR_FORMAT with a message
 * that names the tensor and the problem. The buffer is only read; the result
 * copies what it needs. On success *out is caller-owned: free it with
 * clnet_safetensors_free(). On failure *out is NULL and err (optional,
 * err_size bytes) receives a NUL-terminated message. */
CLNET_API clnet_status clnet_safetensors_parse(const void *buf, size_t len, clnet_safetensors **out,
                                               char *err, size_t err_size);

/* Reads and parses a file, with the checks of clnet_safetensors_parse; the
 * header length is checked against the file's size before the file is read.
 * CLNET_ERR_IO when the file cannot be opened or read or is not a regular
 * file; messages start with the path. Ownership as for the parse. */
CLNET_API clnet_status clnet_safetensors_load(const char *path, clnet_safetensors **out, char *err,
                                              size_t err_size);

/* The entry named `name`, or NULL if there is none (or st or name is NULL).
 * Borrowed: valid until st is freed. */
CLNET_API const clnet_safetensors_entry *clnet_safetensors_find(const clnet_safetensors *st,
                                                                const char *name);

/* The "__metadata__" value of `key`, or NULL if absent. Borrowed: valid until
 * st is freed. */
CLNET_API const char *clnet_safetensors_metadata(const clnet_safetensors *st, const char *key);

/* Bytes per element of a safetensors dtype name ("F32" -> 4); 0 if unknown. */
CLNET_API size_t clnet_safetensors_dtype_size(const char *dtype);

/* Frees a parsed file and everything it holds; NULL is a no-op. */
CLNET_API void clnet_safetensors_free(clnet_safetensors *st);

/* One tensor to write. data holds numel * 4 bytes of host floats (CLNET_F32)
 * or int32 (CLNET_I32), row-major; it may be NULL when numel is 0. */
typedef struct clnet_safetensors_entry_in {
    const char *name;              /* non-empty UTF-8, unique, not "__metadata__" */
    clnet_dtype dtype;             /* CLNET_F32 or CLNET_I32 */
    int ndim;                      /* 0..CLNET_MAX_DIMS */
    int64_t shape[CLNET_MAX_DIMS]; /* each >= 0 */
    const void *data;
} clnet_safetensors_entry_in;

/* Writes `count` tensors to a safetensors file at path, in the given order,
 * their data packed back to back. metadata_kv is NULL or a NULL-terminated
 * array of key, value strings ({"format", "clnet", NULL}): it becomes
 * "__metadata__". The header is padded with spaces to a multiple of 8 bytes,
 * as the reference implementation does. Arguments are checked first
 * (CLNET_ERR_INVALID_ARG, naming the entry and the problem: a NULL or empty
 * or duplicate name, an unknown dtype, a bad ndim or dim, a NULL data, a
 * metadata key without a value). The file is written atomically: to a
 * temporary file in the same directory, flushed to disk, then renamed over
 * path (a symbolic link at path is replaced, not followed). On failure
 * (CLNET_ERR_IO: the directory does not exist, the disk is full, ...) any old
 * file at path is left as it was and no temporary file is left behind. err (optional, err_size
 * bytes) receives the message. */
CLNET_API clnet_status clnet_safetensors_write(const char *path,
                                               const clnet_safetensors_entry_in *entries,
                                               size_t count, const char *const *metadata_kv,
                                               char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
