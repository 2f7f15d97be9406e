/* clnet — datasets on the host: IDX files (plain or gzip) and MNIST-style
 * image/label pairs; image grids written as PNG. Host memory only; nothing
 * here touches OpenCL. Thread-safety: the loaders and the writer keep no
 * state and may run in several threads at once; their results are plain
 * data that the caller owns.
 *
 * Params: each clnet_x_params struct here has CLNET_X_PARAMS_INIT, a
 * designated-initializer brace list (for `static const` and local
 * initializers), and CLNET_X_PARAMS_DEFAULT, the same values as a compound
 * literal (for assignment and arguments). A NULL params pointer means the
 * defaults. */
#ifndef CLNET_DATA_H
#define CLNET_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the Debian package dataset-fashion-mnist installs Fashion-MNIST. */
#define CLNET_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ---- IDX files ---------------------------------------------------------- */

/* The element types of the IDX format (the third byte of the magic). */
typedef enum clnet_idx_type {
    CLNET_IDX_U8 = 0x08,  /* unsigned byte */
    CLNET_IDX_I8 = 0x09,  /* signed byte */
    CLNET_IDX_I16 = 0x0B, /* int16 */
    CLNET_IDX_I32 = 0x0C, /* int32 */
    CLNET_IDX_F32 = 0x0D, /* IEEE float32 */
    CLNET_IDX_F64 = 0x0E  /* IEEE float64 */
} clnet_idx_type;

/* The largest data section clnet_idx_load accepts (4 GiB): a header that
 * claims more is rejected before anything is allocated. */
#define CLNET_IDX_MAX_BYTES ((uint64_t)1 << 32)

/* An IDX array in host memory; plain data. Values are converted from the
 * file's big-endian order to the host's: data is an array of `count`
 * elements of `elem_size` bytes, of the C type the element type names
 * (uint8_t, int8_t, int16_t, int32_t, float, double). Row-major, dims[0]
 * outermost. count is 0 when a dim is 0 (data is then still non-NULL). */
typedef struct clnet_idx {
    clnet_idx_type type;
    int ndim;                     /* 1..CLNET_MAX_DIMS */
    int64_t dims[CLNET_MAX_DIMS]; /* dims[ndim..] are 0 */
    size_t count;                 /* product of dims */
    size_t elem_size;             /* 1, 2, 4 or 8 */
    void *data;                   /* owned by the struct */
} clnet_idx;

/* Reads an IDX file: magic bytes 0, 0, type, ndim; then ndim big-endian
 * uint32 dims; then the elements, big-endian. The file may be plain or gzip
 * (zlib reads both; bytes after the last gzip member that are not gzip are
 * ignored, as gunzip does). Rejected with CLNET_ERR_FORMAT, before anything
 * the file sizes is allocated: a bad magic, an unknown type, ndim 0 or above
 * CLNET_MAX_DIMS, a size that overflows or exceeds CLNET_IDX_MAX_BYTES.
 * Also CLNET_ERR_FORMAT: a short header, fewer data bytes than the dims need
 * ("expected N bytes of data, file has M"), bytes after the data, a corrupt
 * gzip stream. CLNET_ERR_IO: the file cannot be opened or read.
 * On success *out is caller-owned: free it with clnet_idx_free(). On failure
 * *out is NULL and err (optional, err_size bytes) receives a NUL-terminated
 * message that names the file. */
CLNET_API clnet_status clnet_idx_load(const char *path, clnet_idx **out, char *err,
                                      size_t err_size);
/* Frees an IDX array and its data; NULL is a no-op. */
CLNET_API void clnet_idx_free(clnet_idx *idx);

/* ---- MNIST-style datasets ----------------------------------------------- */

/* Images with one class label each, in host memory; plain data. */
typedef struct clnet_dataset {
    size_t count;    /* number of images (and labels) */
    int rows, cols;  /* image height and width */
    int classes;     /* labels lie in [0, classes); 10 for MNIST */
    float *images;   /* count * rows * cols, row-major, pixel / 255 in [0, 1] */
    int32_t *labels; /* count */
} clnet_dataset;

/* Loads an MNIST-style split (MNIST, Fashion-MNIST) from dir: the files
 * <split>-images-idx3-ubyte and <split>-labels-idx1-ubyte, each plain or with
 * ".gz" (the plain file is used when both exist). split is "train" or "t10k"
 * (CLNET_ERR_INVALID_ARG otherwise). The images must be uint8 with 3 dims
 * (count, rows, cols), the labels uint8 with 1 dim (count); the counts must
 * agree and every label must be below 10 (CLNET_ERR_FORMAT otherwise, the
 * message naming the file and, for a bad label, its index). Pixels become
 * floats pixel / 255.0f. Errors from reading the files are those of
 * clnet_idx_load. On success *out is caller-owned: free it with
 * clnet_dataset_free(). On failure *out is NULL and err (optional) receives
 * the message. */
CLNET_API clnet_status clnet_dataset_load_mnist(const char *dir, const char *split,
                                                clnet_dataset **out, char *err, size_t err_size);
/* Frees a dataset and its arrays; NULL is a no-op. */
CLNET_API void clnet_dataset_free(clnet_dataset *ds);

/* ---- Image grids ---------------------------------------------------------- */

typedef struct clnet_png_grid_params {
    int cols;     /* images per row; 0: the smallest c with c * c >= count */
    float lo, hi; /* values lo..hi map to black..white (clamped; NaN: black) */
    int border;   /* black pixels between and around images, 0..64 */
} clnet_png_grid_params;
/* A grid of [-1, 1] images (a tanh generator's), one black pixel apart. */
#define CLNET_PNG_GRID_PARAMS_INIT                                                                 \
    {                                                                                              \
        .cols = 0, .lo = -1.0f, .hi = 1.0f, .border = 1                                            \
    }
#define CLNET_PNG_GRID_PARAMS_DEFAULT ((clnet_png_grid_params)CLNET_PNG_GRID_PARAMS_INIT)

/* Writes count single-channel images of height x width floats (row-major,
 * one after another) as one 8-bit grayscale PNG: image k at grid row k / cols,
 * column k % cols, each value v as round(255 (v - lo) / (hi - lo)) clamped to
 * 0..255. p NULL means the defaults. The file is written to a temporary file
 * next to path and renamed over it, so a failed write leaves an existing file
 * as it was. Errors: CLNET_ERR_INVALID_ARG for a NULL or empty path, NULL
 * images, a count, height or width below 1, cols or border out of range, a
 * range that is not finite with lo < hi; CLNET_ERR_TOO_LARGE for a grid of
 * more than 1 GiB; CLNET_ERR_IO when the file cannot be written (the
 * message names the step and the file); CLNET_ERR_HOST_MEMORY. err
 * (optional, err_size bytes) receives the message. Host only, no OpenCL;
 * keeps no state (thread-safe). */
CLNET_API clnet_status clnet_png_write_grid(const char *path, const float *images, int64_t count,
                                            int height, int width, const clnet_png_grid_params *p,
                                            char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif
