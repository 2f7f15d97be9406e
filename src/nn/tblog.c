/* clnet — TensorBoard event files (include/clnet/tblog.h): Event messages
 * (src/nn/tbevent.proto, packed by protobuf-c) in TFRecord framing, images
 * as PNG through libpng, and the fit callback that logs metrics. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clnet/tblog.h"
#include "nn_impl.h"
#include "tbevent.pb-c.h"

struct clnet_tblog {
    int fd;
    char err[512];
    char path[];
};

static clnet_status fail(clnet_tblog *w, clnet_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    return st;
}

/* ---- TFRecord framing ------------------------------------------------------------ */

/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), bit by bit: no
 * table, so no state shared between threads; records are small (an image
 * of tens of KiB takes well under a millisecond). */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

/* TFRecord masks its CRCs so that a CRC of data holding CRCs stays strong. */
uint32_t clnet__tfrecord_masked_crc(const uint8_t *p, size_t n);
uint32_t clnet__tfrecord_masked_crc(const uint8_t *p, size_t n)
{
    uint32_t c = crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static void le(uint8_t *out, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        out[i] = (uint8_t)(v >> (8 * i));
}

/* One record, [len u64][masked crc of len u32][data][masked crc of data u32],
 * in one write() so the kernel has it whole when this returns. */
static clnet_status write_record(clnet_tblog *w, const uint8_t *data, size_t n)
{
    uint8_t *rec = clnet__malloc(n + 16);
    if (!rec)
        return fail(w, CLNET_ERR_HOST_MEMORY, "clnet_tblog: out of host memory");
    le(rec, n, 8);
    le(rec + 8, clnet__tfrecord_masked_crc(rec, 8), 4);
    memcpy(rec + 12, data, n);
    le(rec + 12 + n, clnet__tfrecord_masked_crc(data, n), 4);
    size_t done = 0;
    while (done < n + 16) {
        ssize_t k = write(w->fd, rec + done, n + 16 - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = errno;
            clnet__free(rec);
            return fail(w, CLNET_ERR_IO, "clnet_tblog: write to \"%.400s\" failed: %s", w->path,
                        strerror(e));
        }
        done += (size_t)k;
    }
    clnet__free(rec);
    return CLNET_OK;
}

static double wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static clnet_status write_event(clnet_tblog *w, ClnetTb__Event *ev)
{
    ev->wall_time = wall_time();
    size_t n = clnet_tb__event__get_packed_size(ev);
    uint8_t *buf = clnet__malloc(n ? n : 1);
    if (!buf)
        return fail(w, CLNET_ERR_HOST_MEMORY, "clnet_tblog: out of host memory");
    clnet_tb__event__pack(ev, buf);
    clnet_status st = write_record(w, buf, n);
    clnet__free(buf);
    return st;
}

/* An event holding one summary value with `tag`. */
static clnet_status write_value(clnet_tblog *w, int64_t step, ClnetTb__Summary__Value *v,
                                const char *tag)
{
    if (!tag || !tag[0])
        return fail(w, CLNET_ERR_INVALID_ARG, "clnet_tblog: the tag is %s", tag ? "empty" : "NULL");
    v->tag = (char *)tag;
    ClnetTb__Summary s = CLNET_TB__SUMMARY__INIT;
    s.n_value = 1;
    s.value = &v;
    ClnetTb__Event ev = CLNET_TB__EVENT__INIT;
    ev.step = step;
    ev.what_case = CLNET_TB__EVENT__WHAT_SUMMARY;
    ev.summary = &s;
    return write_event(w, &ev);
}

/* ---- Files --------------------------------------------------------------------------- */

CLNET_API clnet_status clnet_tblog_open(const char *logdir, clnet_tblog **out, char *err,
                                        size_t err_size)
{
    clnet_tblog tmp = { .fd = -1 };
    clnet_status st = CLNET_OK;
    if (out)
        *out = NULL;
    if (!out || !logdir || !logdir[0]) {
        st = fail(&tmp, CLNET_ERR_INVALID_ARG, "clnet_tblog_open: invalid argument: %s",
                  !out ? "out is NULL" : "logdir is NULL or empty");
        goto done;
    }
    if (mkdir(logdir, 0777) != 0 && errno != EEXIST) {
        st = fail(&tmp, CLNET_ERR_IO, "clnet_tblog_open: cannot create \"%.400s\": %s", logdir,
                  strerror(errno));
        goto done;
    }
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    size_t n = strlen(logdir) + 160;
    clnet_tblog *w = clnet__calloc(1, sizeof *w + n);
    if (!w) {
        st = fail(&tmp, CLNET_ERR_HOST_MEMORY, "clnet_tblog_open: out of host memory");
        goto done;
    }
    snprintf(w->path, n, "%s/events.out.tfevents.%lld.%s.%ld.clnet", logdir, (long long)time(NULL),
             host, (long)getpid());
    w->fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (w->fd < 0) {
        st = fail(&tmp, CLNET_ERR_IO, "clnet_tblog_open: cannot create \"%.400s\": %s", w->path,
                  strerror(errno));
        clnet__free(w);
        goto done;
    }
    ClnetTb__Event ev = CLNET_TB__EVENT__INIT;
    ev.what_case = CLNET_TB__EVENT__WHAT_FILE_VERSION;
    ev.file_version = "brain.Event:2";
    if ((st = write_event(w, &ev))) {
        memcpy(tmp.err, w->err, sizeof tmp.err);
        clnet_tblog_close(w);
        goto done;
    }
    *out = w;
done:
    if (err && err_size)
        snprintf(err, err_size, "%s", tmp.err);
    return st;
}

CLNET_API void clnet_tblog_close(clnet_tblog *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    clnet__free(w);
}

CLNET_API const char *clnet_tblog_path(const clnet_tblog *w)
{
    return w ? w->path : "";
}

CLNET_API const char *clnet_tblog_errmsg(const clnet_tblog *w)
{
    return w ? w->err : "";
}

/* ---- Summaries --------------------------------------------------------------------------- */

CLNET_API clnet_status clnet_tblog_scalar(clnet_tblog *w, const char *tag, int64_t step,
                                          double value)
{
    if (!w)
        return CLNET_ERR_INVALID_ARG;
    ClnetTb__Summary__Value v = CLNET_TB__SUMMARY__VALUE__INIT;
    v.value_case = CLNET_TB__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
    v.simple_value = (float)value;
    return write_value(w, step, &v, tag);
}

typedef struct png_buf {
    uint8_t *data;
    size_t n, cap;
    int failed;
} png_buf;

static void png_append(png_structp png, png_bytep p, png_size_t n)
{
    png_buf *b = png_get_io_ptr(png);
    if (b->n + n > b->cap) {
        size_t cap = (b->n + n) * 2;
        uint8_t *d = clnet__realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            png_error(png, "out of memory");
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->n, p, n);
    b->n += n;
}

static void png_no_flush(png_structp png)
{
    (void)png;
}

/* libpng reports errors by longjmp; nothing is printed. */
static void png_quiet(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static int encode_png(png_buf *b, int h, int wd, int ch, const uint8_t *px)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_quiet, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return 0;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return 0;
    }
    png_set_write_fn(png, b, png_append, png_no_flush);
    int type = ch == 1 ? PNG_COLOR_TYPE_GRAY : ch == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGBA;
    png_set_IHDR(png, info, (png_uint_32)wd, (png_uint_32)h, 8, type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(px + (size_t)y * (size_t)wd * (size_t)ch));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 1;
}

CLNET_API clnet_status clnet_tblog_image(clnet_tblog *w, const char *tag, int64_t step, int height,
                                         int width, int channels, const uint8_t *pixels)
{
    if (!w)
        return CLNET_ERR_INVALID_ARG;
    if (!pixels || height < 1 || width < 1 || height > 65535 || width > 65535 ||
        (channels != 1 && channels != 3 && channels != 4))
        return fail(w, CLNET_ERR_INVALID_ARG, "clnet_tblog_image: invalid argument: %s",
                    !pixels ? "pixels is NULL"
                    : channels != 1 && channels != 3 && channels != 4
                        ? "channels must be 1, 3 or 4"
                        : "height and width must be in 1..65535");
    png_buf b = { 0 };
    if (!encode_png(&b, height, width, channels, pixels)) {
        clnet__free(b.data);
        return fail(w, b.failed ? CLNET_ERR_HOST_MEMORY : CLNET_ERR_INTERNAL,
                    "clnet_tblog_image: PNG encoding of \"%s\" failed", tag ? tag : "");
    }
    ClnetTb__Summary__Image img = CLNET_TB__SUMMARY__IMAGE__INIT;
    img.height = height;
    img.width = width;
    img.colorspace = channels;
    img.encoded_image_string.data = b.data;
    img.encoded_image_string.len = b.n;
    ClnetTb__Summary__Value v = CLNET_TB__SUMMARY__VALUE__INIT;
    v.value_case = CLNET_TB__SUMMARY__VALUE__VALUE_IMAGE;
    v.image = &img;
    clnet_status st = write_value(w, step, &v, tag);
    clnet__free(b.data);
    return st;
}

CLNET_API clnet_status clnet_tblog_histogram(clnet_tblog *w, const char *tag, int64_t step,
                                             const float *values, size_t n, int buckets)
{
    if (!w)
        return CLNET_ERR_INVALID_ARG;
    if ((!values && n) || buckets < 0 || buckets > 1000)
        return fail(w, CLNET_ERR_INVALID_ARG, "clnet_tblog_histogram: invalid argument: %s",
                    !values && n ? "values is NULL" : "buckets must be in 0..1000");
    int nb = buckets ? buckets : 30;
    double lo = INFINITY, hi = -INFINITY, sum = 0, sq = 0, count = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(values[i])) {
            double v = values[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
            sq += v * v;
            count++;
        }
    if (!count)
        lo = hi = 0;
    double *limit = clnet__calloc((size_t)nb * 2, sizeof *limit), *bucket = limit + nb;
    if (!limit)
        return fail(w, CLNET_ERR_HOST_MEMORY, "clnet_tblog_histogram: out of host memory");
    /* Equal-width buckets over [lo, hi] (width 1 from lo when all values
     * are equal); the last one ends just above hi so that hi itself is
     * inside it (a bucket excludes its right limit). */
    double width = hi > lo ? (hi - lo) / nb : 1.0;
    for (int i = 0; i < nb; i++)
        limit[i] = lo + width * (i + 1);
    if (hi > lo)
        limit[nb - 1] = nextafter(hi, INFINITY);
    for (size_t i = 0; i < n; i++)
        if (isfinite(values[i])) {
            int k = (int)((values[i] - lo) / width);
            k = k < 0 ? 0 : k >= nb ? nb - 1 : k;
            /* Rounding may put a value one bucket off its limits: fix it. */
            while (k > 0 && values[i] < limit[k - 1])
                k--;
            while (k < nb - 1 && values[i] >= limit[k])
                k++;
            bucket[k]++;
        }
    ClnetTb__HistogramProto hp = CLNET_TB__HISTOGRAM_PROTO__INIT;
    hp.min = lo;
    hp.max = hi;
    hp.num = count;
    hp.sum = sum;
    hp.sum_squares = sq;
    hp.n_bucket_limit = hp.n_bucket = (size_t)nb;
    hp.bucket_limit = limit;
    hp.bucket = bucket;
    ClnetTb__Summary__Value v = CLNET_TB__SUMMARY__VALUE__INIT;
    v.value_case = CLNET_TB__SUMMARY__VALUE__VALUE_HISTO;
    v.histo = &hp;
    clnet_status st = write_value(w, step, &v, tag);
    clnet__free(limit);
    return st;
}

/* ---- The fit callback -------------------------------------------------------------------------
 */

typedef struct tb_state {
    clnet_tblog *w;
    clnet_tensorboard_params p;
} tb_state;

static clnet_status tb_error(clnet_model *m, tb_state *s, clnet_status st)
{
    return clnet__error(m->ctx, st, "%s", clnet_tblog_errmsg(s->w));
}

static clnet_status tb_batch_end(void *user, clnet_model *m, clnet_fit_event *ev)
{
    tb_state *s = user;
    if (s->p.every_steps <= 0 || m->step_count % s->p.every_steps)
        return CLNET_OK;
    clnet_status st = clnet_tblog_scalar(s->w, "batch/loss", m->step_count, ev->progress->loss);
    return st ? tb_error(m, s, st) : CLNET_OK;
}

static clnet_status tb_histograms(tb_state *s, clnet_model *m, int64_t step)
{
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i]->nparams; k++) {
            const clnet_tensor *t = m->layers[i]->params[k].value;
            size_t n = clnet_tensor_numel(t);
            float *buf = clnet__malloc((n ? n : 1) * sizeof *buf);
            if (!buf)
                return clnet__error(m->ctx, CLNET_ERR_HOST_MEMORY,
                                    "tensorboard: out of host memory");
            char tag[64];
            snprintf(tag, sizeof tag, "layers.%d.%s", i, m->layers[i]->params[k].name);
            clnet_status st = clnet_tensor_download(t, buf, n * sizeof *buf);
            if (!st && (st = clnet_tblog_histogram(s->w, tag, step, buf, n, 0)))
                st = tb_error(m, s, st);
            clnet__free(buf);
            if (st)
                return st;
        }
    return CLNET_OK;
}

static clnet_status tb_epoch_end(void *user, clnet_model *m, clnet_fit_event *ev)
{
    tb_state *s = user;
    const clnet_epoch_log *l = ev->log;
    const struct {
        const char *tag;
        double v;
    } rows[] = { { "epoch/loss", l->loss },
                 { "epoch/accuracy", l->accuracy },
                 { "epoch/val_loss", l->val_loss },
                 { "epoch/val_accuracy", l->val_accuracy },
                 { "epoch/lr", l->lr },
                 { "epoch/seconds", l->seconds } };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        clnet_status st =
            rows[i].v < 0 ? CLNET_OK : clnet_tblog_scalar(s->w, rows[i].tag, l->epoch, rows[i].v);
        if (st)
            return tb_error(m, s, st);
    }
    return s->p.histograms ? tb_histograms(s, m, l->epoch) : CLNET_OK;
}

CLNET_API clnet_status clnet_callback_tensorboard(clnet_context *ctx, clnet_tblog *w,
                                                  const clnet_tensorboard_params *p,
                                                  clnet_callback *out)
{
    CLNET_CHECK_ARG(ctx, out != NULL);
    memset(out, 0, sizeof *out);
    static const clnet_tensorboard_params defaults = CLNET_TENSORBOARD_PARAMS_INIT;
    if (!p)
        p = &defaults;
    CLNET_CHECK_ARG(ctx, w != NULL && p->every_steps >= 0);
    tb_state *s = clnet__calloc(1, sizeof *s);
    if (!s)
        return clnet__error(ctx, CLNET_ERR_HOST_MEMORY,
                            "clnet_callback_tensorboard: out of host memory");
    s->w = w;
    s->p = *p;
    *out = (clnet_callback){ .batch_end = p->every_steps > 0 ? tb_batch_end : NULL,
                             .epoch_end = tb_epoch_end,
                             .user = s,
                             .destroy = clnet__free };
    return CLNET_OK;
}
