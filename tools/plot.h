/* clnet tools — line charts drawn with cairo: one drawing code for PNG, SVG
 * and PDF (the file name's extension picks), written atomically. */
#ifndef CLNET_TOOLS_PLOT_H
#define CLNET_TOOLS_PLOT_H

#include <stddef.h>

/* One line: n points (x[i], y[i]); points with y < 0 are left out (the
 * history's "no value"). */
typedef struct plot_series {
    const char *name;
    const double *x, *y;
    int n;
    double rgb[3];
    int dashed;
} plot_series;

/* One chart: its own axes and legend. */
typedef struct plot_panel {
    const char *title, *xlabel, *ylabel;
    const plot_series *series;
    int nseries;
    int log_y; /* a log scale (used when every y > 0) */
} plot_panel;

/* Draws the panels side by side on a width x height canvas (points; PNG
 * pixels) and writes path (.png, .svg or .pdf) through a temporary file
 * renamed over it. 0 on success; else -1 and a message in err. */
int plot_write(const char *path, const plot_panel *panels, int npanels, int width, int height,
               char *err, size_t err_size);

#endif
