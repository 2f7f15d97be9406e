/* The tools' strict number parser (cli.h): whole string, range, finite. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* strtoll and friends skip leading blanks and take a sign; we take neither
 * blanks nor '+', and '-' only where the kind is signed. */
static int starts_well(const char *text, int sign_ok)
{
    if (!text || !*text)
        return 0;
    if (*text == '-' && sign_ok)
        text++;
    return isdigit((unsigned char)*text) || (*text == '.' && sign_ok == 2);
}

int cli_int(const char *prog, const char *option, const char *text, long long min, long long max,
            long long *out)
{
    char *end = NULL;
    long long v = 0;
    int ok = starts_well(text, 1);
    if (ok) {
        errno = 0;
        v = strtoll(text, &end, 10);
        ok = errno == 0 && end != text && *end == 0 && v >= min && v <= max;
    }
    if (!ok) {
        fprintf(stderr, "%s: %s takes an integer in %lld..%lld, not \"%s\"\n", prog, option, min,
                max, text ? text : "");
        return 0;
    }
    *out = v;
    return 1;
}

int cli_u64(const char *prog, const char *option, const char *text, unsigned long long max,
            unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v = 0;
    int ok = starts_well(text, 0);
    if (ok) {
        errno = 0;
        v = strtoull(text, &end, 10);
        ok = errno == 0 && end != text && *end == 0 && v <= max;
    }
    if (!ok) {
        fprintf(stderr, "%s: %s takes an integer in 0..%llu, not \"%s\"\n", prog, option, max,
                text ? text : "");
        return 0;
    }
    *out = v;
    return 1;
}

int cli_real(const char *prog, const char *option, const char *text, double lo, int lo_open,
             double hi, int hi_open, double *out)
{
    char *end = NULL;
    double v = 0;
    int ok = starts_well(text, 2);
    if (ok) {
        errno = 0;
        v = strtod(text, &end);
        /* ERANGE also flags underflow to a denormal or zero: refused too, it
         * is not the number the user wrote. */
        ok = errno == 0 && end != text && *end == 0 && isfinite(v) &&
             (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    }
    if (!ok) {
        fprintf(stderr, "%s: %s takes a number in %c%g, %g%c, not \"%s\"\n", prog, option,
                lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']', text ? text : "");
        return 0;
    }
    *out = v;
    return 1;
}

int cli_int_i(const char *prog, const char *option, const char *text, int min, int max, int *out)
{
    long long v;
    if (!cli_int(prog, option, text, min, max, &v))
        return 0;
    *out = (int)v;
    return 1;
}

/* Is [s, end) an optional sign and one or more digits? */
static int int_text(const char *s, const char *end)
{
    if (s < end && (*s == '-' || *s == '+'))
        s++;
    if (s == end)
        return 0;
    for (; s < end; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

int cli_device(const char *prog, const char *option, const char *spec)
{
    if (!spec || !*spec) {
        fprintf(stderr, "%s: %s needs a device spec, not an empty one\n", prog, option);
        return 0;
    }
    const char *colon = strchr(spec, ':');
    if (!colon || strchr(colon + 1, ':') || !int_text(spec, colon) ||
        !int_text(colon + 1, colon + strlen(colon)))
        return 1; /* not P:D: the library matches it as a name */
    /* Both sides are digit strings now; only the range is left to check. */
    const char *sides[2] = { spec, colon + 1 };
    int ok = 1;
    for (int k = 0; k < 2; k++) {
        errno = 0;
        long long v = strtoll(sides[k], NULL, 10);
        ok = ok && *sides[k] != '+' && !errno && v >= 0 && v <= 65535;
    }
    if (!ok)
        fprintf(stderr, "%s: %s P:D takes a platform and a device index in 0..65535, not \"%s\"\n",
                prog, option, spec);
    return ok;
}

void cli_log_reports(void *user, clnet_status status, const char *message)
{
    if (status == CLNET_OK)
        clnet_log_stderr(user, status, message);
}
