/* clnet — recurrent layers (cl/rnn.cl): the simple tanh RNN, LSTM and GRU over
 * whole sequences, cuDNN-style. Forward: one GEMM gives the input projections
 * of every step, then each step is one GEMM (h_{t-1} W_hh^T) and one fused
 * gate kernel. Backward: each step (last first) is one fused kernel and one
 * GEMM (dgates W_hh); then dx, dW_ih and dW_hh are one GEMM each over all
 * steps and the bias gradients one column-sum kernel. The LSTM by default
 * fuses each step's GEMM into its kernel, and on CPUs runs whole runs of
 * steps in one launch ("lstm.forward" / "lstm.backward" variants, below). */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clnet/rnn.h"
#include "gemm.h"
#include "ops/op.h"
#include "tensor/tensor_impl.h"

/* ---- cells and the reserve's layout -------------------------------------- */

typedef enum cell_kind { CELL_RNN = 0, CELL_LSTM, CELL_GRU } cell_kind;

typedef struct cell {
    cell_kind kind;
    int gates;             /* G */
    const char *fwd, *bwd; /* public names, for messages */
    const char *fwd_kernel, *bwd_kernel;
    const char *reserve_fn;
} cell;

static const cell cells[] = {
    { CELL_RNN, 1, "clnet_rnn_forward", "clnet_rnn_backward", "rnn_fwd_step", "rnn_bwd_step",
      "clnet_rnn_reserve_size" },
    { CELL_LSTM, 4, "clnet_lstm_forward", "clnet_lstm_backward", "lstm_fwd_step", "lstm_bwd_step",
      "clnet_lstm_reserve_size" },
    { CELL_GRU, 3, "clnet_gru_forward", "clnet_gru_backward", "gru_fwd_step", "gru_bwd_step",
      "clnet_gru_reserve_size" },
};

/* The reserve, in elements from its start (NT = N*T):
 *   gates  (N, T, G*H)  the activations of every step (RNN: h_t; LSTM: i f g o;
 *                       GRU: r z n); the input GEMM writes a_x here first
 *   hprev  (N, T, H)    h_{t-1} of every step (step 0: h0 or zeros), the right
 *                       operand of dW_hh = dgates^T hprev
 *   extra  LSTM (N, T+1, H): c_{t-1} at [:, t], so c_T at [:, T];
 *          GRU (N, T, H): a_h's n block (W_hn h_{t-1} + b_hn); RNN: none */
typedef struct layout {
    size_t gates, hprev, extra;
} layout;

static layout reserve_layout(const cell *c, size_t n, size_t t, size_t h)
{
    size_t nth = n * t * h;
    return (layout){ 0, (size_t)c->gates * nth, (size_t)(c->gates + 1) * nth };
}

/* a * b, or -1 when either is negative or the product overflows int64. */
static int64_t mul64(int64_t a, int64_t b)
{
    if (a < 0 || b < 0 || (a && b > INT64_MAX / a))
        return -1;
    return a * b;
}

/* The end of reserve_layout's last part, G*NTH + NTH + (LSTM: N(T+1)H, GRU:
 * NTH), with overflow checks. */
static int64_t reserve_size(const cell *c, int64_t n, int64_t t, int64_t f, int64_t h)
{
    (void)f; /* no part of today's layout scales with F */
    int64_t per = c->kind == CELL_LSTM ? 6 : c->kind == CELL_GRU ? 5 : 2;
    int64_t nth = mul64(mul64(n, t), h), nh = mul64(n, h);
    int64_t body = mul64(per, nth), extra = c->kind == CELL_LSTM ? nh : 0;
    if (f < 0 || body < 0 || extra < 0 || body > INT64_MAX - extra)
        return -1;
    return body + extra;
}

CLNET_API int64_t clnet_rnn_reserve_size(int64_t n, int64_t t, int64_t f, int64_t h)
{
    return reserve_size(&cells[CELL_RNN], n, t, f, h);
}

CLNET_API int64_t clnet_lstm_reserve_size(int64_t n, int64_t t, int64_t f, int64_t h)
{
    return reserve_size(&cells[CELL_LSTM], n, t, f, h);
}

CLNET_API int64_t clnet_gru_reserve_size(int64_t n, int64_t t, int64_t f, int64_t h)
{
    return reserve_size(&cells[CELL_GRU], n, t, f, h);
}

/* ---- argument checks ------------------------------------------------------ */

/* One checked call: its cell, its op (tensors, context, name) and sizes. */
typedef struct call {
    const cell *c;
    const char *func;
    clnet_context *ctx;
    clnet__op op;
    size_t n, t, f, h, gh;
} call;

/* The tensors of a forward, in its table's order (y first, so that a
 * message about any other argument goes to y's context). */
enum { F_Y, F_X, F_W_IH, F_W_HH, F_B_IH, F_B_HH, F_H0, F_C0, F_HT, F_CT, F_RESERVE, F_COUNT };
static const clnet__tspec forward_spec[F_COUNT] = {
    [F_Y] = { .name = "y", .flags = CLNET_T_OUT, .rank = 3 },
    [F_X] = { .name = "x", .rank = 3 },
    [F_W_IH] = { .name = "w->w_ih", .rank = 2 },
    [F_W_HH] = { .name = "w->w_hh", .rank = 2 },
    [F_B_IH] = { .name = "w->b_ih", .rank = 1 },
    [F_B_HH] = { .name = "w->b_hh", .rank = 1 },
    [F_H0] = { .name = "h0", .flags = CLNET_T_OPTIONAL, .rank = 2 },
    [F_C0] = { .name = "c0", .flags = CLNET_T_OPTIONAL, .rank = 2 },
    [F_HT] = { .name = "hT", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .rank = 2 },
    [F_CT] = { .name = "cT", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .rank = 2 },
    [F_RESERVE] = { .name = "reserve", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL },
};

/* The backward's (the weight gradients first, as they are required). */
enum {
    B_DW_IH,
    B_DW_HH,
    B_DB_IH,
    B_DB_HH,
    B_X,
    B_W_IH,
    B_W_HH,
    B_RESERVE,
    B_DY,
    B_DHT,
    B_DCT,
    B_DX,
    B_DH0,
    B_DC0,
    B_COUNT
};
static const clnet__tspec backward_spec[B_COUNT] = {
    [B_DW_IH] = { .name = "dw->dw_ih", .flags = CLNET_T_OUT, .rank = 2 },
    [B_DW_HH] = { .name = "dw->dw_hh", .flags = CLNET_T_OUT, .rank = 2 },
    [B_DB_IH] = { .name = "dw->db_ih", .flags = CLNET_T_OUT, .rank = 1 },
    [B_DB_HH] = { .name = "dw->db_hh", .flags = CLNET_T_OUT, .rank = 1 },
    [B_X] = { .name = "x", .rank = 3 },
    [B_W_IH] = { .name = "w->w_ih", .rank = 2 },
    [B_W_HH] = { .name = "w->w_hh", .rank = 2 },
    [B_RESERVE] = { .name = "reserve" },
    [B_DY] = { .name = "dy", .flags = CLNET_T_OPTIONAL, .rank = 3 },
    [B_DHT] = { .name = "dhT", .flags = CLNET_T_OPTIONAL, .rank = 2 },
    [B_DCT] = { .name = "dcT", .flags = CLNET_T_OPTIONAL, .rank = 2 },
    [B_DX] = { .name = "dx", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .rank = 3 },
    [B_DH0] = { .name = "dh0", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .rank = 2 },
    [B_DC0] = { .name = "dc0", .flags = CLNET_T_OUT | CLNET_T_OPTIONAL, .rank = 2 },
};

/* Refuses a NULL weights or gradients struct, before its tensors are read;
 * the message goes to the context of the first tensor given. */
static clnet_status check_struct(const call *k, const void *p, const char *name, int count,
                                 const clnet_tensor *const *ts)
{
    if (p)
        return CLNET_OK;
    clnet_context *ctx = clnet__first_ctx(count, ts);
    CLNET_CHECK_ARG(ctx, ctx != NULL);
    return clnet__error(ctx, CLNET_ERR_INVALID_ARG, "%s: %s: must not be NULL", k->func, name);
}

/* Tensor i (if given) has exactly {d0, d1[, d2]}; `dims` names them. */
static clnet_status expect(const call *k, int i, int ndim, size_t d0, size_t d1, size_t d2,
                           const char *dims)
{
    const int64_t want[3] = { (int64_t)d0, (int64_t)d1, (int64_t)d2 };
    return clnet__op_want_shape_as(&k->op, i, ndim, want, dims);
}

/* Reads N, T, F from x and H from w_hh (G*H, H), then checks w_ih. */
static clnet_status check_sizes(call *k, int xi, int w_ih, int w_hh)
{
    const clnet_tensor *x = k->op.t[xi], *u = k->op.t[w_hh];
    char dims[32];
    if (u->shape[0] != k->c->gates * u->shape[1]) {
        snprintf(dims, sizeof dims, "%d*H x H", k->c->gates);
        return clnet__op_fail(&k->op, CLNET_ERR_SHAPE,
                              "w->w_hh: shape (%lld, %lld) but expected %s", (long long)u->shape[0],
                              (long long)u->shape[1], dims);
    }
    k->n = (size_t)x->shape[0], k->t = (size_t)x->shape[1], k->f = (size_t)x->shape[2];
    k->h = (size_t)u->shape[1], k->gh = (size_t)u->shape[0];
    if (k->n > INT_MAX || k->gh > INT_MAX)
        return clnet__op_fail(&k->op, CLNET_ERR_TOO_LARGE,
                              "N (%zu) and %d*H (%zu) must be at most INT_MAX", k->n, k->c->gates,
                              k->gh);
    snprintf(dims, sizeof dims, "%d*H x F", k->c->gates);
    return expect(k, w_ih, 2, k->gh, k->f, 0, dims);
}

static clnet_status check_reserve(const call *k, int i)
{
    const clnet_tensor *reserve = k->op.t[i];
    if (!reserve)
        return CLNET_OK;
    int64_t need = reserve_size(k->c, (int64_t)k->n, (int64_t)k->t, (int64_t)k->f, (int64_t)k->h);
    if ((int64_t)reserve->numel < need)
        return clnet__op_fail(&k->op, CLNET_ERR_SHAPE,
                              "reserve: holds %zu elements, needs %lld (%s)", reserve->numel,
                              (long long)need, k->c->reserve_fn);
    return CLNET_OK;
}

typedef struct fwd_args {
    const clnet_rnn_weights *w;
    const clnet_tensor *x, *h0, *c0;
    clnet_tensor *y, *hT, *cT, *reserve;
} fwd_args;

static clnet_status check_forward(call *k, const fwd_args *a)
{
    const clnet_rnn_weights *w = a->w;
    const clnet_tensor *ts[F_COUNT] = {
        [F_Y] = a->y,   [F_X] = a->x,   [F_H0] = a->h0,           [F_C0] = a->c0,
        [F_HT] = a->hT, [F_CT] = a->cT, [F_RESERVE] = a->reserve,
    };
    clnet_status st = check_struct(k, w, "w", F_COUNT, ts);
    if (st)
        return st;
    ts[F_W_IH] = w->w_ih, ts[F_W_HH] = w->w_hh, ts[F_B_IH] = w->b_ih, ts[F_B_HH] = w->b_hh;
    if ((st = clnet__op_check(&k->op, k->func, forward_spec, F_COUNT, ts)))
        return st;
    k->ctx = k->op.ctx;
    char gh[16];
    snprintf(gh, sizeof gh, "%d*H", k->c->gates);
    if ((st = check_sizes(k, F_X, F_W_IH, F_W_HH)) ||
        (st = expect(k, F_B_IH, 1, k->gh, 0, 0, gh)) ||
        (st = expect(k, F_B_HH, 1, k->gh, 0, 0, gh)) ||
        (st = expect(k, F_H0, 2, k->n, k->h, 0, "N x H")) ||
        (st = expect(k, F_C0, 2, k->n, k->h, 0, "N x H")) ||
        (st = expect(k, F_Y, 3, k->n, k->t, k->h, "N x T x H")) ||
        (st = expect(k, F_HT, 2, k->n, k->h, 0, "N x H")) ||
        (st = expect(k, F_CT, 2, k->n, k->h, 0, "N x H")))
        return st;
    return check_reserve(k, F_RESERVE);
}

typedef struct bwd_args {
    const clnet_rnn_weights *w;
    const clnet_tensor *x, *reserve, *dy, *dhT, *dcT;
    clnet_tensor *dx, *dh0, *dc0;
    const clnet_rnn_grads *dw;
} bwd_args;

static clnet_status check_backward(call *k, const bwd_args *a)
{
    const clnet_rnn_weights *w = a->w;
    const clnet_rnn_grads *dw = a->dw;
    const clnet_tensor *ts[B_COUNT] = {
        [B_X] = a->x,     [B_RESERVE] = a->reserve, [B_DY] = a->dy,   [B_DHT] = a->dhT,
        [B_DCT] = a->dcT, [B_DX] = a->dx,           [B_DH0] = a->dh0, [B_DC0] = a->dc0,
    };
    clnet_status st;
    if ((st = check_struct(k, w, "w", B_COUNT, ts)))
        return st;
    ts[B_W_IH] = w->w_ih, ts[B_W_HH] = w->w_hh;
    if ((st = check_struct(k, dw, "dw", B_COUNT, ts)))
        return st;
    ts[B_DW_IH] = dw->dw_ih, ts[B_DW_HH] = dw->dw_hh, ts[B_DB_IH] = dw->db_ih;
    ts[B_DB_HH] = dw->db_hh;
    if ((st = clnet__op_check(&k->op, k->func, backward_spec, B_COUNT, ts)))
        return st;
    k->ctx = k->op.ctx;
    char gf[16], gh[16], ghh[16];
    snprintf(gf, sizeof gf, "%d*H x F", k->c->gates);
    snprintf(gh, sizeof gh, "%d*H", k->c->gates);
    snprintf(ghh, sizeof ghh, "%d*H x H", k->c->gates);
    if ((st = check_sizes(k, B_X, B_W_IH, B_W_HH)) || (st = check_reserve(k, B_RESERVE)) ||
        (st = expect(k, B_DY, 3, k->n, k->t, k->h, "N x T x H")) ||
        (st = expect(k, B_DHT, 2, k->n, k->h, 0, "N x H")) ||
        (st = expect(k, B_DCT, 2, k->n, k->h, 0, "N x H")) ||
        (st = expect(k, B_DX, 3, k->n, k->t, k->f, "N x T x F")) ||
        (st = expect(k, B_DH0, 2, k->n, k->h, 0, "N x H")) ||
        (st = expect(k, B_DC0, 2, k->n, k->h, 0, "N x H")) ||
        (st = expect(k, B_DW_IH, 2, k->gh, k->f, 0, gf)) ||
        (st = expect(k, B_DW_HH, 2, k->gh, k->h, 0, ghh)) ||
        (st = expect(k, B_DB_IH, 1, k->gh, 0, 0, gh)))
        return st;
    return expect(k, B_DB_HH, 1, k->gh, 0, 0, gh);
}

/* ---- launches --------------------------------------------------------------- */

/* A matrix in a buffer: element (r, c) at off + r*ld + c. mem NULL: absent. */
typedef struct view {
    cl_mem mem;
    size_t off, ld;
} view;

static view tview(const clnet_tensor *t, size_t ld)
{
    return t ? (view){ clnet__mem(t), t->offset, ld } : (view){ NULL, 0, ld };
}

static view at(view v, size_t elements)
{
    v.off += elements;
    return v;
}

/* A view as kernel arguments: its buffer and offset, then (VIEW_LD) its
 * leading dimension. */
#define VIEW(v) CLNET_ARG_MEM((v).mem), CLNET_ARG_ULONG((v).off)
#define VIEW_LD(v) VIEW(v), CLNET_ARG_ULONG((v).ld)

/* Runs kernel `kern` over n work-items with a counted argument list. */
#define LAUNCH(k, kern, n, ...)                                                                    \
    clnet__launch1d((k)->ctx, (kern), (k)->func, CLNET_ARGS(__VA_ARGS__), (n))

/* c = op(a) op(b) + beta c with op(a) m x k, op(b) k x n. */
static clnet_status gemm(const call *k, int ta, int tb, size_t m, size_t n, size_t kk, view a,
                         view b, float beta, view c)
{
    clnet__gemm_desc d = { .trans_a = ta,
                           .trans_b = tb,
                           .m = m,
                           .n = n,
                           .k = kk,
                           .alpha = 1.0f,
                           .beta = beta,
                           .a = a.mem,
                           .a_off = a.off,
                           .lda = a.ld,
                           .b = b.mem,
                           .b_off = b.off,
                           .ldb = b.ld,
                           .c = c.mem,
                           .c_off = c.off,
                           .ldc = c.ld };
    return clnet__gemm(k->ctx, &d, k->func);
}

/* dst rows = src rows (rows x cols); zeros when src.mem is NULL. */
static clnet_status copy_rows(const call *k, view dst, view src, size_t rows, size_t cols)
{
    return CLNET_RUN1D(k->ctx, k->func, "rnn", "rnn_copy_rows", rows * cols, VIEW_LD(dst),
                       VIEW_LD(src), CLNET_ARG_ULONG(rows), CLNET_ARG_ULONG(cols));
}

/* ---- the fused LSTM recurrence (cl/rnn.cl: lstm_*_fused) ------------------ */

/* How an LSTM runs its steps; "lstm.forward" and "lstm.backward" choose:
 *   CLNET_V_REC_GEMM   a step GEMM (clnet__gemm) and a gate kernel per step, two or
 *              more launches per step (the RNN and GRU always run this);
 *   CLNET_V_REC_STEP   one fused kernel per step, over many work-groups;
 *   CLNET_V_REC_SEQ    the same kernel, every step in one launch of one work-group
 *              (barriers between steps; one compute unit).
 * Unforced, on devices other than GPUs: CLNET_V_REC_SEQ when CLNET_V_REC_STEP would launch
 * one work-group per step anyway (its tiles fit one), or when a step's
 * recurrent product is at most SEQ_MAX_MACS multiply-adds (there a launch
 * costs more than the second core gives; docs/rnn.md has the measurements);
 * else CLNET_V_REC_STEP. GPUs: CLNET_V_REC_STEP (one work-group would leave the other compute
 * units idle; untested on a GPU so far). T = 0 and an empty N or H run
 * CLNET_V_REC_GEMM whatever is forced (nothing to fuse). */
#define SEQ_MAX_MACS ((size_t)1 << 21)

static size_t fused_items(const call *k);

static int recurrence(const call *k, const char *variant)
{
    if (k->c->kind != CELL_LSTM || !k->n || !k->h || !k->t || k->t > INT_MAX)
        return CLNET_V_REC_GEMM;
    const clnet__profile *prof = clnet__context_profile(k->ctx);
    int small = fused_items(k) <= prof->wg_size || k->n * k->gh <= SEQ_MAX_MACS / k->h;
    int chosen = prof->info.type != CLNET_DEVICE_GPU && small ? CLNET_V_REC_SEQ : CLNET_V_REC_STEP;
    int v = clnet__variant(k->ctx, variant, chosen);
    return v == CLNET_V_REC_STEP || v == CLNET_V_REC_SEQ ? v : CLNET_V_REC_GEMM;
}

/* The packed w_hh: 4*H x roundup(H, 8) either way round. */
static size_t padded(size_t h)
{
    return (h + 7) / 8 * 8;
}

static size_t packed_elems(size_t h)
{
    return 4 * h * padded(h);
}

/* lstm_pack_wt (transposed, the forward's) or lstm_pack_w into dst. */
static clnet_status pack_w_hh(const call *k, const clnet_tensor *w_hh, int transposed, view dst)
{
    return CLNET_RUN1D(k->ctx, k->func, "rnn", transposed ? "lstm_pack_wt" : "lstm_pack_w",
                       packed_elems(k->h), VIEW(dst), VIEW(tview(w_hh, 0)), CLNET_ARG_INT(k->h),
                       CLNET_ARG_INT(padded(k->h)));
}

/* Tiles of lstm_*_fused: FUSED_ROWS batch rows x 8 units each. */
#define FUSED_ROWS 4 /* RNN_TR's default in cl/rnn.cl */

static size_t fused_items(const call *k)
{
    return (k->n + FUSED_ROWS - 1) / FUSED_ROWS * (padded(k->h) / 8);
}

/* Packs w_hh into `packed` (pack_w_hh), then launches `kern` over the steps first .. last
 * (counting down when `down`, the backward): CLNET_V_REC_STEP once per step over every tile,
 * CLNET_V_REC_SEQ as one work-group over at most SEQ_UNIT_STEPS / roundup(H, 8) steps per launch
 * (32 at H = 64). The kernel's step arguments are the last two, filled here: forward (first step,
 * count), backward (first, last); args holds the others. Bounding a launch's work bounds its run
 * time (GPU watchdogs), and Mesa's llvmpipe (rusticl, Mesa 22.3) computes wrong values from
 * roughly the 10,000th H x step of one launch on (measured: step 41 at H = 256, 77 at 128, 138-148
 * at 64; 347 at 16), while launches of 4x this budget (H = 64, 128) agreed bit for bit with one
 * launch per step.
 */
#define SEQ_UNIT_STEPS 2048

/* The most arguments of a fused kernel, its two step arguments included. */
#define STEP_ARGS_MAX 40

static clnet_status launch_steps(const call *k, cl_kernel kern, const clnet_tensor *w_hh,
                                 view packed, int nargs, const clnet__arg *args, int rec, int first,
                                 int last, int down)
{
    /* w_hh packed first: transposed for the forward (lstm_pack_wt). */
    clnet_status st = pack_w_hh(k, w_hh, !down, packed);
    if (st)
        return st;
    size_t wg = clnet__context_profile(k->ctx)->wg_size;
    int per = rec == CLNET_V_REC_SEQ ? (int)(SEQ_UNIT_STEPS / padded(k->h)) : 1;
    per = per < 1 ? 1 : per;
    size_t items = rec == CLNET_V_REC_SEQ ? wg : fused_items(k);
    int steps = (down ? first - last : last - first) + 1;
    clnet__arg all[STEP_ARGS_MAX];
    assert(nargs + 2 <= STEP_ARGS_MAX);
    memcpy(all, args, (size_t)nargs * sizeof *args);
    for (int done = 0; done < steps; done += per) {
        int s = down ? first - done : first + done, count = steps - done < per ? steps - done : per;
        all[nargs] = CLNET_ARG_INT(s);
        all[nargs + 1] = CLNET_ARG_INT(down ? s - count + 1 : count);
        if ((st = clnet__launch1d(k->ctx, kern, k->func, nargs + 2, all, items)))
            return st;
    }
    return CLNET_OK;
}

/* ---- forward ------------------------------------------------------------------ */

/* Where a forward keeps its data: the gates (N, T, G*H), the step GEMM's
 * product hw (N, G*H), LSTM cell states and GRU's a_h[n]. */
typedef struct fwd_plan {
    view gates, hw, hprev, c_states, hn;
    view packed;    /* fused variants: w_hh packed (lstm_pack_wt) */
    int c_pingpong; /* inference: c alternates two (N, H) slots */
} fwd_plan;

static clnet_status plan_forward(const call *k, const fwd_args *a, int fused, fwd_plan *p)
{
    size_t n = k->n, t = k->t, h = k->h, gh = k->gh;
    int lstm = k->c->kind == CELL_LSTM;
    size_t body = n * gh + (a->reserve ? 0 : n * t * gh + (lstm ? 2 * n * h : 0));
    size_t ws_elems = body + (fused ? packed_elems(h) : 0);
    cl_mem ws;
    clnet_status st = clnet__workspace(k->ctx, ws_elems * sizeof(float), &ws);
    if (st)
        return st;
    *p = (fwd_plan){ .hw = { ws, 0, gh }, .packed = { ws, body, 0 } };
    if (a->reserve) {
        layout l = reserve_layout(k->c, n, t, h);
        view r = tview(a->reserve, 0);
        p->gates = (view){ r.mem, r.off + l.gates, t * gh };
        p->hprev = (view){ r.mem, r.off + l.hprev, t * h };
        p->c_states = (view){ r.mem, r.off + l.extra, (t + 1) * h };
        p->hn = (view){ k->c->kind == CELL_GRU ? r.mem : NULL, r.off + l.extra, t * h };
    } else {
        p->gates = (view){ ws, n * gh, t * gh };
        p->c_states = (view){ ws, n * gh + n * t * gh, h };
        p->c_pingpong = 1;
    }
    return CLNET_OK;
}

/* LSTM step s: where c_{s-1} is read (c0, or zeros, at s = 0) and c_s written. */
static void c_views(const fwd_plan *p, const fwd_args *a, size_t s, size_t nh, size_t h, view *in,
                    view *out)
{
    if (p->c_pingpong) {
        *in = s ? at(p->c_states, ((s - 1) % 2) * nh) : tview(a->c0, h);
        *out = at(p->c_states, (s % 2) * nh);
    } else {
        *in = s ? at(p->c_states, s * h) : tview(a->c0, h);
        *out = at(p->c_states, (s + 1) * h);
    }
}

static clnet_status forward_step(const call *k, const fwd_args *a, const fwd_plan *p,
                                 cl_kernel kern, size_t s)
{
    size_t n = k->n, t = k->t, h = k->h, gh = k->gh;
    view y = tview(a->y, t * h), h_prev = s ? at(y, (s - 1) * h) : tview(a->h0, h);
    view hw = p->hw;
    clnet_status st;
    if (!h_prev.mem)
        hw.mem = NULL; /* h_{t-1} = 0: no product, the kernel reads zeros */
    else if ((st = gemm(k, 0, 1, n, gh, h, h_prev, tview(a->w->w_hh, h), 0.0f, hw)))
        return st;
    view gates = at(p->gates, s * gh), b_ih = tview(a->w->b_ih, 0), b_hh = tview(a->w->b_hh, 0);
    view out = at(y, s * h);
    if (k->c->kind == CELL_LSTM) {
        view c_in, c_out;
        c_views(p, a, s, n * h, h, &c_in, &c_out);
        return LAUNCH(k, kern, n * h, VIEW_LD(gates), VIEW(hw), VIEW(b_ih), VIEW(b_hh),
                      VIEW_LD(c_in), VIEW_LD(c_out), VIEW_LD(out), CLNET_ARG_INT(n),
                      CLNET_ARG_INT(h));
    }
    if (k->c->kind == CELL_GRU)
        return LAUNCH(k, kern, n * h, VIEW_LD(gates), VIEW(hw), VIEW(b_ih), VIEW(b_hh),
                      VIEW_LD(h_prev), VIEW_LD(at(p->hn, s * h)), VIEW_LD(out), CLNET_ARG_INT(n),
                      CLNET_ARG_INT(h));
    return LAUNCH(k, kern, n * h, VIEW_LD(gates), VIEW(hw), VIEW(b_ih), VIEW(b_hh), VIEW_LD(out),
                  CLNET_ARG_INT(n), CLNET_ARG_INT(h));
}

/* After the steps: the final states, and the reserve's hprev and c_0. */
static clnet_status forward_finish(const call *k, const fwd_args *a, const fwd_plan *p)
{
    size_t n = k->n, t = k->t, h = k->h;
    view y = tview(a->y, t * h);
    clnet_status st = CLNET_OK;
    if (a->hT)
        st = copy_rows(k, tview(a->hT, h), at(y, (t - 1) * h), n, h);
    if (!st && a->cT) {
        view c_in, c_last;
        c_views(p, a, t - 1, n * h, h, &c_in, &c_last);
        st = copy_rows(k, tview(a->cT, h), c_last, n, h);
    }
    if (st || !a->reserve)
        return st;
    if ((st = copy_rows(k, p->hprev, tview(a->h0, h), n, h)) ||
        (st = copy_rows(k, at(p->hprev, h), y, n, (t - 1) * h)))
        return st;
    if (k->c->kind == CELL_LSTM)
        st = copy_rows(k, p->c_states, tview(a->c0, h), n, h);
    return st;
}

/* The LSTM's steps through lstm_fwd_fused, which also writes hT, cT and the
 * reserve's h_prev and c_{-1} (forward_finish's copies). */
static clnet_status forward_fused(const call *k, const fwd_args *a, const fwd_plan *p,
                                  cl_kernel kern, int rec)
{
    size_t h = k->h;
    return launch_steps(
        k, kern, a->w->w_hh, p->packed,
        CLNET_ARGS(VIEW_LD(p->gates), VIEW(p->packed), VIEW(tview(a->w->b_ih, 0)),
                   VIEW(tview(a->w->b_hh, 0)), VIEW_LD(tview(a->h0, h)), VIEW_LD(tview(a->c0, h)),
                   VIEW_LD(p->c_states), CLNET_ARG_INT(p->c_pingpong),
                   VIEW_LD(a->reserve ? p->hprev : tview(NULL, 0)), VIEW_LD(tview(a->y, k->t * h)),
                   VIEW(tview(a->hT, h)), VIEW(tview(a->cT, h)), CLNET_ARG_INT(k->n),
                   CLNET_ARG_INT(h), CLNET_ARG_INT(k->t)),
        rec, 0, (int)k->t - 1, 0);
}

static clnet_status forward(const cell *c, const fwd_args *a)
{
    call k = { .c = c, .func = c->fwd };
    clnet_status st = check_forward(&k, a);
    if (st || k.n == 0 || k.h == 0)
        return st;
    if (k.t == 0) { /* no steps: the final states are the initial ones */
        if (a->hT && (st = copy_rows(&k, tview(a->hT, k.h), tview(a->h0, k.h), k.n, k.h)))
            return st;
        if (a->cT && (st = copy_rows(&k, tview(a->cT, k.h), tview(a->c0, k.h), k.n, k.h)))
            return st;
        if (a->reserve && c->kind == CELL_LSTM) /* its only part: c_0 */
            st = copy_rows(&k, tview(a->reserve, k.h), tview(a->c0, k.h), k.n, k.h);
        return st;
    }
    fwd_plan p;
    cl_kernel kern;
    int rec = recurrence(&k, "lstm.forward");
    if ((st = plan_forward(&k, a, rec != CLNET_V_REC_GEMM, &p)) ||
        (st = clnet__kernel(k.ctx, "rnn", NULL, rec ? "lstm_fwd_fused" : c->fwd_kernel, &kern)))
        return st;
    /* a_x for every step at once: (N*T, F) x (F, G*H) into the gates. */
    view gates_all = { p.gates.mem, p.gates.off, k.gh };
    if ((st = gemm(&k, 0, 1, k.n * k.t, k.gh, k.f, tview(a->x, k.f), tview(a->w->w_ih, k.f), 0.0f,
                   gates_all)))
        return st;
    if (rec)
        return forward_fused(&k, a, &p, kern, rec);
    for (size_t s = 0; s < k.t; s++)
        if ((st = forward_step(&k, a, &p, kern, s)))
            return st;
    return forward_finish(&k, a, &p);
}

CLNET_API clnet_status clnet_rnn_forward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                         const clnet_tensor *h0, clnet_tensor *y, clnet_tensor *hT,
                                         clnet_tensor *reserve)
{
    fwd_args a = { w, x, h0, NULL, y, hT, NULL, reserve };
    return forward(&cells[CELL_RNN], &a);
}

CLNET_API clnet_status clnet_lstm_forward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                          const clnet_tensor *h0, const clnet_tensor *c0,
                                          clnet_tensor *y, clnet_tensor *hT, clnet_tensor *cT,
                                          clnet_tensor *reserve)
{
    fwd_args a = { w, x, h0, c0, y, hT, cT, reserve };
    return forward(&cells[CELL_LSTM], &a);
}

CLNET_API clnet_status clnet_gru_forward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                         const clnet_tensor *h0, clnet_tensor *y, clnet_tensor *hT,
                                         clnet_tensor *reserve)
{
    fwd_args a = { w, x, h0, NULL, y, hT, NULL, reserve };
    return forward(&cells[CELL_GRU], &a);
}

/* ---- backward ----------------------------------------------------------------- */

/* The backward's workspace: dgx (N, T, G*H), the gradient of a_x; dgh, that
 * of a_h (the same buffer except for the GRU); dh and dc (N, H), the state
 * gradients carried from step to step. */
typedef struct bwd_plan {
    view res_gates, res_hprev, res_extra;
    view dgx, dgh, dh, dc;
    view packed; /* fused variants: w_hh packed (lstm_pack_w) */
} bwd_plan;

static clnet_status plan_backward(const call *k, const bwd_args *a, int fused, bwd_plan *p)
{
    size_t n = k->n, t = k->t, h = k->h, gh = k->gh, ntg = n * t * gh;
    int gru = k->c->kind == CELL_GRU;
    size_t body = ntg * (gru ? 2 : 1) + 2 * n * h;
    size_t ws_elems = body + (fused ? packed_elems(h) : 0);
    cl_mem ws;
    clnet_status st = clnet__workspace(k->ctx, ws_elems * sizeof(float), &ws);
    if (st)
        return st;
    layout l = reserve_layout(k->c, n, t, h);
    view r = tview(a->reserve, 0);
    p->res_gates = (view){ r.mem, r.off + l.gates, t * gh };
    p->res_hprev = (view){ r.mem, r.off + l.hprev, t * h };
    p->res_extra = (view){ r.mem, r.off + l.extra, k->c->kind == CELL_LSTM ? (t + 1) * h : t * h };
    p->dgx = (view){ ws, 0, t * gh };
    p->dgh = (view){ ws, gru ? ntg : 0, t * gh };
    p->dh = (view){ ws, ntg * (gru ? 2 : 1), h };
    p->dc = (view){ ws, p->dh.off + n * h, h };
    p->packed = (view){ ws, body, 0 };
    return CLNET_OK;
}

static clnet_status backward_step(const call *k, const bwd_args *a, const bwd_plan *p,
                                  cl_kernel kern, size_t s)
{
    size_t n = k->n, t = k->t, h = k->h, gh = k->gh;
    int gru = k->c->kind == CELL_GRU;
    view dgh = at(p->dgh, s * gh);
    view gates = at(p->res_gates, s * gh), extra = at(p->res_extra, s * h);
    view dy = at(tview(a->dy, t * h), s * h), dgx = at(p->dgx, s * gh);
    clnet_status st;
    if (k->c->kind == CELL_LSTM)
        st = LAUNCH(k, kern, n * h, VIEW_LD(gates), VIEW_LD(extra), VIEW_LD(dy), VIEW(p->dh),
                    VIEW(p->dc), VIEW_LD(dgx), CLNET_ARG_INT(n), CLNET_ARG_INT(h));
    else if (gru)
        st = LAUNCH(k, kern, n * h, VIEW_LD(gates), VIEW_LD(extra),
                    VIEW_LD(at(p->res_hprev, s * h)), VIEW_LD(dy), VIEW(p->dh), VIEW_LD(dgx),
                    VIEW_LD(dgh), CLNET_ARG_INT(n), CLNET_ARG_INT(h));
    else
        st = LAUNCH(k, kern, n * h, VIEW_LD(gates), VIEW_LD(dy), VIEW(p->dh), VIEW_LD(dgx),
                    CLNET_ARG_INT(n), CLNET_ARG_INT(h));
    if (st || (s == 0 && !a->dh0))
        return st;
    /* dL/dh_{t-1} = dgh W_hh (+ GRU's bypass term, which the kernel left in dh). */
    return gemm(k, 0, 0, n, h, gh, dgh, tview(a->w->w_hh, h), gru ? 1.0f : 0.0f, p->dh);
}

/* The LSTM's steps through lstm_bwd_fused, which also reads dhT and dcT and
 * writes dh0 and dc0 (backward()'s and backward_finish's copies). */
static clnet_status backward_fused(const call *k, const bwd_args *a, const bwd_plan *p,
                                   cl_kernel kern, int rec)
{
    size_t h = k->h;
    return launch_steps(k, kern, a->w->w_hh, p->packed,
                        CLNET_ARGS(VIEW_LD(p->res_gates), VIEW_LD(p->res_extra), VIEW(p->packed),
                                   VIEW_LD(tview(a->dy, k->t * h)), VIEW(tview(a->dhT, h)),
                                   VIEW(tview(a->dcT, h)), VIEW(p->dc), VIEW_LD(p->dgx),
                                   VIEW(tview(a->dh0, h)), VIEW(tview(a->dc0, h)),
                                   CLNET_ARG_INT(k->n), CLNET_ARG_INT(h), CLNET_ARG_INT(k->t)),
                        rec, (int)k->t - 1, a->dh0 ? -1 : 0, 1);
}

/* After the steps: dh0, dc0 (unless the fused kernel wrote them), then dx,
 * dW_ih, dW_hh and the biases over all steps. */
static clnet_status backward_finish(const call *k, const bwd_args *a, const bwd_plan *p, int fused)
{
    size_t n = k->n, t = k->t, f = k->f, h = k->h, gh = k->gh, nt = n * t;
    clnet_status st = CLNET_OK;
    if (a->dh0 && !fused)
        st = copy_rows(k, tview(a->dh0, h), p->dh, n, h);
    if (!st && a->dc0 && !fused)
        st = copy_rows(k, tview(a->dc0, h), p->dc, n, h);
    view dgx = { p->dgx.mem, p->dgx.off, gh }, dgh = { p->dgh.mem, p->dgh.off, gh };
    view hprev = { p->res_hprev.mem, p->res_hprev.off, h };
    if (st ||
        (a->dx &&
         (st = gemm(k, 0, 0, nt, f, gh, dgx, tview(a->w->w_ih, f), 0.0f, tview(a->dx, f)))) ||
        (st = gemm(k, 1, 0, gh, f, nt, dgx, tview(a->x, f), 0.0f, tview(a->dw->dw_ih, f))) ||
        (st = gemm(k, 1, 0, gh, h, nt, dgh, hprev, 0.0f, tview(a->dw->dw_hh, h))))
        return st;
    cl_kernel kern;
    if ((st = clnet__kernel(k->ctx, "rnn", NULL, "rnn_bias_grad", &kern)))
        return st;
    int gru = k->c->kind == CELL_GRU;
    view bi = tview(a->dw->db_ih, 0), bh = tview(a->dw->db_hh, 0);
    for (int pass = 0; pass < (gru ? 2 : 1); pass++) {
        /* RNN and LSTM: db_hh = db_ih from one pass; GRU: one pass each. */
        view src = pass ? dgh : dgx, out = pass ? bh : bi, out2 = gru ? (view){ 0 } : bh;
        if ((st = LAUNCH(k, kern, gh, VIEW(src), CLNET_ARG_ULONG(nt), CLNET_ARG_INT(gh), VIEW(out),
                         VIEW(out2))))
            return st;
    }
    return CLNET_OK;
}

static clnet_status backward(const cell *c, const bwd_args *a)
{
    call k = { .c = c, .func = c->bwd };
    clnet_status st = check_backward(&k, a);
    if (st)
        return st;
    bwd_plan p;
    cl_kernel kern;
    int rec = recurrence(&k, "lstm.backward");
    if ((st = plan_backward(&k, a, rec != CLNET_V_REC_GEMM, &p)) ||
        (st = clnet__kernel(k.ctx, "rnn", NULL, rec ? "lstm_bwd_fused" : c->bwd_kernel, &kern)))
        return st;
    if (rec)
        return (st = backward_fused(&k, a, &p, kern, rec)) ? st : backward_finish(&k, a, &p, 1);
    if ((st = copy_rows(&k, p.dh, tview(a->dhT, k.h), k.n, k.h)) ||
        (c->kind == CELL_LSTM && (st = copy_rows(&k, p.dc, tview(a->dcT, k.h), k.n, k.h))))
        return st;
    for (size_t s = k.t; s-- > 0;)
        if ((st = backward_step(&k, a, &p, kern, s)))
            return st;
    return backward_finish(&k, a, &p, 0);
}

CLNET_API clnet_status clnet_rnn_backward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                          const clnet_tensor *reserve, const clnet_tensor *dy,
                                          const clnet_tensor *dhT, clnet_tensor *dx,
                                          clnet_tensor *dh0, const clnet_rnn_grads *dw)
{
    bwd_args a = { w, x, reserve, dy, dhT, NULL, dx, dh0, NULL, dw };
    return backward(&cells[CELL_RNN], &a);
}

CLNET_API clnet_status clnet_lstm_backward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                           const clnet_tensor *reserve, const clnet_tensor *dy,
                                           const clnet_tensor *dhT, const clnet_tensor *dcT,
                                           clnet_tensor *dx, clnet_tensor *dh0, clnet_tensor *dc0,
                                           const clnet_rnn_grads *dw)
{
    bwd_args a = { w, x, reserve, dy, dhT, dcT, dx, dh0, dc0, dw };
    return backward(&cells[CELL_LSTM], &a);
}

CLNET_API clnet_status clnet_gru_backward(const clnet_rnn_weights *w, const clnet_tensor *x,
                                          const clnet_tensor *reserve, const clnet_tensor *dy,
                                          const clnet_tensor *dhT, clnet_tensor *dx,
                                          clnet_tensor *dh0, const clnet_rnn_grads *dw)
{
    bwd_args a = { w, x, reserve, dy, dhT, NULL, dx, dh0, NULL, dw };
    return backward(&cells[CELL_GRU], &a);
}
