/* bench-plot (with test-plot.py): clnet-bench's --plot and --plot-data on
 * made-up results whose every number is known, no device needed. Three
 * devices; device 1 takes 4x device 0's time and device 2 a tenth of it
 * (speed-ups 0.25 and 10), GFLOP/s over three decades, a GB/s case, a case
 * device 2 failed --check, and names with capitals.
 *   usage: test-plot OUT.{png,svg,pdf} DATA.csv */
#include <stdio.h>
#include <string.h>

#include "bench.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test-plot OUT.png|.svg|.pdf DATA.csv\n");
        return 2;
    }
    static const struct {
        const char *name;
        double flops, bytes, ms0;
    } cases[] = { { "gemm_N1024", 2.0e9, 0, 2.0 },
                  { "conv_Small", 1.0e6, 0, 1.0 },
                  { "relu_GB", 0, 4.0e6, 0.5 },
                  { "pool_Checked", 3.0e7, 0, 0.25 } };
    static const double factor[3] = { 1, 4, 0.1 };
    enum { NC = sizeof cases / sizeof cases[0], ND = 3 };
    static bench_result rs[ND * NC];
    bench_run_info info = {
        .device_count = ND, .checked = 1, .date = "2026-12-07 21:00 UTC", .host = "TestHost"
    };
    snprintf(info.devices[0], sizeof info.devices[0], "pthread-Haswell-AMD EPYC [0:0]");
    snprintf(info.devices[1], sizeof info.devices[1], "llvmpipe (LLVM 15.0.6, 256 bits) [1:0]");
    snprintf(info.devices[2], sizeof info.devices[2], "Fast Device [2:0]");
    for (int d = 0; d < ND; d++)
        for (int c = 0; c < NC; c++) {
            bench_result *r = &rs[d * NC + c];
            r->device = d;
            r->ok = 1;
            snprintf(r->c.name, sizeof r->c.name, "%s", cases[c].name);
            r->c.flops = cases[c].flops;
            r->c.bytes = cases[c].bytes;
            r->median_ms = cases[c].ms0 * factor[d];
            r->check.done = 1;
            r->check.pass = !(d == 2 && c == 3);
        }
    return bench_write_plot(argv[1], argv[2], &info, rs, ND * NC);
}
