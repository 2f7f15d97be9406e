/* clnet-bench — --plot: grouped bars drawn with cairo (tools/draw.h), PNG,
 * SVG or PDF by the file name: one group per workload, one bar per device;
 * a panel of GFLOP/s for workloads with a FLOP formula, one of GB/s for the
 * others, each on a log axis when its values span decades; with two or more
 * devices a speed-up panel: each case's time on the reference device (the
 * first) over its time on each other device, on a log axis centred on 1x.
 * A wrong answer (--check) is a red cross, not a bar. --plot-data writes
 * the numbers drawn as CSV. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "draw.h"
#include "outfile.h"

#define PI 3.14159265358979323846
#define WIDTH 1200
#define LEFT 90.0
#define RIGHT 20.0
#define PLOT_H 240.0

static const double palette[][3] = { { 0.31, 0.47, 0.65 }, { 0.95, 0.56, 0.17 },
                                     { 0.35, 0.63, 0.31 }, { 0.69, 0.48, 0.63 },
                                     { 0.46, 0.72, 0.70 }, { 0.93, 0.79, 0.28 },
                                     { 1.00, 0.62, 0.65 }, { 0.61, 0.46, 0.37 } };

enum { PANEL_GFLOPS, PANEL_GBPS, PANEL_SPEEDUP, NPANELS };

/* One bar: a case (its group) and a device; value NAN draws nothing. */
typedef struct bar {
    int group, device, failed;
    double value;
} bar;

typedef struct panel {
    int kind, ngroups, nbars;
    const bench_result **groups; /* device 0's result of each case */
    bar *bars;
    draw_axis y;
} panel;

typedef struct chart {
    const bench_run_info *info;
    panel p[NPANELS];
    double label_h; /* under each panel: the case names, upright */
    int height;
} chart;

static const char *const panel_key[NPANELS] = { "gflops", "gbps", "speedup" };

static int failed(const bench_result *r)
{
    return r && r->check.done && !r->check.pass;
}

/* The speed-up of r over ref: ref's time over r's; NAN where either has no
 * trusted time. */
static double speedup(const bench_result *ref, const bench_result *r)
{
    if (!ref || !r || !ref->ok || !r->ok || failed(ref) || failed(r) || !(ref->median_ms > 0) ||
        !(r->median_ms > 0))
        return NAN;
    return ref->median_ms / r->median_ms;
}

/* Fills panel `kind` from the results: its cases (device 0's order) and
 * bars. 0 on success, -1 out of memory. */
static int build_panel(panel *p, int kind, const bench_run_info *info, const bench_result *rs,
                       int n)
{
    int D = info->device_count;
    p->kind = kind;
    p->groups = calloc((size_t)n + 1, sizeof *p->groups);
    p->bars = calloc((size_t)n * (size_t)D + 1, sizeof *p->bars);
    if (!p->groups || !p->bars)
        return -1;
    if (kind == PANEL_SPEEDUP && D < 2)
        return 0;
    for (int i = 0; i < n; i++) {
        const bench_result *r = &rs[i];
        int mine = kind == PANEL_SPEEDUP  ? 1
                   : kind == PANEL_GFLOPS ? r->c.flops > 0
                                          : r->c.flops <= 0 && r->c.bytes > 0;
        if (r->device != rs[0].device || !mine)
            continue;
        int g = p->ngroups++;
        p->groups[g] = r;
        for (int d = kind == PANEL_SPEEDUP; d < D; d++) {
            const bench_result *x = bench_find(rs, n, d, r->c.name);
            double v = !x                      ? NAN
                       : kind == PANEL_SPEEDUP ? speedup(bench_find(rs, n, 0, r->c.name), x)
                       : kind == PANEL_GFLOPS  ? bench_gflops(x)
                                               : bench_gbps(x);
            p->bars[p->nbars++] =
                (bar){ .group = g, .device = d, .failed = failed(x), .value = failed(x) ? NAN : v };
        }
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < p->nbars; i++)
        if (p->bars[i].value > 0 && isfinite(p->bars[i].value)) {
            lo = fmin(lo, p->bars[i].value);
            hi = fmax(hi, p->bars[i].value);
        }
    if (kind == PANEL_SPEEDUP) {
        /* Whole decades, the same both sides of 1x. */
        double L = isfinite(lo) ? fmax(fabs(log10(lo)), fabs(log10(hi))) : 1;
        L = fmax(1, ceil(L - 1e-9));
        p->y = (draw_axis){ .lo = -L, .hi = L, .log = 1 };
    } else {
        draw_axis_fit(&p->y, isfinite(lo) ? lo : 0, isfinite(hi) ? hi : 1, 1, 1);
    }
    return 0;
}

static void panel_title(const chart *c, const panel *p, char *buf, size_t size)
{
    const char *check = c->info->checked ? "; x: failed --check" : "";
    if (p->kind == PANEL_SPEEDUP)
        snprintf(buf, size,
                 "Speed-up over device 0: its time / the device's time (above 1x: faster%s)",
                 check);
    else
        snprintf(buf, size, "%s (higher is better%s%s)",
                 p->kind == PANEL_GFLOPS ? "GFLOP/s" : "GB/s", p->y.log ? "; log scale" : "",
                 check);
}

/* Draws one panel with its top at y; returns the height used. */
static double draw_panel(cairo_t *cr, const chart *c, const panel *p, double y)
{
    int D = c->info->device_count, per = p->kind == PANEL_SPEEDUP ? D - 1 : D;
    double w = WIDTH - LEFT - RIGHT, gw = w / p->ngroups, bw = fmin(28, gw / (per + 1));
    double y0 = y + 30, base = p->kind == PANEL_SPEEDUP ? draw_axis_frac(&p->y, 1) : 0;
    char title[200];
    panel_title(c, p, title, sizeof title);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_font_size(cr, 13);
    draw_text(cr, LEFT, y + 16, 0, title);
    cairo_set_font_size(cr, 11);
    draw_y_grid(cr, &p->y, LEFT, y0, w, PLOT_H, p->kind == PANEL_SPEEDUP ? "x" : "");
    for (int i = 0; i < p->nbars; i++) {
        const bar *b = &p->bars[i];
        int slot = p->kind == PANEL_SPEEDUP ? b->device - 1 : b->device;
        double x = LEFT + b->group * gw + (gw - per * bw) / 2 + slot * bw;
        if (b->failed) {
            cairo_set_source_rgb(cr, 0.84, 0.15, 0.16);
            cairo_set_font_size(cr, 16);
            draw_text(cr, x + bw / 2, y0 + PLOT_H * (1 - base) - 4, 0.5, "x");
            cairo_set_font_size(cr, 11);
        } else if (b->value > 0 && isfinite(b->value)) {
            double t = fmin(1, fmax(0, draw_axis_frac(&p->y, b->value)));
            const double *rgb = palette[b->device % 8];
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, x + 1, y0 + PLOT_H * (1 - fmax(t, base)), bw - 2,
                            PLOT_H * fabs(t - base));
            cairo_fill(cr);
        }
    }
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, LEFT, y0, w, PLOT_H);
    cairo_stroke(cr);
    if (p->kind == PANEL_SPEEDUP) { /* the 1x line */
        cairo_move_to(cr, LEFT, y0 + PLOT_H * (1 - base));
        cairo_line_to(cr, LEFT + w, y0 + PLOT_H * (1 - base));
        cairo_stroke(cr);
    }
    for (int g = 0; g < p->ngroups; g++) {
        cairo_save(cr);
        cairo_translate(cr, LEFT + (g + 0.5) * gw + 4, y0 + PLOT_H + 6);
        cairo_rotate(cr, -PI / 2);
        draw_text(cr, 0, 0, 1, p->groups[g]->c.name);
        cairo_restore(cr);
    }
    return 30 + PLOT_H + 6 + c->label_h + 16;
}

static void draw(cairo_t *cr, void *user)
{
    const chart *c = user;
    const bench_run_info *info = c->info;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    char title[400];
    snprintf(title, sizeof title, "clnet-bench %s, %s, host %s; peak measured on the device",
             clnet_version(), info->date, info->host);
    /* The title whole: a smaller font where it would not fit. */
    cairo_set_font_size(cr, 15);
    double tw = draw_text_width(cr, title);
    if (tw > WIDTH - 20)
        cairo_set_font_size(cr, 15 * (WIDTH - 20) / tw);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    draw_text(cr, 10, 22, 0, title);
    cairo_set_font_size(cr, 12);
    for (int d = 0; d < info->device_count; d++) {
        char lab[240];
        const double *rgb = palette[d % 8];
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, 10, 34 + 20 * d, 14, 14);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        snprintf(lab, sizeof lab, "device %d: %s", d, info->devices[d]);
        draw_text(cr, 32, 46 + 20 * d, 0, lab);
    }
    double y = 44 + 20 * info->device_count;
    for (int k = 0; k < NPANELS; k++)
        if (c->p[k].ngroups)
            y += draw_panel(cr, c, &c->p[k], y);
}

static cairo_status_t to_out(void *closure, const unsigned char *data, unsigned int length)
{
    return out_write(closure, data, length) ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static int write_picture(const char *path, chart *c)
{
    /* The case names' band: the longest name, measured in the font used. */
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *cr = cairo_create(s);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 11);
    c->label_h = 0;
    for (int k = 0; k < NPANELS; k++)
        for (int g = 0; g < c->p[k].ngroups; g++)
            c->label_h = fmax(c->label_h, draw_text_width(cr, c->p[k].groups[g]->c.name));
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    double h = 44 + 20 * c->info->device_count + 10;
    for (int k = 0; k < NPANELS; k++)
        h += c->p[k].ngroups ? 30 + PLOT_H + 6 + c->label_h + 16 : 0;
    c->height = (int)ceil(h);
    draw_kind kind = draw_kind_of(path);
    out_file o;
    if (!out_open(&o, "clnet-bench", path))
        return 1;
    cairo_status_t cs =
        draw_render(kind == DRAW_UNKNOWN ? DRAW_PNG : kind, WIDTH, c->height, draw, c, to_out, &o);
    if (cs != CAIRO_STATUS_SUCCESS) {
        if (!o.err)
            fprintf(stderr, "clnet-bench: drawing %s failed: %s\n", path,
                    cairo_status_to_string(cs));
        return o.err ? !out_fail(&o, "clnet-bench") : (out_discard(&o), 1);
    }
    return !out_commit(&o, "clnet-bench");
}

/* panel,case,device,value: every bar drawn; value empty where none is
 * (no time, or a failed check: "fail"). */
static int write_data(const char *path, const chart *c)
{
    out_file o;
    if (!out_open(&o, "clnet-bench", path))
        return 1;
    fprintf(o.f, "panel,case,device,value\n");
    for (int k = 0; k < NPANELS; k++)
        for (int i = 0; i < c->p[k].nbars; i++) {
            const bar *b = &c->p[k].bars[i];
            fprintf(o.f, "%s,%s,%d,", panel_key[k], c->p[k].groups[b->group]->c.name, b->device);
            if (b->failed)
                fprintf(o.f, "fail\n");
            else if (isfinite(b->value))
                fprintf(o.f, "%.9g\n", b->value);
            else
                fprintf(o.f, "\n");
        }
    return !out_commit(&o, "clnet-bench"); /* it reports a failed write */
}

int bench_write_plot(const char *path, const char *data_path, const bench_run_info *info,
                     const bench_result *rs, int n)
{
    chart c = { .info = info };
    int status = 1;
    for (int k = 0; k < NPANELS && n > 0; k++)
        if (build_panel(&c.p[k], k, info, rs, n)) {
            fprintf(stderr, "clnet-bench: out of memory for the plot\n");
            goto done;
        }
    status = n > 0 ? 0 : 1;
    if (!status && path)
        status = write_picture(path, &c);
    if (!status && data_path)
        status = write_data(data_path, &c);
done:
    for (int k = 0; k < NPANELS; k++) {
        free(c.p[k].groups);
        free(c.p[k].bars);
    }
    return status;
}
