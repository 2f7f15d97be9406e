/* clnet tools — what the cairo pictures share (clnet-train's curves in
 * tools/plot.c, clnet-bench's bars in tools/bench/plot.c): the file kind
 * from its name, one drawing rendered to PNG, SVG or PDF, text, and a value
 * axis that is linear or logarithmic. */
#ifndef CLNET_TOOLS_DRAW_H
#define CLNET_TOOLS_DRAW_H

#include <cairo.h>

typedef enum draw_kind { DRAW_UNKNOWN = -1, DRAW_PNG, DRAW_SVG, DRAW_PDF } draw_kind;

/* By the file name's extension (.png, .svg, .pdf, any case). */
draw_kind draw_kind_of(const char *path);

/* Draws with fn(cr, user) on a width x height surface of `kind` (PNG:
 * pixels; SVG, PDF: points) and hands the file's bytes to write(closure,
 * ...), cairo's stream callback. Returns the first cairo error, or
 * CAIRO_STATUS_SUCCESS; a write callback that fails makes it
 * CAIRO_STATUS_WRITE_ERROR (the callback keeps the cause). */
cairo_status_t draw_render(draw_kind kind, int width, int height,
                           void (*fn)(cairo_t *cr, void *user), void *user,
                           cairo_write_func_t write, void *closure);

/* Text with its baseline at y; align 0 puts its left edge at x, 0.5 its
 * middle, 1 its right edge. */
void draw_text(cairo_t *cr, double x, double y, double align, const char *s);
double draw_text_width(cairo_t *cr, const char *s);

/* A round step giving about `want` ticks over [lo, hi]. */
double draw_tick_step(double lo, double hi, int want);

/* A value axis. For a log axis lo and hi are decades (log10). */
typedef struct draw_axis {
    double lo, hi;
    int log;
} draw_axis;

/* The axis for values in [vmin, vmax]: logarithmic when allow_log, vmin >
 * 0 and the values span more than a decade (then whole decades); else
 * linear from 0 (from_zero) or with 5% room at both ends. */
void draw_axis_fit(draw_axis *a, double vmin, double vmax, int allow_log, int from_zero);

/* Where v lies on the axis, 0 at lo and 1 at hi (not clamped). */
double draw_axis_frac(const draw_axis *a, double v);

/* Horizontal grid lines across [x0, x0 + w] and their labels (the value
 * and `unit`) left of x0, for a vertical axis from y0 + h (lo) up to y0
 * (hi). A log axis marks whole decades, and 2 and 5 between them when it
 * spans two decades or less. */
void draw_y_grid(cairo_t *cr, const draw_axis *a, double x0, double y0, double w, double h,
                 const char *unit);

#endif
