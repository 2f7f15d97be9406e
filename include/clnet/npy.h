/* clnet — NumPy .npy arrays of float32 (little-endian, C order): a strict
 * reader, from a file or a buffer, and an atomic writer, for feeding models
 * and saving their outputs (clnet-run). Host memory only; nothing here
 * touches OpenCL. */
#ifndef CLNET_NPY_H
#define CLNET_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest header accepted, in bytes (NumPy's own reader stops at
 * 10,000; files it writes have 128-byte headers). */
#define CLNET_NPY_MAX_HEADER 65536

/* A parsed array; caller-owned, free with clnet_npy_free(). Plain data:
 * any number of threads may read one at once. */
typedef struct clnet_npy {
    int ndim;                      /* 0..CLNET_MAX_DIMS (0: a scalar) */
    int64_t shape[CLNET_MAX_DIMS]; /* shape[ndim..] are 0 */
    size_t numel;                  /* product of the shape (1 for a scalar) */
    float *data;                   /* numel floats in host order, C order; owned */
} clnet_npy;

/* Parses a .npy file held in buf[0..len): the magic "\x93NUMPY", version
 * 1.0, 2.0 or 3.0, the header length (2 or 4 bytes, little-endian), then a
 * Python dict literal with exactly the keys 'descr', 'fortran_order' and
 * 'shape', then the data. Accepted: descr '<f4' (or '=f4'/'f4' on a
 * little-endian host), fortran_order False, a shape of at most
 * CLNET_MAX_DIMS non-negative integers, and exactly numel * 4 data bytes.
 * Anything else is CLNET_ERR_FORMAT (another dtype or byte order, Fortran
 * order, object arrays: CLNET_ERR_UNSUPPORTED) with a message that names
 * the field and the value found. Sizes are checked overflow-safe before
 * anything is allocated. The buffer is only read. On success *out is
 * caller-owned (clnet_npy_free); on failure *out is NULL and err (optional,
 * err_size bytes) receives a NUL-terminated message. */
CLNET_API clnet_status clnet_npy_parse(const void *buf, size_t len, clnet_npy **out, char *err,
                                       size_t err_size);

/* Reads and parses a file. CLNET_ERR_IO when it cannot be opened or read or
 * is not a regular file (a FIFO is refused without blocking); messages
 * start with the path. Ownership as for the parse. */
CLNET_API clnet_status clnet_npy_load(const char *path, clnet_npy **out, char *err,
                                      size_t err_size);

/* Frees an array; NULL is a no-op. */
CLNET_API void clnet_npy_free(clnet_npy *a);

/* Writes ndim (0..CLNET_MAX_DIMS) x shape floats from data (C order; may be
 * NULL when a dimension is 0) as a version 1.0 .npy file with descr '<f4',
 * as numpy.save does (header padded to a multiple of 64 bytes). Atomic: a
 * temporary file in the same directory, renamed over path; a device node,
 * FIFO or directory at path is refused; on failure an old file is left as
 * it was. CLNET_ERR_INVALID_ARG for bad arguments, CLNET_ERR_IO for the
 * file; err (optional) receives the message. */
CLNET_API clnet_status clnet_npy_write(const char *path, int ndim, const int64_t *shape,
                                       const float *data, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
