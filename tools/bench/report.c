/* clnet-bench — the reports: one table per device, the side-by-side table,
 * the first-run (compile) table, and the JSON and CSV files. The peers in
 * tools/peers/ print the same tables and write the same JSON schema. */
#include <math.h>
#include <string.h>

#include "bench.h"
#include "outfile.h"

double bench_gflops(const bench_result *r)
{
    return r->ok && r->c.flops > 0 && r->median_ms > 0 ? r->c.flops / r->median_ms * 1e-6 : NAN;
}

double bench_gbps(const bench_result *r)
{
    return r->ok && r->c.bytes > 0 && r->median_ms > 0 ? r->c.bytes / r->median_ms * 1e-6 : NAN;
}

double bench_peak_pct(const bench_result *r, char *bound)
{
    *bound = ' ';
    if (!r->ok || !r->peak.measured)
        return NAN;
    double gf = bench_gflops(r), gb = bench_gbps(r);
    if (!isnan(gf)) {
        /* The roofline: what the op's intensity allows on this device. */
        double roof = r->peak.gflops;
        if (r->c.bytes > 0 && r->c.flops / r->c.bytes * r->peak.gbps < roof)
            roof = r->c.flops / r->c.bytes * r->peak.gbps;
        *bound = roof < r->peak.gflops ? 'M' : 'C';
        return 100.0 * gf / roof;
    }
    if (!isnan(gb)) {
        *bound = 'M';
        return 100.0 * gb / r->peak.gbps;
    }
    return NAN;
}

const char *bench_check_word(const bench_result *r)
{
    if (!r->check.done)
        return NULL;
    return r->check.pass ? "pass" : "fail";
}

static const char *fmt_ms(char *buf, size_t size, double ms)
{
    if (isnan(ms) || ms < 0)
        snprintf(buf, size, "-");
    else if (ms >= 100)
        snprintf(buf, size, "%.1f", ms);
    else if (ms >= 1)
        snprintf(buf, size, "%.3f", ms);
    else
        snprintf(buf, size, "%.4f", ms);
    return buf;
}

static const char *fmt_num(char *buf, size_t size, double x)
{
    if (isnan(x))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, x >= 100 ? "%.1f" : x >= 1 ? "%.2f" : "%.3f", x);
    return buf;
}

static void print_peak_line(FILE *f, const bench_peak *p)
{
    if (p->measured)
        fprintf(f,
                "  measured peak: %.1f GFLOP/s (fp32 FMA chains, float%d), %.1f GB/s (copy, "
                "float%d), measured here in %.1f s\n",
                p->gflops, p->flops_width, p->gbps, p->copy_width, p->seconds);
    else
        fprintf(f, "  peak not measured%s%s\n", p->error[0] ? ": " : "", p->error);
}

void bench_print_device_table(FILE *f, const bench_run_info *info, const bench_result *rs, int n,
                              int device)
{
    const bench_result *first = NULL;
    for (int i = 0; i < n && !first; i++)
        if (rs[i].device == device)
            first = &rs[i];
    fprintf(f, "\ndevice %d: %s\n", device, info->devices[device]);
    if (first)
        print_peak_line(f, &first->peak);
    fprintf(f, "%-6s %-34s %10s %10s %10s %12s %9s %8s %7s %-5s %10s\n", "suite", "name",
            "median ms", "min ms", "max ms", "reps x inner", "GFLOP/s", "GB/s", "%peak", "check",
            "events ms");
    for (int i = 0; i < n; i++) {
        const bench_result *r = &rs[i];
        if (r->device != device)
            continue;
        if (!r->ok) {
            fprintf(f, "%-6s %-34s ERROR %s\n", r->suite, r->c.name, r->error);
            continue;
        }
        char a[32], b[32], c[32], d[32], e[32], g[32], h[32], reps[32];
        char bound;
        double pct = bench_peak_pct(r, &bound);
        if (isnan(pct))
            snprintf(h, sizeof h, "-");
        else
            snprintf(h, sizeof h, "%.0f%% %c", pct, bound);
        snprintf(reps, sizeof reps, "%d x %d", r->reps, r->inner);
        const char *cw = bench_check_word(r);
        const char *check = !cw ? "-" : r->check.pass ? "pass" : "FAIL";
        fprintf(f, "%-6s %-34s %10s %10s %10s %12s %9s %8s %7s %-5s %10s\n", r->suite, r->c.name,
                fmt_ms(a, sizeof a, r->median_ms), fmt_ms(b, sizeof b, r->min_ms),
                fmt_ms(c, sizeof c, r->max_ms), reps, fmt_num(d, sizeof d, bench_gflops(r)),
                fmt_num(e, sizeof e, bench_gbps(r)), h, check, fmt_ms(g, sizeof g, r->event_ms));
        if (cw && !r->check.pass)
            fprintf(f,
                    "       ^ %zu of %zu elements wrong (%s); first at %zu: expected %.9g, "
                    "got %.9g\n",
                    r->check.bad, r->check.count, r->check.method, r->check.first_bad,
                    r->check.first_ref, r->check.first_got);
        if (cw && r->check.note[0])
            fprintf(f, "       ^ check: %s\n", r->check.note);
    }
}

const bench_result *bench_find(const bench_result *rs, int n, int device, const char *name)
{
    for (int i = 0; i < n; i++)
        if (rs[i].device == device && !strcmp(rs[i].c.name, name))
            return &rs[i];
    return NULL;
}

/* "ms", "ms (1.23x)", "FAIL" or "error": one side-by-side cell. */
static void cell(char *buf, size_t size, const bench_result *r, const bench_result *base)
{
    char ms[32];
    if (!r)
        snprintf(buf, size, "-");
    else if (!r->ok)
        snprintf(buf, size, "error");
    else if (r->check.done && !r->check.pass)
        snprintf(buf, size, "FAIL");
    else if (r == base || !base || !base->ok || (base->check.done && !base->check.pass))
        snprintf(buf, size, "%s", fmt_ms(ms, sizeof ms, r->median_ms));
    else
        snprintf(buf, size, "%s (%.2fx)", fmt_ms(ms, sizeof ms, r->median_ms),
                 base->median_ms / r->median_ms);
}

void bench_print_side_by_side(FILE *f, const bench_run_info *info, const bench_result *rs, int n)
{
    fprintf(f, "\nside by side: median ms per operation (speed-up against device 0; FAIL: a wrong "
               "answer, not ranked)\n");
    for (int d = 0; d < info->device_count; d++)
        fprintf(f, "  device %d: %s\n", d, info->devices[d]);
    fprintf(f, "%-34s", "name");
    for (int d = 0; d < info->device_count; d++) {
        char h[32];
        snprintf(h, sizeof h, "device %d", d);
        fprintf(f, " %18s", h);
    }
    fprintf(f, "\n");
    for (int i = 0; i < n; i++) {
        if (rs[i].device != rs[0].device)
            continue;
        const bench_result *base = &rs[i];
        fprintf(f, "%-34s", base->c.name);
        for (int d = 0; d < info->device_count; d++) {
            char buf[64];
            cell(buf, sizeof buf, bench_find(rs, n, d, base->c.name), base);
            fprintf(f, " %18s", buf);
        }
        fprintf(f, "\n");
    }
}

void bench_print_compile(FILE *f, const bench_run_info *info, const bench_compile *cs, int n)
{
    fprintf(f,
            "\nfirst-run cost, not in the times above: the sum over a suite's cases of (first "
            "call - median),\nin a fresh context with the disk caches %s, then in another "
            "fresh context with them filled\n",
            info->cold ? "empty (--cold)" : "as found (--cold empties them)");
    fprintf(f, "%-7s %-6s %14s %14s %22s %22s\n", "device", "suite", "first run s", "warm cache s",
            "clnet built/loaded", "clnet build s");
    for (int i = 0; i < n; i++) {
        const bench_compile *c = &cs[i];
        char warm[32], bl[48], bs[48];
        if (c->warm_s < 0)
            snprintf(warm, sizeof warm, "-");
        else
            snprintf(warm, sizeof warm, "%.2f", c->warm_s);
        snprintf(bl, sizeof bl, "%llu/%llu, warm %llu/%llu", (unsigned long long)c->built,
                 (unsigned long long)c->loaded, (unsigned long long)c->built_warm,
                 (unsigned long long)c->loaded_warm);
        snprintf(bs, sizeof bs, "%.2f, warm %.2f", c->build_s, c->build_warm_s);
        fprintf(f, "%-7d %-6s %14.2f %14s %22s %22s\n", c->device, c->suite, c->first_s, warm, bl,
                bs);
    }
}

/* ---- Files ---------------------------------------------------------------- */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_number(FILE *f, double x)
{
    if (isnan(x) || isinf(x))
        fprintf(f, "null");
    else
        fprintf(f, "%.6g", x);
}

/* The columns of both files, in order; docs/bench.md describes each. */
static const char *const columns[] = {
    "device",    "suite",         "name",
    "median_ms", "min_ms",        "max_ms",
    "q1_ms",     "q3_ms",         "reps",
    "inner",     "gflops",        "gbps",
    "peak_pct",  "bound",         "peak_gflops",
    "peak_gbps", "check",         "max_err",
    "event_ms",  "first_call_ms", "first_call_warm_ms",
    "cache",     "error",         "about",
    "date",      "host",          "version",
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

typedef struct field {
    int is_str;
    const char *s; /* a string; NULL: null */
    double x;      /* a number; NAN: null */
} field;

static field str(const char *s)
{
    return (field){ 1, s, NAN };
}

static field num(double x)
{
    return (field){ 0, NULL, x };
}

static void fields(const bench_run_info *info, const bench_result *r, field *out, char *bound)
{
    double pct = bench_peak_pct(r, bound);
    bound[1] = 0;
    int ok = r->ok;
    field fs[] = {
        str(info->devices[r->device]),
        str(r->suite),
        str(r->c.name),
        num(ok ? r->median_ms : NAN),
        num(ok ? r->min_ms : NAN),
        num(ok ? r->max_ms : NAN),
        num(ok ? r->q1_ms : NAN),
        num(ok ? r->q3_ms : NAN),
        num(ok ? r->reps : NAN),
        num(ok ? r->inner : NAN),
        num(bench_gflops(r)),
        num(bench_gbps(r)),
        num(pct),
        str(isnan(pct) ? NULL : bound),
        num(r->peak.measured ? r->peak.gflops : NAN),
        num(r->peak.measured ? r->peak.gbps : NAN),
        str(bench_check_word(r)),
        num(r->check.done ? r->check.max_err : NAN),
        num(r->event_ms >= 0 ? r->event_ms : NAN),
        num(r->first_ms > 0 ? r->first_ms : NAN),
        num(r->first_warm_ms >= 0 ? r->first_warm_ms : NAN),
        str(info->cold ? "cold" : "as found"),
        str(ok ? NULL : r->error),
        str(r->c.about),
        str(info->date),
        str(info->host),
        str(clnet_version()),
    };
    memcpy(out, fs, sizeof fs);
}

int bench_write_json(const char *path, const bench_run_info *info, const bench_result *rs, int n)
{
    out_file o;
    if (!out_open(&o, "clnet-bench", path))
        return 1;
    FILE *f = o.f;
    fprintf(f, "[");
    for (int i = 0; i < n; i++) {
        field fs[NCOLUMNS];
        char bound[2];
        fields(info, &rs[i], fs, bound);
        fprintf(f, "%s\n  {", i ? "," : "");
        for (size_t c = 0; c < NCOLUMNS; c++) {
            fprintf(f, "%s\"%s\": ", c ? ", " : "", columns[c]);
            if (fs[c].is_str && fs[c].s)
                json_string(f, fs[c].s);
            else if (fs[c].is_str)
                fprintf(f, "null");
            else
                json_number(f, fs[c].x);
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n]\n");
    return !out_commit(&o, "clnet-bench");
}

static void csv_string(FILE *f, const char *s)
{
    if (!s)
        return;
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int bench_write_csv(const char *path, const bench_run_info *info, const bench_result *rs, int n)
{
    out_file o;
    if (!out_open(&o, "clnet-bench", path))
        return 1;
    FILE *f = o.f;
    for (size_t c = 0; c < NCOLUMNS; c++)
        fprintf(f, "%s%s", c ? "," : "", columns[c]);
    fprintf(f, "\n");
    for (int i = 0; i < n; i++) {
        field fs[NCOLUMNS];
        char bound[2];
        fields(info, &rs[i], fs, bound);
        for (size_t c = 0; c < NCOLUMNS; c++) {
            if (c)
                fputc(',', f);
            if (fs[c].is_str)
                csv_string(f, fs[c].s);
            else if (!isnan(fs[c].x) && !isinf(fs[c].x))
                fprintf(f, "%.6g", fs[c].x);
        }
        fprintf(f, "\n");
    }
    return !out_commit(&o, "clnet-bench");
}
