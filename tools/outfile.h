/* The tools' output files: checked before the work, written atomically
 * (docs/hardening.md, "Tools"). */
#ifndef CLNET_TOOLS_OUTFILE_H
#define CLNET_TOOLS_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

/* Checks, before any work, that path can take an output file: the target,
 * if it exists, is a regular file (or a symlink to one) -- never a device
 * node, FIFO, socket or directory, which a rename would replace -- and its
 * directory exists and lets us create a file there (a probe file is
 * created and removed). Also removes stale temporary files of path
 * (see out_clean_stale). 1 if fine; 0 after one line on stderr:
 *   PROG: OPTION PATH: WHAT IS WRONG */
int out_check(const char *prog, const char *option, const char *path);

/* An input file: path must exist and be a regular file (or a symlink to
 * one), so that opening it cannot block on a FIFO or read a device. 1 if
 * fine; 0 after "PROG: OPTION PATH: WHAT IS WRONG" on stderr. */
int in_check(const char *prog, const char *option, const char *path);

/* Removes PATH.tmp-PID-X files left by a writer that was killed (ours or
 * clnet_model_save's, which use the same names): only regular files whose
 * PID is not alive on this machine and that were not modified in the last
 * minute (a writer on another machine sharing the directory). Best effort;
 * returns how many it removed. */
int out_clean_stale(const char *path);

/* The file that a write to path replaces: path itself, or for a symlink to
 * a regular file, the file it points to (so the link stays a link). Writes
 * at most size bytes to buf; 0 on failure (path unusable as is). */
int out_target(const char *path, char *buf, size_t size);

/* An output file being written: a temporary PATH.tmp-PID-N in the target's
 * directory, renamed over the target by out_commit. A reader never sees a
 * half-written file, and a failed write leaves the old file as it was. */
typedef struct out_file {
    FILE *f; /* write here */
    int err; /* the first write error (errno), 0 if none */
    char tmp[4200];
    char dest[4096];
} out_file;

/* Opens the temporary file for path (a regular file or none, as out_check
 * demands); 1 on success, 0 after a message naming path and the cause. */
int out_open(out_file *o, const char *prog, const char *path);

/* Flushes, fsyncs and closes the temporary file and renames it over the
 * target (then fsyncs the directory). 1 on success; 0 after a message
 * naming the step and the cause (e.g. "No space left on device"), with the
 * temporary file removed and the old file unchanged. Closes o->f either
 * way. */
int out_commit(out_file *o, const char *prog);

/* Closes and removes the temporary file (after an error while writing). */
void out_discard(out_file *o);

/* fwrite that keeps the first error in o->err: 1, or 0 after an error. */
int out_write(out_file *o, const void *data, size_t size);

/* After a failed write: the message naming the file and o->err ("No space
 * left on device"), then out_discard. Returns 0. */
int out_fail(out_file *o, const char *prog);

/* Makes libpng write through out_write (so o->err keeps the cause of a
 * failed write); png is a png_structp. */
struct png_struct_def;
void out_png_io(struct png_struct_def *png, out_file *o);

#endif
