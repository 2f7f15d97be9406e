/* The tools' command-line numbers: one strict parser for every numeric
 * option of clnet-train and clnet-bench (docs/hardening.md, "Tools"). */
#ifndef CLNET_TOOLS_CLI_H
#define CLNET_TOOLS_CLI_H

#include <clnet/clnet.h>

/* Each parser reads the whole of text as one number and checks its range.
 * Accepted: decimal digits, with one leading '-' for the signed kinds only;
 * the reals also take what strtod takes (1e-3, .5, 0x1p-4) but never inf or
 * nan. Refused: an empty string, leading or trailing blanks or characters,
 * overflow, a value out of range. On success *out is set and 1 returned; on
 * failure *out is untouched, 0 is returned and one line goes to stderr:
 *   PROG: OPTION takes an integer in MIN..MAX, not "TEXT"
 * so the user learns which option, what it allows and what was given. */

/* An integer in [min, max]. */
int cli_int(const char *prog, const char *option, const char *text, long long min, long long max,
            long long *out);

/* An unsigned 64-bit integer in [0, max] (seeds: max = ULLONG_MAX). */
int cli_u64(const char *prog, const char *option, const char *text, unsigned long long max,
            unsigned long long *out);

/* A finite real in the interval from lo to hi; lo_open / hi_open exclude
 * that end ("(0, 10]" is lo 0 open, hi 10 closed). */
int cli_real(const char *prog, const char *option, const char *text, double lo, int lo_open,
             double hi, int hi_open, double *out);

/* A device spec handed to the library (gpu, cpu, a name substring, P:D):
 * refuses an empty spec, and a P:D whose indices (signed digit strings on
 * both sides of the only ':') are not in 0..65535, which the library's
 * parser would wrap ("4294967296:0" is device 0:0). Names that merely
 * contain a ':' pass. 1 if fine; 0 after a message. */
int cli_device(const char *prog, const char *option, const char *spec);

/* int-typed conveniences of cli_int for options stored as int or long. */
int cli_int_i(const char *prog, const char *option, const char *text, int min, int max, int *out);

/* The tools' context log callback: prints the library's reports (the
 * CLNET_PROFILE=1 kernel-time table) through clnet_log_stderr and drops its
 * error messages, which the tools print themselves with their context. */
void cli_log_reports(void *user, clnet_status status, const char *message);

#endif
