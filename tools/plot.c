/* clnet tools — line charts with cairo (tools/plot.h): axes with round
 * ticks, a linear or log y axis, a legend; the same drawing on an image
 * (PNG), SVG or PDF surface. */
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "plot.h"

#define PI 3.14159265358979323846

/* A round step giving about `want` ticks over [lo, hi]. */
static double tick_step(double lo, double hi, int want)
{
    double raw = (hi - lo) / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

typedef struct frame {
    double x0, y0, w, h;               /* the plotting area on the canvas */
    double xmin, xmax, ymin, ymax;     /* ymin/ymax in log10 for a log axis */
    int log_y;
} frame;

static double fx(const frame *f, double x)
{
    return f->x0 + (x - f->xmin) / (f->xmax - f->xmin) * f->w;
}

static double fy(const frame *f, double y)
{
    double v = f->log_y ? log10(y) : y;
    return f->y0 + f->h - (v - f->ymin) / (f->ymax - f->ymin) * f->h;
}

static void text(cairo_t *cr, double x, double y, double align, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - align * e.width - e.x_bearing, y);
    cairo_show_text(cr, s);
}

static void data_range(const plot_panel *p, frame *f)
{
    f->xmin = f->ymin = INFINITY;
    f->xmax = f->ymax = -INFINITY;
    int all_positive = 1;
    for (int s = 0; s < p->nseries; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            if (y < 0 || !isfinite(y))
                continue;
            all_positive &= y > 0;
            f->xmin = fmin(f->xmin, x);
            f->xmax = fmax(f->xmax, x);
            f->ymin = fmin(f->ymin, y);
            f->ymax = fmax(f->ymax, y);
        }
    if (!isfinite(f->xmin)) {
        f->xmin = 0, f->xmax = 1, f->ymin = 0, f->ymax = 1;
        all_positive = 0;
    }
    f->log_y = p->log_y && all_positive && f->ymax / f->ymin > 10;
    if (f->log_y) {
        f->ymin = floor(log10(f->ymin));
        f->ymax = ceil(log10(f->ymax));
    } else {
        double pad = f->ymax > f->ymin ? 0.05 * (f->ymax - f->ymin) : 0.5;
        f->ymin -= pad;
        f->ymax += pad;
    }
    if (f->xmax <= f->xmin)
        f->xmin -= 0.5, f->xmax += 0.5;
    double xpad = 0.03 * (f->xmax - f->xmin);   /* the end points' dots show whole */
    f->xmin -= xpad;
    f->xmax += xpad;
}

static void draw_axes(cairo_t *cr, const plot_panel *p, const frame *f)
{
    char label[32];
    cairo_set_font_size(cr, 11);
    cairo_set_line_width(cr, 1);
    /* Grid and tick labels. */
    double step = tick_step(f->ymin, f->ymax, 5);
    for (double v = ceil(f->ymin / step) * step; v <= f->ymax + 1e-9 * step; v += step) {
        double y = f->log_y ? pow(10, v) : v;
        double py = fy(f, y);
        if (f->log_y && fabs(v - round(v)) > 1e-9)
            continue;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, f->x0, py);
        cairo_line_to(cr, f->x0 + f->w, py);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        snprintf(label, sizeof label, "%g", y);
        text(cr, f->x0 - 6, py + 4, 1.0, label);
    }
    double xs = fmax(1, tick_step(f->xmin, f->xmax, 8));
    for (double x = ceil(f->xmin / xs) * xs; x <= f->xmax + 1e-9; x += xs) {
        snprintf(label, sizeof label, "%g", x);
        text(cr, fx(f, x), f->y0 + f->h + 16, 0.5, label);
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, f->x0, f->y0, f->w, f->h);
    cairo_stroke(cr);
    text(cr, f->x0 + f->w / 2, f->y0 + f->h + 34, 0.5, p->xlabel ? p->xlabel : "");
    cairo_save(cr);
    cairo_translate(cr, f->x0 - 48, f->y0 + f->h / 2);
    cairo_rotate(cr, -PI / 2);
    text(cr, 0, 0, 0.5, p->ylabel ? p->ylabel : "");
    cairo_restore(cr);
    cairo_set_font_size(cr, 14);
    text(cr, f->x0 + f->w / 2, f->y0 - 10, 0.5, p->title ? p->title : "");
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
        for (int i = 0; i < ps->n; i++)     /* dots: a one-epoch run still shows */
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
        text(cr, x + 30, y, 0, ps->name ? ps->name : "");
    }
}

static void draw(cairo_t *cr, const plot_panel *panels, int npanels, int width, int height)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    double pw = (double)width / npanels;
    for (int i = 0; i < npanels; i++) {
        frame f = { .x0 = i * pw + 70, .y0 = 36, .w = pw - 95, .h = height - 90 };
        data_range(&panels[i], &f);
        draw_axes(cr, &panels[i], &f);
        draw_series(cr, &panels[i], &f);
    }
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

int plot_write(const char *path, const plot_panel *panels, int npanels, int width, int height,
               char *err, size_t err_size)
{
    int kind = ends_with(path, ".png") ? 0 : ends_with(path, ".svg") ? 1 : ends_with(path, ".pdf") ? 2 : -1;
    if (kind < 0 || npanels < 1 || width < 100 || height < 100) {
        snprintf(err, err_size, "%s: %s", path,
                 kind < 0 ? "the file name must end in .png, .svg or .pdf" : "nothing to draw");
        return -1;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, err_size, "the path is too long");
        return -1;
    }
    cairo_surface_t *s = kind == 0 ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height)
                       : kind == 1 ? cairo_svg_surface_create(tmp, width, height)
                                   : cairo_pdf_surface_create(tmp, width, height);
    cairo_t *cr = cairo_create(s);
    draw(cr, panels, npanels, width, height);
    cairo_destroy(cr);
    cairo_status_t cs = kind == 0 ? cairo_surface_write_to_png(s, tmp) : CAIRO_STATUS_SUCCESS;
    cairo_surface_finish(s);
    if (cs == CAIRO_STATUS_SUCCESS)
        cs = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (cs != CAIRO_STATUS_SUCCESS) {
        snprintf(err, err_size, "writing %s failed: %s", tmp, cairo_status_to_string(cs));
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
