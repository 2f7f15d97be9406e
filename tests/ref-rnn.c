/* clnet tests: float64 reference of the recurrent primitives (see ref-rnn.h).
 * The forward records a trace of every state and activation; the backward
 * replays it from the last step to the first. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref-rnn.h"

int ref_rnn_gates(ref_rnn_cell cell)
{
    return cell == REF_RNN_LSTM ? 4 : cell == REF_RNN_GRU ? 3 : 1;
}

static double sigm(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

/* a[r] = b[r] + sum_k w[r][k] v[k] for r < rows; w is rows x cols. */
static void affine(int rows, int cols, const double *w, const double *b, const double *v, double *a)
{
    for (int r = 0; r < rows; r++) {
        double s = b[r];
        for (int k = 0; k < cols; k++)
            s += w[(size_t)r * cols + k] * v[k];
        a[r] = s;
    }
}

/* One step. ax, ah: the G*h pre-activations from the input and the hidden
 * side; hp, cp: h_{t-1}, c_{t-1}. Writes act (the activations the backward
 * needs: RNN h; LSTM i f g o; GRU r z n), h_t and (LSTM) c_t. */
static void cell_forward(ref_rnn_cell cell, int h, const double *ax, const double *ah,
                         const double *hp, const double *cp, double *act, double *hn, double *cn)
{
    for (int j = 0; j < h; j++) {
        if (cell == REF_RNN_TANH) {
            act[j] = hn[j] = tanh(ax[j] + ah[j]);
        } else if (cell == REF_RNN_LSTM) {
            double i = sigm(ax[j] + ah[j]), f = sigm(ax[h + j] + ah[h + j]);
            double g = tanh(ax[2 * h + j] + ah[2 * h + j]), o = sigm(ax[3 * h + j] + ah[3 * h + j]);
            act[j] = i, act[h + j] = f, act[2 * h + j] = g, act[3 * h + j] = o;
            cn[j] = f * cp[j] + i * g;
            hn[j] = o * tanh(cn[j]);
        } else {
            double r = sigm(ax[j] + ah[j]), z = sigm(ax[h + j] + ah[h + j]);
            double n = tanh(ax[2 * h + j] + r * ah[2 * h + j]);
            act[j] = r, act[h + j] = z, act[2 * h + j] = n;
            hn[j] = (1 - z) * n + z * hp[j];
        }
    }
}

/* What the backward of one step reads: values from the forward, and (for
 * the magnitude mode) magnitudes of a_h and of c_{t-1} and c_t. */
typedef struct step {
    const double *act, *ah, *hp, *cp, *c;
    const double *ahm, *cmp, *cm;
} step;

/* The backward of one step. dh, dc: the whole gradients of h_t and c_t.
 * Gives dax and dah (gradients of the two pre-activations), dhp (the part of
 * dh_{t-1} that bypasses W_hh: GRU's z h_{t-1}) and dcp (LSTM's dc_{t-1}).
 * mag: the magnitude mode of ref_rnn_magnitude (signed coefficients replaced
 * by magnitudes, differences by sums of absolute values). */
static void cell_backward(ref_rnn_cell cell, int h, int mag, const step *st, const double *dh,
                          const double *dc, double *dax, double *dah, double *dhp, double *dcp)
{
    double sg = mag ? -1.0 : 1.0; /* 1 - v^2 becomes 1 + v^2 */
    for (int j = 0; j < h; j++) {
        const double *act = st->act;
        dhp[j] = 0;
        if (cell == REF_RNN_TANH) {
            dax[j] = dah[j] = dh[j] * (1 - sg * act[j] * act[j]);
        } else if (cell == REF_RNN_LSTM) {
            double i = act[j], f = act[h + j], g = act[2 * h + j], o = act[3 * h + j];
            double tc = tanh(st->c[j]), cp = st->cp[j];
            double dct = dc[j] + dh[j] * o * (1 - sg * tc * tc);
            if (mag) { /* tanh(c_t) moves by at most (1 - tc^2) times c_t's error */
                tc = fabs(tc) + (1 - tc * tc) * st->cm[j];
                g = fabs(g);
                cp = st->cmp[j];
            }
            dax[j] = dct * g * i * (1 - i);
            dax[h + j] = dct * cp * f * (1 - f);
            dax[2 * h + j] = dct * i * (1 - sg * g * g);
            dax[3 * h + j] = dh[j] * tc * o * (1 - o);
            for (int q = 0; q < 4; q++)
                dah[q * h + j] = dax[q * h + j];
            dcp[j] = dct * f;
        } else {
            double r = act[j], z = act[h + j], n = act[2 * h + j];
            double an = mag ? st->ahm[2 * h + j] : st->ah[2 * h + j];
            double hn = mag ? fabs(st->hp[j]) + fabs(n) : st->hp[j] - n;
            double dn = dh[j] * (1 - z) * (1 - sg * n * n);
            dax[j] = dah[j] = dn * an * r * (1 - r);
            dax[h + j] = dah[h + j] = dh[j] * hn * z * (1 - z);
            dax[2 * h + j] = dn;
            dah[2 * h + j] = dn * r;
            dhp[j] = dh[j] * z;
        }
    }
}

/* Everything the forward computed: hs, cs and the c magnitudes cm (t+1, n,
 * h) time-major with step 0 the initial state; act, ah, and the magnitudes
 * ahm of a_h and am of a_x + a_h (t, n, G*h). */
typedef struct trace {
    double *hs, *cs, *cm, *act, *ah, *ahm, *am;
} trace;

static void trace_make(const ref_rnn *p, trace *tr)
{
    size_t states = (size_t)(p->t + 1) * p->n * p->h + 1;
    size_t gates = (size_t)p->t * p->n * ref_rnn_gates(p->cell) * p->h + 1;
    tr->hs = calloc(states, sizeof(double));
    tr->cs = calloc(states, sizeof(double));
    tr->cm = calloc(states, sizeof(double));
    tr->act = calloc(gates, sizeof(double));
    tr->ah = calloc(gates, sizeof(double));
    tr->ahm = calloc(gates, sizeof(double));
    tr->am = calloc(gates, sizeof(double));
}

static void trace_free(trace *tr)
{
    free(tr->hs);
    free(tr->cs);
    free(tr->cm);
    free(tr->act);
    free(tr->ah);
    free(tr->ahm);
    free(tr->am);
}

/* m[r] = |b[r]| + sum_k |w[r][k]| |v[k]|: the magnitude of affine()'s terms. */
static void affine_abs(int rows, int cols, const double *w, const double *b, const double *v,
                       double *m)
{
    for (int r = 0; r < rows; r++) {
        double s = fabs(b[r]);
        for (int k = 0; k < cols; k++)
            s += fabs(w[(size_t)r * cols + k]) * fabs(v[k]);
        m[r] = s;
    }
}

static void run_forward(const ref_rnn *p, const ref_rnn_in *in, trace *tr)
{
    int n = p->n, h = p->h, gh = ref_rnn_gates(p->cell) * h;
    size_t nh = (size_t)n * h;
    if (in->h0)
        memcpy(tr->hs, in->h0, nh * sizeof(double));
    for (size_t i = 0; in->c0 && p->cell == REF_RNN_LSTM && i < nh; i++) {
        tr->cs[i] = in->c0[i];
        tr->cm[i] = fabs(in->c0[i]);
    }
    double *ax = malloc(((size_t)gh + 1) * sizeof(double));
    double *axm = malloc(((size_t)gh + 1) * sizeof(double));
    for (int s = 0; s < p->t; s++)
        for (int b = 0; b < n; b++) {
            const double *xt = in->x + ((size_t)b * p->t + s) * p->f;
            size_t at = s * nh + (size_t)b * h, next = at + nh, gat = (s * (size_t)n + b) * gh;
            affine(gh, p->f, in->w_ih, in->b_ih, xt, ax);
            affine(gh, h, in->w_hh, in->b_hh, tr->hs + at, tr->ah + gat);
            cell_forward(p->cell, h, ax, tr->ah + gat, tr->hs + at, tr->cs + at, tr->act + gat,
                         tr->hs + next, tr->cs + next);
            affine_abs(gh, p->f, in->w_ih, in->b_ih, xt, axm);
            affine_abs(gh, h, in->w_hh, in->b_hh, tr->hs + at, tr->ahm + gat);
            for (int r = 0; r < gh; r++)
                tr->am[gat + r] = axm[r] + tr->ahm[gat + r];
            for (int j = 0; p->cell == REF_RNN_LSTM && j < h; j++) {
                const double *a = tr->act + gat;
                tr->cm[next + j] = a[h + j] * tr->cm[at + j] + a[j] * fabs(a[2 * h + j]);
            }
        }
    free(ax);
    free(axm);
}

void ref_rnn_forward(const ref_rnn *p, const ref_rnn_in *in, double *y, double *h_T, double *c_T)
{
    trace tr;
    trace_make(p, &tr);
    run_forward(p, in, &tr);
    size_t nh = (size_t)p->n * p->h;
    for (int b = 0; b < p->n; b++)
        for (int s = 0; s < p->t; s++)
            memcpy(y + ((size_t)b * p->t + s) * p->h, tr.hs + (s + 1) * nh + (size_t)b * p->h,
                   (size_t)p->h * sizeof(double));
    if (h_T)
        memcpy(h_T, tr.hs + (size_t)p->t * nh, nh * sizeof(double));
    if (c_T)
        memcpy(c_T, tr.cs + (size_t)p->t * nh, nh * sizeof(double));
    trace_free(&tr);
}

static void zero(double *v, size_t count)
{
    if (v)
        memset(v, 0, count * sizeof(double));
}

static double val(int mag, double v)
{
    return mag ? fabs(v) : v;
}

/* Adds one (batch b, step s) contribution to the weight and input gradients
 * and leaves W_hh^T dah + dhp (the gradient of h_{t-1}) in dh_prev. */
static void accumulate(const ref_rnn *p, const ref_rnn_in *in, const ref_rnn_grad *g, int mag,
                       int b, int s, const double *hp, const double *dax, const double *dah,
                       const double *dhp, double *dh_prev)
{
    int f = p->f, h = p->h, gh = ref_rnn_gates(p->cell) * h;
    const double *xt = in->x + ((size_t)b * p->t + s) * f;
    for (int r = 0; r < gh; r++) {
        if (g->db_ih)
            g->db_ih[r] += dax[r];
        if (g->db_hh)
            g->db_hh[r] += dah[r];
        for (int k = 0; g->dw_ih && k < f; k++)
            g->dw_ih[(size_t)r * f + k] += dax[r] * val(mag, xt[k]);
        for (int k = 0; g->dw_hh && k < h; k++)
            g->dw_hh[(size_t)r * h + k] += dah[r] * val(mag, hp[k]);
    }
    for (int k = 0; g->dx && k < f; k++) {
        double sum = 0;
        for (int r = 0; r < gh; r++)
            sum += val(mag, in->w_ih[(size_t)r * f + k]) * dax[r];
        g->dx[((size_t)b * p->t + s) * f + k] = sum;
    }
    for (int k = 0; k < h; k++) {
        double sum = dhp[k];
        for (int r = 0; r < gh; r++)
            sum += val(mag, in->w_hh[(size_t)r * h + k]) * dah[r];
        dh_prev[k] = sum;
    }
}

/* The magnitude ref_rnn_magnitude carries backwards for one batch row (its
 * dh0 and dc0): after a step, the larger of that step's own magnitudes
 * (mh, mc: the terms of dh_{s-1}, dc_{s-1}) and the magnitude that came in,
 * scaled as the true gradient's norm changed (in_sq to out_sq) -- errors
 * made at later steps shrink or grow with the gradient they ride on. */
static double carry(double carried, double in_sq, double out_sq, const double *mh, const double *mc,
                    int h, int lstm)
{
    double m = in_sq > 0 ? sqrt(out_sq / in_sq) * carried : 0;
    for (int j = 0; j < h; j++)
        m = fmax(m, fmax(mh[j], lstm ? mc[j] : 0.0));
    return m;
}

static double sum_sq(const double *a, const double *b, int h)
{
    double s = 0;
    for (int j = 0; j < h; j++)
        s += a[j] * a[j] + b[j] * b[j];
    return s;
}

/* BPTT over a recorded trace into g; when gm is not NULL, also the
 * magnitudes of ref_rnn_magnitude: each step's backward again in the
 * magnitude mode on |the true incoming gradients|, accumulated into gm. */
static void backward(const ref_rnn *p, const ref_rnn_in *in, const trace *tr, const double *dy,
                     const double *dh_T, const double *dc_T, const ref_rnn_grad *g,
                     const ref_rnn_grad *gm)
{
    int n = p->n, h = p->h, gh = ref_rnn_gates(p->cell) * h, lstm = p->cell == REF_RNN_LSTM;
    size_t nh = (size_t)n * h, hn = (size_t)h + 1, ghn = (size_t)gh + 1;
    /* dhs, dcs: the gradients of h_s and c_s of every batch row (dcs stays 0
     * but for the LSTM); carried: each row's magnitude (see carry()). */
    double *dhs = calloc(nh + 1, sizeof(double)), *dcs = calloc(nh + 1, sizeof(double));
    double *carried = calloc((size_t)n + 1, sizeof(double));
    double *dh = malloc(hn * sizeof(double)), *dhp = malloc(hn * sizeof(double));
    double *adh = malloc(hn * sizeof(double)), *adc = malloc(hn * sizeof(double));
    double *mh = malloc(hn * sizeof(double)), *mc = malloc(hn * sizeof(double));
    double *dax = malloc(ghn * sizeof(double)), *dah = malloc(ghn * sizeof(double));
    for (size_t i = 0; i < nh; i++) {
        dhs[i] = dh_T ? dh_T[i] : 0.0;
        dcs[i] = dc_T && lstm ? dc_T[i] : 0.0;
        carried[i / h] = fmax(carried[i / h], fmax(fabs(dhs[i]), fabs(dcs[i])));
    }
    const ref_rnn_grad *both[2] = { g, gm };
    for (int k = 0; k < 2; k++)
        if (both[k]) {
            zero(both[k]->dx, (size_t)n * p->t * p->f);
            zero(both[k]->dw_ih, (size_t)gh * p->f);
            zero(both[k]->dw_hh, (size_t)gh * h);
            zero(both[k]->db_ih, (size_t)gh);
            zero(both[k]->db_hh, (size_t)gh);
        }
    for (int s = p->t - 1; s >= 0; s--)
        for (int b = 0; b < n; b++) {
            size_t at = s * nh + (size_t)b * h, gat = (s * (size_t)n + b) * gh;
            double *dc = dcs + (size_t)b * h, c_in = carried[b];
            for (int j = 0; j < h; j++) {
                dh[j] = dhs[(size_t)b * h + j] + (dy ? dy[((size_t)b * p->t + s) * h + j] : 0.0);
                adh[j] = fabs(dh[j]), adc[j] = fabs(dc[j]);
                c_in = fmax(c_in, fmax(adh[j], adc[j]));
            }
            double in_sq = sum_sq(dh, dc, h);
            step st = { tr->act + gat,    tr->ah + gat,  tr->hs + at, tr->cs + at,
                        tr->cs + at + nh, tr->ahm + gat, tr->cm + at, tr->cm + at + nh };
            if (gm) { /* before the true step overwrites dc with dc_{s-1} */
                cell_backward(p->cell, h, 1, &st, adh, adc, dax, dah, dhp, mc);
                accumulate(p, in, gm, 1, b, s, st.hp, dax, dah, dhp, mh);
            }
            cell_backward(p->cell, h, 0, &st, dh, dc, dax, dah, dhp, dc);
            accumulate(p, in, g, 0, b, s, st.hp, dax, dah, dhp, dhs + (size_t)b * h);
            if (gm)
                carried[b] =
                    carry(c_in, in_sq, sum_sq(dhs + (size_t)b * h, dc, h), mh, mc, h, lstm);
        }
    for (size_t i = 0; i < nh; i++) {
        if (g->dh0)
            g->dh0[i] = dhs[i];
        if (g->dc0)
            g->dc0[i] = dcs[i];
        if (gm && gm->dh0)
            gm->dh0[i] = carried[i / h];
        if (gm && gm->dc0)
            gm->dc0[i] = lstm ? carried[i / h] : 0.0;
    }
    double *all[] = { dhs, dcs, carried, dh, dhp, adh, adc, mh, mc, dax, dah };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

void ref_rnn_backward(const ref_rnn *p, const ref_rnn_in *in, const double *dy, const double *dh_T,
                      const double *dc_T, const ref_rnn_grad *g)
{
    trace tr;
    trace_make(p, &tr);
    run_forward(p, in, &tr);
    backward(p, in, &tr, dy, dh_T, dc_T, g, NULL);
    trace_free(&tr);
}

void ref_rnn_magnitude(const ref_rnn *p, const ref_rnn_in *in, const double *dy, const double *dh_T,
                       const double *dc_T, double *my, double *mc_T, const ref_rnn_grad *g)
{
    int n = p->n, h = p->h, gates = ref_rnn_gates(p->cell);
    size_t nh = (size_t)n * h;
    trace tr;
    trace_make(p, &tr);
    run_forward(p, in, &tr);
    for (int b = 0; b < n; b++)
        for (int s = 0; s < p->t; s++)
            for (int j = 0; j < h; j++) {
                const double *am = tr.am + (s * (size_t)n + b) * gates * h;
                double m = 0;
                for (int q = 0; q < gates; q++)
                    m = fmax(m, am[q * h + j]);
                my[((size_t)b * p->t + s) * h + j] = m;
            }
    if (mc_T)
        memcpy(mc_T, tr.cm + (size_t)p->t * nh, nh * sizeof(double));
    ref_rnn_grad none = { NULL, NULL, NULL, NULL, NULL, NULL, NULL };
    backward(p, in, &tr, dy, dh_T, dc_T, &none, g);
    trace_free(&tr);
}
