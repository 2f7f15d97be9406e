/* clnet — recurrent layers (cl/rnn.cl): the simple tanh RNN, LSTM and GRU over
 * whole sequences, cuDNN-style. Forward: one GEMM gives the input projections
 * of every step, then each step is one GEMM (h_{t-1} W_hh^T) and one fused
 * gate kernel. Backward: each step (last first) is one fused kernel and one
 * GEMM (dgates W_hh); then dx, dW_ih and dW_hh are one GEMM each over all
 * steps and the bias gradients one column-sum kernel. The LSTM by default
 * fuses each step's GEMM into its kernel, and on CPUs runs whole runs of
 * steps in one launch ("lstm.forward" / "lstm.backward" variants, below). */
#include <limits.h>
#include <stdio.h>

#include "clnet/rnn.h"
#include "gemm.h"
#include "tensor/tensor_impl.h"

/* ---- cells and the reserve's layout -------------------------------------- */

typedef enum cell_kind { CELL_RNN = 0, CELL_LSTM, CELL_GRU } cell_kind;

typedef struct cell {
    cell_kind kind;
    int gates;                         /* G */
    const char *fwd, *bwd;             /* public names, for messages */
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

/* One call being checked: its cell, name, context and sizes. */
typedef struct call {
    const cell *c;
    const char *func;
    clnet_context *ctx;
    size_t n, t, f, h, gh;
} call;

static const char *shape_str(const clnet_tensor *t, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "x" : "",
                                 (long long)t->shape[i]);
    if (t->ndim == 0)
        snprintf(buf, size, "a scalar");
    return buf;
}

/* The first non-NULL tensor's context (to record a message on), or NULL. */
static clnet_context *find_ctx(const clnet_tensor *const *ts, int count)
{
    for (int i = 0; i < count; i++)
        if (ts[i])
            return ts[i]->ctx;
    return NULL;
}

/* t: non-NULL (unless optional), of the call's context, float32. */
static clnet_status check_common(const call *k, const char *name, const clnet_tensor *t,
                                 int optional)
{
    if (!t)
        return optional ? CLNET_OK
                        : clnet__error(k->ctx, CLNET_ERR_INVALID_ARG,
                                       "%s: invalid argument: %s is NULL", k->func, name);
    if (t->ctx != k->ctx)
        return clnet__error(k->ctx, CLNET_ERR_INVALID_ARG, "%s: %s belongs to another context",
                            k->func, name);
    if (t->dtype != CLNET_F32)
        return clnet__error(k->ctx, CLNET_ERR_SHAPE, "%s: %s must be float32", k->func, name);
    return CLNET_OK;
}

/* t as check_common, with exactly the shape {d0, d1[, d2]} (ndim 1..3);
 * `dims` names the expected dimensions for the message ("N x H"). */
static clnet_status expect(const call *k, const char *name, const clnet_tensor *t, int optional,
                           int ndim, size_t d0, size_t d1, size_t d2, const char *dims)
{
    clnet_status st = check_common(k, name, t, optional);
    if (st || !t)
        return st;
    size_t want[3] = { d0, d1, d2 };
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = (size_t)t->shape[i] == want[i];
    if (ok)
        return CLNET_OK;
    char got[96], exp[96];
    if (ndim == 1)
        snprintf(exp, sizeof exp, "%zu", d0);
    else if (ndim == 2)
        snprintf(exp, sizeof exp, "%zux%zu", d0, d1);
    else
        snprintf(exp, sizeof exp, "%zux%zux%zu", d0, d1, d2);
    return clnet__error(k->ctx, CLNET_ERR_SHAPE, "%s: %s is %s, expected %s (%s)", k->func, name,
                        shape_str(t, got, sizeof got), exp, dims);
}

/* Reads N, T, F from x and H from w_hh (G*H, H), then checks w_ih. */
static clnet_status check_sizes(call *k, const clnet_rnn_weights *w, const clnet_tensor *x)
{
    char buf[96];
    clnet_status st;
    if (!w)
        return clnet__error(k->ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: w is NULL",
                            k->func);
    if ((st = check_common(k, "x", x, 0)))
        return st;
    if (x->ndim != 3)
        return clnet__error(k->ctx, CLNET_ERR_SHAPE, "%s: x is %s, expected a 3-D (N, T, F) tensor",
                            k->func, shape_str(x, buf, sizeof buf));
    if ((st = check_common(k, "w->w_hh", w->w_hh, 0)))
        return st;
    const clnet_tensor *u = w->w_hh;
    if (u->ndim != 2 || u->shape[0] != k->c->gates * u->shape[1])
        return clnet__error(k->ctx, CLNET_ERR_SHAPE, "%s: w->w_hh is %s, expected (%d*H)xH",
                            k->func, shape_str(u, buf, sizeof buf), k->c->gates);
    k->n = (size_t)x->shape[0], k->t = (size_t)x->shape[1], k->f = (size_t)x->shape[2];
    k->h = (size_t)u->shape[1], k->gh = (size_t)u->shape[0];
    if (k->n > INT_MAX || k->gh > INT_MAX)
        return clnet__error(k->ctx, CLNET_ERR_TOO_LARGE, "%s: N (%zu) and %d*H (%zu) must be at "
                            "most INT_MAX", k->func, k->n, k->c->gates, k->gh);
    snprintf(buf, sizeof buf, "%d*H x F", k->c->gates);
    return expect(k, "w->w_ih", w->w_ih, 0, 2, k->gh, k->f, 0, buf);
}

static int overlap(const clnet_tensor *a, const clnet_tensor *b)
{
    return a && b && a->numel && b->numel && clnet__mem(a) == clnet__mem(b) &&
           a->offset < b->offset + b->numel && b->offset < a->offset + a->numel;
}

/* No output may share elements with an input or with another output. */
static clnet_status check_overlaps(const call *k, int nout, const clnet_tensor *const *outs,
                                   const char *const *onames, int nin,
                                   const clnet_tensor *const *ins, const char *const *inames)
{
    for (int i = 0; i < nout; i++) {
        for (int j = 0; j < nin; j++)
            if (overlap(outs[i], ins[j]))
                return clnet__error(k->ctx, CLNET_ERR_INVALID_ARG, "%s: %s overlaps %s", k->func,
                                    onames[i], inames[j]);
        for (int j = i + 1; j < nout; j++)
            if (overlap(outs[i], outs[j]))
                return clnet__error(k->ctx, CLNET_ERR_INVALID_ARG, "%s: %s overlaps %s", k->func,
                                    onames[i], onames[j]);
    }
    return CLNET_OK;
}

static clnet_status check_reserve(const call *k, const clnet_tensor *reserve, int optional)
{
    clnet_status st = check_common(k, "reserve", reserve, optional);
    if (st || !reserve)
        return st;
    int64_t need = reserve_size(k->c, (int64_t)k->n, (int64_t)k->t, (int64_t)k->f, (int64_t)k->h);
    if ((int64_t)reserve->numel < need)
        return clnet__error(k->ctx, CLNET_ERR_SHAPE,
                            "%s: reserve holds %zu elements, needs %lld (%s)", k->func,
                            reserve->numel, (long long)need, k->c->reserve_fn);
    return CLNET_OK;
}

typedef struct fwd_args {
    const clnet_rnn_weights *w;
    const clnet_tensor *x, *h0, *c0;
    clnet_tensor *y, *hT, *cT, *reserve;
} fwd_args;

static clnet_status check_forward(call *k, const fwd_args *a)
{
    /* Messages go to the required output's context, else any argument's. */
    const clnet_tensor *all[] = { a->y, a->x, a->h0, a->c0, a->hT, a->cT, a->reserve,
                                  a->w ? a->w->w_ih : NULL };
    k->ctx = find_ctx(all, 8);
    CLNET_CHECK_ARG(k->ctx, k->ctx != NULL);
    clnet_status st;
    int lstm = k->c->kind == CELL_LSTM;
    char gh[16];
    snprintf(gh, sizeof gh, "%d*H", k->c->gates);
    if ((st = check_sizes(k, a->w, a->x)) ||
        (st = expect(k, "w->b_ih", a->w->b_ih, 0, 1, k->gh, 0, 0, gh)) ||
        (st = expect(k, "w->b_hh", a->w->b_hh, 0, 1, k->gh, 0, 0, gh)) ||
        (st = expect(k, "h0", a->h0, 1, 2, k->n, k->h, 0, "N x H")) ||
        (lstm && (st = expect(k, "c0", a->c0, 1, 2, k->n, k->h, 0, "N x H"))) ||
        (st = expect(k, "y", a->y, 0, 3, k->n, k->t, k->h, "N x T x H")) ||
        (st = expect(k, "hT", a->hT, 1, 2, k->n, k->h, 0, "N x H")) ||
        (lstm && (st = expect(k, "cT", a->cT, 1, 2, k->n, k->h, 0, "N x H"))) ||
        (st = check_reserve(k, a->reserve, 1)))
        return st;
    const clnet_tensor *outs[] = { a->y, a->hT, a->cT, a->reserve };
    const clnet_tensor *ins[] = { a->x, a->h0, a->c0, a->w->w_ih, a->w->w_hh, a->w->b_ih,
                                  a->w->b_hh };
    static const char *const onames[] = { "y", "hT", "cT", "reserve" };
    static const char *const inames[] = { "x", "h0", "c0", "w->w_ih", "w->w_hh", "w->b_ih",
                                          "w->b_hh" };
    return check_overlaps(k, 4, outs, onames, 7, ins, inames);
}

typedef struct bwd_args {
    const clnet_rnn_weights *w;
    const clnet_tensor *x, *reserve, *dy, *dhT, *dcT;
    clnet_tensor *dx, *dh0, *dc0;
    const clnet_rnn_grads *dw;
} bwd_args;

static clnet_status check_backward(call *k, const bwd_args *a)
{
    /* Messages go to a required output's context, else any argument's. */
    const clnet_tensor *all[] = { a->dw ? a->dw->dw_ih : NULL, a->x, a->reserve, a->dy, a->dhT,
                                  a->dcT, a->dx, a->dh0, a->dc0, a->w ? a->w->w_ih : NULL };
    k->ctx = find_ctx(all, 10);
    CLNET_CHECK_ARG(k->ctx, k->ctx != NULL);
    clnet_status st;
    int lstm = k->c->kind == CELL_LSTM;
    char gf[16], gh[16], ghh[16];
    snprintf(gf, sizeof gf, "%d*H x F", k->c->gates);
    snprintf(gh, sizeof gh, "%d*H", k->c->gates);
    snprintf(ghh, sizeof ghh, "%d*H x H", k->c->gates);
    if ((st = check_sizes(k, a->w, a->x)))
        return st;
    if (!a->dw)
        return clnet__error(k->ctx, CLNET_ERR_INVALID_ARG, "%s: invalid argument: dw is NULL",
                            k->func);
    if ((st = check_reserve(k, a->reserve, 0)) ||
        (st = expect(k, "dy", a->dy, 1, 3, k->n, k->t, k->h, "N x T x H")) ||
        (st = expect(k, "dhT", a->dhT, 1, 2, k->n, k->h, 0, "N x H")) ||
        (lstm && (st = expect(k, "dcT", a->dcT, 1, 2, k->n, k->h, 0, "N x H"))) ||
        (st = expect(k, "dx", a->dx, 1, 3, k->n, k->t, k->f, "N x T x F")) ||
        (st = expect(k, "dh0", a->dh0, 1, 2, k->n, k->h, 0, "N x H")) ||
        (lstm && (st = expect(k, "dc0", a->dc0, 1, 2, k->n, k->h, 0, "N x H"))) ||
        (st = expect(k, "dw->dw_ih", a->dw->dw_ih, 0, 2, k->gh, k->f, 0, gf)) ||
        (st = expect(k, "dw->dw_hh", a->dw->dw_hh, 0, 2, k->gh, k->h, 0, ghh)) ||
        (st = expect(k, "dw->db_ih", a->dw->db_ih, 0, 1, k->gh, 0, 0, gh)) ||
        (st = expect(k, "dw->db_hh", a->dw->db_hh, 0, 1, k->gh, 0, 0, gh)))
        return st;
    const clnet_tensor *outs[] = { a->dx, a->dh0, a->dc0, a->dw->dw_ih, a->dw->dw_hh,
                                   a->dw->db_ih, a->dw->db_hh };
    const clnet_tensor *ins[] = { a->x, a->reserve, a->dy, a->dhT, a->dcT, a->w->w_ih, a->w->w_hh };
    static const char *const onames[] = { "dx", "dh0", "dc0", "dw->dw_ih", "dw->dw_hh",
                                          "dw->db_ih", "dw->db_hh" };
    static const char *const inames[] = { "x", "reserve", "dy", "dhT", "dcT", "w->w_ih",
                                          "w->w_hh" };
    return check_overlaps(k, 7, outs, onames, 7, ins, inames);
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

/* A kernel's argument list, built in order. */
typedef struct arglist {
    clnet__arg a[40];
    int n;
} arglist;

static void push(arglist *l, clnet__arg x)
{
    l->a[l->n++] = x;
}

/* A buffer and its offset, then the leading dimension when with_ld. */
static void push_view(arglist *l, view v, int with_ld)
{
    push(l, CLNET_ARG_MEM(v.mem));
    push(l, CLNET_ARG_ULONG(v.off));
    if (with_ld)
        push(l, CLNET_ARG_ULONG(v.ld));
}

/* c = op(a) op(b) + beta c with op(a) m x k, op(b) k x n. */
static clnet_status gemm(const call *k, int ta, int tb, size_t m, size_t n, size_t kk, view a,
                         view b, float beta, view c)
{
    clnet__gemm_desc d = { .trans_a = ta, .trans_b = tb, .m = m, .n = n, .k = kk,
                           .alpha = 1.0f, .beta = beta,
                           .a = a.mem, .a_off = a.off, .lda = a.ld,
                           .b = b.mem, .b_off = b.off, .ldb = b.ld,
                           .c = c.mem, .c_off = c.off, .ldc = c.ld };
    return clnet__gemm(k->ctx, &d, k->func);
}

/* dst rows = src rows (rows x cols); zeros when src.mem is NULL. */
static clnet_status copy_rows(const call *k, view dst, view src, size_t rows, size_t cols)
{
    cl_kernel kern;
    clnet_status st = clnet__kernel(k->ctx, "rnn", NULL, "rnn_copy_rows", &kern);
    if (st)
        return st;
    arglist l = { .n = 0 };
    push_view(&l, dst, 1);
    push_view(&l, src, 1);
    push(&l, CLNET_ARG_ULONG(rows));
    push(&l, CLNET_ARG_ULONG(cols));
    return clnet__launch1d(k->ctx, kern, k->func, l.n, l.a, rows * cols);
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
    cl_kernel kern;
    clnet_status st = clnet__kernel(k->ctx, "rnn", NULL, transposed ? "lstm_pack_wt" : "lstm_pack_w",
                                    &kern);
    if (st)
        return st;
    arglist l = { .n = 0 };
    push_view(&l, dst, 0);
    push_view(&l, tview(w_hh, 0), 0);
    push(&l, CLNET_ARG_INT(k->h));
    push(&l, CLNET_ARG_INT(padded(k->h)));
    return clnet__launch1d(k->ctx, kern, k->func, l.n, l.a, packed_elems(k->h));
}

/* Tiles of lstm_*_fused: FUSED_ROWS batch rows x 8 units each. */
#define FUSED_ROWS 4 /* RNN_TR's default in cl/rnn.cl */

static size_t fused_items(const call *k)
{
    return (k->n + FUSED_ROWS - 1) / FUSED_ROWS * (padded(k->h) / 8);
}

/* Launches `kern` over the steps first .. last (counting down when `down`,
 * the backward): CLNET_V_REC_STEP once per step over every tile, CLNET_V_REC_SEQ as one
 * work-group over at most SEQ_UNIT_STEPS / roundup(H, 8) steps per launch
 * (32 at H = 64). The kernel's step arguments are the last two of l, filled
 * here: forward (first step, count), backward (first, last). Bounding a
 * launch's work bounds its run time (GPU watchdogs), and Mesa's llvmpipe
 * (rusticl, Mesa 22.3) computes wrong values from roughly the 10,000th
 * H x step of one launch on (measured: step 41 at H = 256, 77 at 128,
 * 138-148 at 64; 347 at 16), while launches of 4x this budget (H = 64,
 * 128) agreed bit for bit with one launch per step. */
#define SEQ_UNIT_STEPS 2048

static clnet_status launch_steps(const call *k, cl_kernel kern, arglist *l, int rec, int first,
                                 int last, int down)
{
    size_t wg = clnet__context_profile(k->ctx)->wg_size;
    int per = rec == CLNET_V_REC_SEQ ? (int)(SEQ_UNIT_STEPS / padded(k->h)) : 1;
    per = per < 1 ? 1 : per;
    size_t items = rec == CLNET_V_REC_SEQ ? wg : fused_items(k);
    int steps = (down ? first - last : last - first) + 1;
    l->n += 2;
    for (int done = 0; done < steps; done += per) {
        int s = down ? first - done : first + done, count = steps - done < per ? steps - done : per;
        l->a[l->n - 2] = CLNET_ARG_INT(s);
        l->a[l->n - 1] = CLNET_ARG_INT(down ? s - count + 1 : count);
        clnet_status st = clnet__launch1d(k->ctx, kern, k->func, l->n, l->a, items);
        if (st)
            return st;
    }
    return CLNET_OK;
}

/* ---- forward ------------------------------------------------------------------ */

/* Where a forward keeps its data: the gates (N, T, G*H), the step GEMM's
 * product hw (N, G*H), LSTM cell states and GRU's a_h[n]. */
typedef struct fwd_plan {
    view gates, hw, hprev, c_states, hn;
    view packed;                       /* fused variants: w_hh packed (lstm_pack_wt) */
    int c_pingpong;                    /* inference: c alternates two (N, H) slots */
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
static void c_views(const fwd_plan *p, const fwd_args *a, size_t s, size_t nh, size_t h,
                    view *in, view *out)
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
    arglist l = { .n = 0 };
    push_view(&l, at(p->gates, s * gh), 1);
    push_view(&l, hw, 0);
    push_view(&l, tview(a->w->b_ih, 0), 0);
    push_view(&l, tview(a->w->b_hh, 0), 0);
    if (k->c->kind == CELL_LSTM) {
        view c_in, c_out;
        c_views(p, a, s, n * h, h, &c_in, &c_out);
        push_view(&l, c_in, 1);
        push_view(&l, c_out, 1);
    } else if (k->c->kind == CELL_GRU) {
        push_view(&l, h_prev, 1);
        push_view(&l, at(p->hn, s * h), 1);
    }
    push_view(&l, at(y, s * h), 1);
    push(&l, CLNET_ARG_INT(n));
    push(&l, CLNET_ARG_INT(h));
    return clnet__launch1d(k->ctx, kern, k->func, l.n, l.a, n * h);
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
    clnet_status st = pack_w_hh(k, a->w->w_hh, 1, p->packed);
    if (st)
        return st;
    arglist l = { .n = 0 };
    push_view(&l, p->gates, 1);
    push_view(&l, p->packed, 0);
    push_view(&l, tview(a->w->b_ih, 0), 0);
    push_view(&l, tview(a->w->b_hh, 0), 0);
    push_view(&l, tview(a->h0, h), 1);
    push_view(&l, tview(a->c0, h), 1);
    push_view(&l, p->c_states, 1);
    push(&l, CLNET_ARG_INT(p->c_pingpong));
    push_view(&l, a->reserve ? p->hprev : (view){ NULL, 0, 0 }, 1);
    push_view(&l, tview(a->y, k->t * h), 1);
    push_view(&l, tview(a->hT, h), 0);
    push_view(&l, tview(a->cT, h), 0);
    push(&l, CLNET_ARG_INT(k->n));
    push(&l, CLNET_ARG_INT(h));
    push(&l, CLNET_ARG_INT(k->t));
    return launch_steps(k, kern, &l, rec, 0, (int)k->t - 1, 0);
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
                                         const clnet_tensor *h0, clnet_tensor *y,
                                         clnet_tensor *hT, clnet_tensor *reserve)
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
                                         const clnet_tensor *h0, clnet_tensor *y,
                                         clnet_tensor *hT, clnet_tensor *reserve)
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
    view packed;                       /* fused variants: w_hh packed (lstm_pack_w) */
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
    p->res_extra = (view){ r.mem, r.off + l.extra,
                           k->c->kind == CELL_LSTM ? (t + 1) * h : t * h };
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
    arglist l = { .n = 0 };
    push_view(&l, at(p->res_gates, s * gh), 1);
    if (k->c->kind == CELL_LSTM) {
        push_view(&l, at(p->res_extra, s * h), 1);
    } else if (gru) {
        push_view(&l, at(p->res_extra, s * h), 1);
        push_view(&l, at(p->res_hprev, s * h), 1);
    }
    push_view(&l, at(tview(a->dy, t * h), s * h), 1);
    push_view(&l, p->dh, 0);
    if (k->c->kind == CELL_LSTM)
        push_view(&l, p->dc, 0);
    push_view(&l, at(p->dgx, s * gh), 1);
    if (gru)
        push_view(&l, dgh, 1);
    push(&l, CLNET_ARG_INT(n));
    push(&l, CLNET_ARG_INT(h));
    clnet_status st = clnet__launch1d(k->ctx, kern, k->func, l.n, l.a, n * h);
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
    clnet_status st = pack_w_hh(k, a->w->w_hh, 0, p->packed);
    if (st)
        return st;
    arglist l = { .n = 0 };
    push_view(&l, p->res_gates, 1);
    push_view(&l, p->res_extra, 1);
    push_view(&l, p->packed, 0);
    push_view(&l, tview(a->dy, k->t * h), 1);
    push_view(&l, tview(a->dhT, h), 0);
    push_view(&l, tview(a->dcT, h), 0);
    push_view(&l, p->dc, 0);
    push_view(&l, p->dgx, 1);
    push_view(&l, tview(a->dh0, h), 0);
    push_view(&l, tview(a->dc0, h), 0);
    push(&l, CLNET_ARG_INT(k->n));
    push(&l, CLNET_ARG_INT(h));
    push(&l, CLNET_ARG_INT(k->t));
    return launch_steps(k, kern, &l, rec, (int)k->t - 1, a->dh0 ? -1 : 0, 1);
}

/* After the steps: dh0, dc0 (unless the fused kernel wrote them), then dx,
 * dW_ih, dW_hh and the biases over all steps. */
static clnet_status backward_finish(const call *k, const bwd_args *a, const bwd_plan *p,
                                    int fused)
{
    size_t n = k->n, t = k->t, f = k->f, h = k->h, gh = k->gh, nt = n * t;
    clnet_status st = CLNET_OK;
    if (a->dh0 && !fused)
        st = copy_rows(k, tview(a->dh0, h), p->dh, n, h);
    if (!st && a->dc0 && !fused)
        st = copy_rows(k, tview(a->dc0, h), p->dc, n, h);
    view dgx = { p->dgx.mem, p->dgx.off, gh }, dgh = { p->dgh.mem, p->dgh.off, gh };
    view hprev = { p->res_hprev.mem, p->res_hprev.off, h };
    if (st || (a->dx && (st = gemm(k, 0, 0, nt, f, gh, dgx, tview(a->w->w_ih, f), 0.0f,
                                   tview(a->dx, f)))) ||
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
        if ((st = clnet__launch1d(k->ctx, kern, k->func,
                                  CLNET_ARGS(CLNET_ARG_MEM(src.mem), CLNET_ARG_ULONG(src.off),
                                             CLNET_ARG_ULONG(nt), CLNET_ARG_INT(gh),
                                             CLNET_ARG_MEM(out.mem), CLNET_ARG_ULONG(out.off),
                                             CLNET_ARG_MEM(out2.mem), CLNET_ARG_ULONG(out2.off)),
                                  gh)))
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
