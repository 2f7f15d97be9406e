/* clnet tools — line charts with cairo (tools/plot.h): axes with round
 * ticks, a linear or log y axis, a legend; the same drawing on an image
 * (PNG), SVG or PDF surface. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "draw.h"
#include "plot.h"

#define PI 3.14159265358979323846

typedef struct frame {
    double x0, y0, w, h; /* the plotting area on the canvas */
    double xmin, xmax;
    draw_axis y;
} frame;

static double fx(const frame *f, double x)
{
    return f->x0 + (x - f->xmin) / (f->xmax - f->xmin) * f->w;
}

static double fy(const frame *f, double y)
{
    return f->y0 + f->h - draw_axis_frac(&f->y, y) * f->h;
}

static void data_range(const plot_panel *p, frame *f)
{
    double ymin = INFINITY, ymax = -INFINITY;
    f->xmin = INFINITY;
    f->xmax = -INFINITY;
    for (int s = 0; s < p->nseries; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            if (y < 0 || !isfinite(y))
                continue;
            f->xmin = fmin(f->xmin, x);
            f->xmax = fmax(f->xmax, x);
            ymin = fmin(ymin, y);
            ymax = fmax(ymax, y);
        }
    if (!isfinite(f->xmin))
        f->xmin = 0, f->xmax = 1, ymin = 0, ymax = 1;
    draw_axis_fit(&f->y, ymin, ymax, p->log_y, 0);
    if (f->xmax <= f->xmin)
        f->xmin -= 0.5, f->xmax += 0.5;
    double xpad = 0.03 * (f->xmax - f->xmin); /* the end points' dots show whole */
    f->xmin -= xpad;
    f->xmax += xpad;
}

static void draw_axes(cairo_t *cr, const plot_panel *p, const frame *f)
{
    char label[32];
    cairo_set_font_size(cr, 11);
    draw_y_grid(cr, &f->y, f->x0, f->y0, f->w, f->h, "");
    double xs = fmax(1, draw_tick_step(f->xmin, f->xmax, 8));
    for (double x = ceil(f->xmin / xs) * xs; x <= f->xmax + 1e-9; x += xs) {
        snprintf(label, sizeof label, "%g", x);
        draw_text(cr, fx(f, x), f->y0 + f->h + 16, 0.5, label);
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, f->x0, f->y0, f->w, f->h);
    cairo_stroke(cr);
    draw_text(cr, f->x0 + f->w / 2, f->y0 + f->h + 34, 0.5, p->xlabel ? p->xlabel : "");
    cairo_save(cr);
    cairo_translate(cr, f->x0 - 48, f->y0 + f->h / 2);
    cairo_rotate(cr, -PI / 2);
    draw_text(cr, 0, 0, 0.5, p->ylabel ? p->ylabel : "");
    cairo_restore(cr);
    cairo_set_font_size(cr, 14);
    draw_text(cr, f->x0 + f->w / 2, f->y0 - 10, 0.5, p->title ? p->title : "");
}

static void draw_series(cairo_t *cr, const plot_panel *p, const frame *f)
{
    static const double dash[] = { 6, 4 };
    cairo_save(cr);
    cairo_rectangle(cr, f->x0, f->y0, f->w, f->h);
    cairo_clip(cr);
    cairo_set_line_width(cr, 2);
    for (int s = 0; s < p->nseries; s++) {
        const plot_series *ps = &p->series[s];
        cairo_set_source_rgb(cr, ps->rgb[0], ps->rgb[1], ps->rgb[2]);
        cairo_set_dash(cr, dash, ps->dashed ? 2 : 0, 0);
        int pen = 0;
        for (int i = 0; i < ps->n; i++) {
            if (ps->y[i] < 0 || !isfinite(ps->y[i])) {
                pen = 0;
                continue;
            }
            double x = fx(f, ps->x[i]), y = fy(f, ps->y[i]);
            if (pen)
                cairo_line_to(cr, x, y);
            else
                cairo_move_to(cr, x, y);
            pen = 1;
        }
        cairo_stroke(cr);
        cairo_set_dash(cr, dash, 0, 0);
        for (int i = 0; i < ps->n; i++) /* dots: a one-epoch run still shows */
            if (ps->y[i] >= 0 && isfinite(ps->y[i])) {
                cairo_arc(cr, fx(f, ps->x[i]), fy(f, ps->y[i]), 3, 0, 2 * PI);
                cairo_fill(cr);
            }
    }
    cairo_restore(cr);
    /* Legend, inside the frame on the right: at the top unless the lines end
     * in the upper half (rising accuracy), then at the bottom; on a white
     * box so that a line under it does not cross the names. */
    cairo_set_font_size(cr, 11);
    int upper = 0, ends = 0;
    for (int s = 0; s < p->nseries; s++)
        for (int i = p->series[s].n - 1; i >= 0; i--)
            if (p->series[s].y[i] >= 0 && isfinite(p->series[s].y[i])) {
                upper += fy(f, p->series[s].y[i]) < f->y0 + f->h / 2;
                ends++;
                break;
            }
    double top = 2 * upper > ends ? f->y0 + f->h - 12 - 16 * p->nseries : f->y0 + 4;
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_rectangle(cr, f->x0 + f->w - 136, top, 130, 8 + 16 * p->nseries);
    cairo_fill(cr);
    cairo_set_line_width(cr, 2);
    for (int s = 0; s < p->nseries; s++) {
        const plot_series *ps = &p->series[s];
        double y = top + 16 + 16 * s, x = f->x0 + f->w - 130;
        cairo_set_source_rgb(cr, ps->rgb[0], ps->rgb[1], ps->rgb[2]);
        cairo_set_dash(cr, dash, ps->dashed ? 2 : 0, 0);
        cairo_move_to(cr, x, y - 4);
        cairo_line_to(cr, x + 24, y - 4);
        cairo_stroke(cr);
        cairo_set_dash(cr, dash, 0, 0);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        draw_text(cr, x + 30, y, 0, ps->name ? ps->name : "");
    }
}

typedef struct drawing {
    const plot_panel *panels;
    int npanels, width, height;
} drawing;

static void draw(cairo_t *cr, void *user)
{
    const drawing *d = user;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    double pw = (double)d->width / d->npanels;
    for (int i = 0; i < d->npanels; i++) {
        frame f = { .x0 = i * pw + 70, .y0 = 36, .w = pw - 95, .h = d->height - 90 };
        data_range(&d->panels[i], &f);
        draw_axes(cr, &d->panels[i], &f);
        draw_series(cr, &d->panels[i], &f);
    }
}

static cairo_status_t to_file(void *closure, const unsigned char *data, unsigned int length)
{
    return fwrite(data, 1, length, closure) == length ? CAIRO_STATUS_SUCCESS
                                                      : CAIRO_STATUS_WRITE_ERROR;
}

int plot_write(const char *path, const plot_panel *panels, int npanels, int width, int height,
               char *err, size_t err_size)
{
    draw_kind kind = draw_kind_of(path);
    if (kind == DRAW_UNKNOWN || npanels < 1 || width < 100 || height < 100) {
        snprintf(err, err_size, "%s: %s", path,
                 kind == DRAW_UNKNOWN ? "the file name must end in .png, .svg or .pdf"
                                      : "nothing to draw");
        return -1;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, err_size, "the path is too long");
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, err_size, "creating %s failed: %s", tmp, strerror(errno));
        return -1;
    }
    drawing d = { panels, npanels, width, height };
    cairo_status_t cs = draw_render(kind, width, height, draw, &d, to_file, f);
    int werr = ferror(f) ? errno : 0;
    if (fclose(f) != 0 && !werr)
        werr = errno ? errno : EIO;
    if (cs != CAIRO_STATUS_SUCCESS || werr) {
        snprintf(err, err_size, "writing %s failed: %s", tmp,
                 werr ? strerror(werr) : cairo_status_to_string(cs));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, err_size, "renaming %s to %s failed: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
