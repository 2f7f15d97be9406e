/* clnet-bench — a float64 interpreter of ONNX graphs on the host, the
 * reference clnet-bench --onnx --check compares each device with. It reads
 * the graph as the file states it (clnet/onnx.h), node by node, with plain
 * loops, and shares nothing with the importer (src/io/onnx_import.c), so a
 * mistake in the import shows as a difference. The ops it evaluates are
 * listed in docs/bench.md ("--onnx"). Public API only. */
#ifndef CLNET_BENCH_ONNX_REF_H
#define CLNET_BENCH_ONNX_REF_H

#include <stddef.h>
#include <stdint.h>

#include <clnet/onnx.h>

#define ONNX_REF_MAX_DIMS 8

/* A value: row-major float64 data (int64 tensors held as doubles, exact for
 * the shape arithmetic exporters write). */
typedef struct onnx_ref_value {
    int ndim;
    int64_t shape[ONNX_REF_MAX_DIMS];
    size_t n;
    double *d;
} onnx_ref_value;

/* Evaluates the graph of om on inputs x[0..nx) (nx = the graph's input
 * count, in order) into out[0..n_outputs) (the graph's outputs, in order;
 * each out[k].d is malloc'd, the caller frees it). *flops receives the
 * multiply-adds of Conv, Gemm and MatMul times 2 (optional). Returns 0; or
 * -1 with a message in err naming the node (an op without a reference, a
 * shape that does not fit, no memory), out untouched. */
int onnx_ref_run(const clnet_onnx_model *om, int nx, const onnx_ref_value *x, onnx_ref_value *out,
                 double *flops, char *err, size_t err_size);

/* The FLOP count alone: the same walk with the sums of Conv, Gemm and
 * MatMul skipped (their outputs left 0; shapes and the int64 shape
 * arithmetic are computed as above). x[i].d may be NULL (zeros). Returns
 * 0 and *flops, or -1 with a message. */
int onnx_ref_flops(const clnet_onnx_model *om, int nx, const onnx_ref_value *x, double *flops,
                   char *err, size_t err_size);

#endif
