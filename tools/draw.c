/* clnet tools — the cairo helpers the pictures share (tools/draw.h). */
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "draw.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

draw_kind draw_kind_of(const char *path)
{
    return ends_with(path, ".png")   ? DRAW_PNG
           : ends_with(path, ".svg") ? DRAW_SVG
           : ends_with(path, ".pdf") ? DRAW_PDF
                                     : DRAW_UNKNOWN;
}

cairo_status_t draw_render(draw_kind kind, int width, int height,
                           void (*fn)(cairo_t *cr, void *user), void *user,
                           cairo_write_func_t write, void *closure)
{
    cairo_surface_t *s =
        kind == DRAW_SVG   ? cairo_svg_surface_create_for_stream(write, closure, width, height)
        : kind == DRAW_PDF ? cairo_pdf_surface_create_for_stream(write, closure, width, height)
                           : cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    cairo_t *cr = cairo_create(s);
    fn(cr, user);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && kind == DRAW_PNG)
        st = cairo_surface_write_to_png_stream(s, write, closure);
    cairo_surface_finish(s); /* SVG and PDF write their end here */
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    return st;
}

void draw_text(cairo_t *cr, double x, double y, double align, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - align * e.width - e.x_bearing, y);
    cairo_show_text(cr, s);
}

double draw_text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

double draw_tick_step(double lo, double hi, int want)
{
    double raw = (hi - lo) / want, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

void draw_axis_fit(draw_axis *a, double vmin, double vmax, int allow_log, int from_zero)
{
    if (!(vmin <= vmax) || !isfinite(vmin) || !isfinite(vmax))
        vmin = 0, vmax = 1;
    a->log = allow_log && vmin > 0 && vmax / vmin > 10;
    if (a->log) {
        a->lo = floor(log10(vmin));
        a->hi = ceil(log10(vmax));
        return;
    }
    if (from_zero && vmin >= 0) {
        a->lo = 0;
        a->hi = vmax > 0 ? vmax * 1.05 : 1;
        return;
    }
    double pad = vmax > vmin ? 0.05 * (vmax - vmin) : 0.5;
    a->lo = vmin - pad;
    a->hi = vmax + pad;
}

double draw_axis_frac(const draw_axis *a, double v)
{
    return ((a->log ? log10(v) : v) - a->lo) / (a->hi - a->lo);
}

static void grid_line(cairo_t *cr, double v, double x0, double w, double py, const char *unit)
{
    char label[40];
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, x0, py);
    cairo_line_to(cr, x0 + w, py);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    snprintf(label, sizeof label, "%g%s", v, unit ? unit : "");
    draw_text(cr, x0 - 6, py + 4, 1.0, label);
}

void draw_y_grid(cairo_t *cr, const draw_axis *a, double x0, double y0, double w, double h,
                 const char *unit)
{
    cairo_set_line_width(cr, 1);
    if (a->log) {
        static const double within[] = { 1, 2, 5 };
        int fine = a->hi - a->lo <= 2;
        for (double d = ceil(a->lo - 1e-9); d <= a->hi + 1e-9; d++)
            for (int k = 0; k < (fine ? 3 : 1); k++) {
                double v = within[k] * pow(10, d), t = draw_axis_frac(a, v);
                if (t <= 1 + 1e-9)
                    grid_line(cr, v, x0, w, y0 + h - t * h, unit);
            }
        return;
    }
    double step = draw_tick_step(a->lo, a->hi, 5);
    for (double v = ceil(a->lo / step) * step; v <= a->hi + 1e-9 * step; v += step)
        grid_line(cr, fabs(v) < 1e-9 * step ? 0 : v, x0, w, y0 + h - draw_axis_frac(a, v) * h,
                  unit);
}
