/* clnet-bench — --plot: grouped bars as a PNG (libpng), one group per
 * workload, one bar per device; a panel of GFLOP/s for workloads with a
 * FLOP formula and one of GB/s for the others. A wrong answer (--check)
 * is drawn as a red cross, not a bar. Text uses a built-in 5x7 font. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "outfile.h"

#ifndef CLNET_BENCH_HAVE_PNG
int bench_write_plot(const char *path, const bench_run_info *info, const bench_result *rs, int n)
{
    (void)info;
    (void)rs;
    (void)n;
    fprintf(stderr, "clnet-bench: built without libpng: cannot write %s\n", path);
    return 1;
}
#else
#include <png.h>

/* ---- A 5x7 font: lowercase, digits and the punctuation of names ----------
 * Rows 7 and 8 hold descenders; NULL rows are empty. */

#define GLYPH_ROWS 9

typedef struct glyph {
    char ch;
    const char *rows[GLYPH_ROWS];
} glyph;

static const glyph font[] = {
    { 'a', { ".....", ".....", ".###.", "....#", ".####", "#...#", ".####" } },
    { 'b', { "#....", "#....", "####.", "#...#", "#...#", "#...#", "####." } },
    { 'c', { ".....", ".....", ".###.", "#....", "#....", "#....", ".###." } },
    { 'd', { "....#", "....#", ".####", "#...#", "#...#", "#...#", ".####" } },
    { 'e', { ".....", ".....", ".###.", "#...#", "#####", "#....", ".###." } },
    { 'f', { "..##.", ".#...", "####.", ".#...", ".#...", ".#...", ".#..." } },
    { 'g', { ".....", ".....", ".####", "#...#", "#...#", "#...#", ".####", "....#", ".###." } },
    { 'h', { "#....", "#....", "####.", "#...#", "#...#", "#...#", "#...#" } },
    { 'i', { "..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###." } },
    { 'j', { "...#.", ".....", "..##.", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.." } },
    { 'k', { "#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#." } },
    { 'l', { ".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###." } },
    { 'm', { ".....", ".....", "##.#.", "#.#.#", "#.#.#", "#.#.#", "#.#.#" } },
    { 'n', { ".....", ".....", "####.", "#...#", "#...#", "#...#", "#...#" } },
    { 'o', { ".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###." } },
    { 'p', { ".....", ".....", "####.", "#...#", "#...#", "#...#", "####.", "#....", "#...." } },
    { 'q', { ".....", ".....", ".####", "#...#", "#...#", "#...#", ".####", "....#", "....#" } },
    { 'r', { ".....", ".....", "#.##.", "##..#", "#....", "#....", "#...." } },
    { 's', { ".....", ".....", ".####", "#....", ".###.", "....#", "####." } },
    { 't', { ".#...", ".#...", "####.", ".#...", ".#...", ".#..#", "..##." } },
    { 'u', { ".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#" } },
    { 'v', { ".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.." } },
    { 'w', { ".....", ".....", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#." } },
    { 'x', { ".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#" } },
    { 'y', { ".....", ".....", "#...#", "#...#", "#...#", "#...#", ".####", "....#", ".###." } },
    { 'z', { ".....", ".....", "#####", "...#.", "..#..", ".#...", "#####" } },
    { '0', { ".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###." } },
    { '1', { "..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###." } },
    { '2', { ".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####" } },
    { '3', { "#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###." } },
    { '4', { "...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#." } },
    { '5', { "#####", "#....", "####.", "....#", "....#", "#...#", ".###." } },
    { '6', { "..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###." } },
    { '7', { "#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..." } },
    { '8', { ".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###." } },
    { '9', { ".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.." } },
    { '_', { ".....", ".....", ".....", ".....", ".....", ".....", "#####" } },
    { '-', { ".....", ".....", ".....", "#####", ".....", ".....", "....." } },
    { '.', { ".....", ".....", ".....", ".....", ".....", ".##..", ".##.." } },
    { ',', { ".....", ".....", ".....", ".....", ".##..", "..#..", ".#..." } },
    { ':', { ".....", ".##..", ".##..", ".....", ".##..", ".##..", "....." } },
    { '/', { ".....", "....#", "...#.", "..#..", ".#...", "#....", "....." } },
    { '(', { "...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#." } },
    { ')', { ".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..." } },
    { '[', { ".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###." } },
    { ']', { ".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###." } },
    { '%', { "##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##" } },
    { '+', { ".....", "..#..", "..#..", "#####", "..#..", "..#..", "....." } },
    { '>', { ".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..." } },
    { '=', { ".....", ".....", "#####", ".....", "#####", ".....", "....." } },
    { ';', { ".....", ".##..", ".##..", ".....", ".##..", "..#..", ".#..." } },
    { '?', { ".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.." } },
};

static const glyph *find_glyph(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        ch = (char)(ch - 'A' + 'a'); /* small capitals would need another 26 */
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].ch == ch)
            return &font[i];
    return ch == ' ' ? NULL : find_glyph('?');
}

/* ---- Canvas ------------------------------------------------------------ */

typedef struct canvas {
    int w, h;
    unsigned char *px; /* RGB */
} canvas;

static void dot(canvas *c, int x, int y, unsigned rgb)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    unsigned char *p = c->px + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
    p[0] = (unsigned char)(rgb >> 16);
    p[1] = (unsigned char)(rgb >> 8);
    p[2] = (unsigned char)rgb;
}

static void rect(canvas *c, int x0, int y0, int w, int h, unsigned rgb)
{
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++)
            dot(c, x, y, rgb);
}

/* Text at (x, y), its top left; vertical: written upwards from (x, y),
 * its bottom left. Each font pixel is 2x2. */
static void text(canvas *c, int x, int y, const char *s, unsigned rgb, int vertical)
{
    for (int i = 0; s[i]; i++) {
        const glyph *g = find_glyph(s[i]);
        for (int r = 0; g && r < GLYPH_ROWS && g->rows[r]; r++)
            for (int col = 0; col < 5; col++) {
                if (g->rows[r][col] != '#')
                    continue;
                if (vertical)
                    rect(c, x + 2 * r, y - 12 * i - 2 * col - 2, 2, 2, rgb);
                else
                    rect(c, x + 12 * i + 2 * col, y + 2 * r, 2, 2, rgb);
            }
    }
}

static const unsigned palette[] = { 0x4e79a7, 0xf28e2b, 0x59a14f, 0xb07aa1,
                                     0x76b7b2, 0xedc948, 0xff9da7, 0x9c755f };
#define RED 0xd62728
#define GREY 0xdddddd
#define INK 0x222222

/* ---- Panels ---------------------------------------------------------------- */

typedef struct layout {
    int left, group_w, bar_w, top, height, label_h;
} layout;

static double metric(const bench_result *r, int flops)
{
    return flops ? bench_gflops(r) : bench_gbps(r);
}

/* Cases of device 0 whose metric is GFLOP/s (flops) or GB/s (!flops). */
static int panel_cases(const bench_result *rs, int n, int flops, const bench_result **out)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (rs[i].device == rs[0].device && (flops ? rs[i].c.flops > 0 : rs[i].c.flops <= 0 &&
                                                                             rs[i].c.bytes > 0))
            out[k++] = &rs[i];
    return k;
}

static double nice_ceiling(double x)
{
    double p = pow(10.0, floor(log10(x)));
    return x <= p ? p : x <= 2 * p ? 2 * p : x <= 5 * p ? 5 * p : 10 * p;
}

static void panel(canvas *c, const layout *L, const bench_run_info *info, const bench_result *rs,
                  int n, const bench_result **cases, int k, int flops)
{
    double top = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(metric(&rs[i], flops)) && (!rs[i].check.done || rs[i].check.pass))
            top = fmax(top, metric(&rs[i], flops));
    top = nice_ceiling(top > 0 ? top : 1);
    int y0 = L->top + L->height; /* the axis */
    char head[96];
    snprintf(head, sizeof head, "%s (higher is better%s)", flops ? "gflop/s" : "gb/s",
             info->checked ? "; x: failed --check" : "");
    text(c, L->left, L->top - 26, head, INK, 0);
    for (int t = 0; t <= 4; t++) {
        int y = y0 - L->height * t / 4;
        rect(c, L->left, y, k * L->group_w, 1, t ? GREY : INK);
        char lab[32];
        snprintf(lab, sizeof lab, "%g", top * t / 4);
        text(c, L->left - 8 - 12 * (int)strlen(lab), y - 7, lab, INK, 0);
    }
    for (int g = 0; g < k; g++) {
        int x = L->left + g * L->group_w + L->bar_w / 2;
        for (int d = 0; d < info->device_count; d++, x += L->bar_w) {
            const bench_result *r = NULL;
            for (int i = 0; i < n && !r; i++)
                if (rs[i].device == d && !strcmp(rs[i].c.name, cases[g]->c.name))
                    r = &rs[i];
            if (r && r->check.done && !r->check.pass)
                text(c, x, y0 - 16, "x", RED, 0); /* a wrong answer: no bar */
            else if (r && !isnan(metric(r, flops))) {
                int h = (int)lround(L->height * metric(r, flops) / top);
                rect(c, x, y0 - h, L->bar_w - 2, h, palette[d % 8]);
            }
        }
        text(c, L->left + g * L->group_w + L->group_w / 2 - 7,
             y0 + 8 + 12 * (int)strlen(cases[g]->c.name), cases[g]->c.name, INK, 1);
    }
}

static int save_png(const char *path, const canvas *c)
{
    out_file o;
    if (!out_open(&o, "clnet-bench", path))
        return 1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return !out_fail(&o, "clnet-bench");
    }
    out_png_io(png, &o);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->px + 3 * (size_t)y * (size_t)c->w);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return !out_commit(&o, "clnet-bench");
}

int bench_write_plot(const char *path, const bench_run_info *info, const bench_result *rs, int n)
{
    const bench_result **fl = calloc((size_t)n + 1, sizeof *fl);
    const bench_result **by = calloc((size_t)n + 1, sizeof *by);
    canvas c = { 0 };
    int status = 1;
    if (!fl || !by || n == 0)
        goto done;
    int kf = panel_cases(rs, n, 1, fl), kb = panel_cases(rs, n, 0, by);
    size_t longest = 0;
    for (int i = 0; i < n; i++)
        longest = strlen(rs[i].c.name) > longest ? strlen(rs[i].c.name) : longest;
    layout L = { .left = 110, .bar_w = 14, .height = 260, .label_h = 12 * (int)longest };
    L.group_w = L.bar_w * (info->device_count + 1);
    int panel_h = 40 + L.height + 20 + L.label_h;
    int legend_h = 24 + 20 * info->device_count;
    int kmax = kf > kb ? kf : kb;
    c.w = L.left + kmax * L.group_w + 40;
    char title[256];
    snprintf(title, sizeof title, "clnet-bench %s, %s, host %s; peak measured on the device",
             clnet_version(), info->date, info->host);
    c.w = c.w < 20 + 12 * (int)strlen(title) ? 20 + 12 * (int)strlen(title) : c.w;
    c.h = legend_h + (kf ? panel_h : 0) + (kb ? panel_h : 0) + 20;
    if (!(c.px = malloc(3 * (size_t)c.w * (size_t)c.h)))
        goto done;
    memset(c.px, 0xff, 3 * (size_t)c.w * (size_t)c.h);
    text(&c, 10, 8, title, INK, 0);
    for (int d = 0; d < info->device_count; d++) {
        rect(&c, 10, 30 + 20 * d, 14, 14, palette[d % 8]);
        char lab[240];
        snprintf(lab, sizeof lab, "device %d: %s", d, info->devices[d]);
        text(&c, 32, 31 + 20 * d, lab, INK, 0);
    }
    L.top = legend_h + 40;
    if (kf) {
        panel(&c, &L, info, rs, n, fl, kf, 1);
        L.top += panel_h;
    }
    if (kb)
        panel(&c, &L, info, rs, n, by, kb, 0);
    status = save_png(path, &c);
done:
    free(c.px);
    free(by);
    free(fl);
    return status;
}
#endif
