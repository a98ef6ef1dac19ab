"""numba kernels of :mod:`adsim.compiled` (imported only when numba is present; see there).

Each kernel does the floating-point operations of the NumPy code it replaces, in the same order,
without fast-math (no reassociation, no fused multiply-adds). Two NumPy orders are reproduced:

* a last-axis ``sum`` of a contiguous row of n ≤ 128 float64 (``pairwise_sum``: eight running
  sums over the blocks of 8, combined as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), the
  remainder added one by one, the total added to the output's 0);
* ``einsum``'s contiguous dot product (``sum_of_products_contig_contig_outstride0_two``, two SSE
  lanes): per block of 8 the products 6|7, 4|5, 2|3, 0|1 are added to the lanes (even indices to
  lane 0, odd to lane 1), the remainder pairwise in increasing order, then lane 0 + lane 1.

``exp`` is not here: NumPy's SIMD ``exp`` and the libm ``exp`` numba calls differ in the last bit
for some inputs, so the kernels stop before it and NumPy computes it.
"""

from __future__ import annotations

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
"""No fast-math: the operations of the NumPy code, in its order, rounded as its."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_EPISODE_STRIDE = np.uint64(1 << 32)  # adsim.rng.MAX_EPISODE_STEPS
_POS_GOLDEN = np.uint64(((1 << 12) * 0x9E3779B97F4A7C15) % (1 << 64))  # adsim.rng._POS_GOLDEN
_TO_UNIT = 1.0 / float(1 << 53)
MAX_PAIRWISE = 128
"""Longest row :func:`pairwise_sum` sums as NumPy does (NumPy's ``PW_BLOCKSIZE``; longer rows recurse)."""


@jit
def pairwise_sum(a, lo, n):
    """NumPy's sum of ``a[lo : lo + n]`` (n ≤ 128) along a contiguous last axis, 0 + the pairwise sum."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return 0.0 + res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    end = n - n % 8
    while i < end:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return 0.0 + res


@jit
def einsum_dot(x, y):
    """``einsum``'s dot product of two contiguous float64 vectors of one length (two lanes)."""
    n = x.shape[0]
    l0 = 0.0
    l1 = 0.0
    i = 0
    while i + 8 <= n:
        l0 = x[i + 6] * y[i + 6] + l0
        l1 = x[i + 7] * y[i + 7] + l1
        l0 = x[i + 4] * y[i + 4] + l0
        l1 = x[i + 5] * y[i + 5] + l1
        l0 = x[i + 2] * y[i + 2] + l0
        l1 = x[i + 3] * y[i + 3] + l1
        l0 = x[i] * y[i] + l0
        l1 = x[i + 1] * y[i + 1] + l1
        i += 8
    while i < n:
        l0 = x[i] * y[i] + l0
        l1 = (x[i + 1] * y[i + 1] if i + 1 < n else 0.0 * 0.0) + l1
        i += 2
    return 0.0 + (l0 + l1)


@jit
def orders(x, y):
    """(M,) last-axis sums of ``x`` (M, n) and (M,) einsum dot products of the rows of ``x`` and
    ``y`` (M, n): what :func:`adsim.compiled.kernels` compares with NumPy's before using a kernel."""
    m, n = x.shape
    sums = np.empty(m)
    dots = np.empty(m)
    for i in range(m):
        sums[i] = pairwise_sum(x[i], 0, n)
        dots[i] = einsum_dot(x[i], y[i])
    return sums, dots


@jit
def _mix64(z):
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


@jit
def _categorical(u, cdf):
    """``searchsorted(cdf, u, side="right")`` clipped to ``len(cdf) - 1`` (as ``adsim.rng.categorical``)."""
    n = cdf.shape[0]
    i = 0
    while i < n and cdf[i] <= u:
        i += 1
    return min(i, n - 1)


@jit
def pool_requests(keys, episode, t0, T, n_users, weekend_p, hour_cdf, location_cdf, weather_cdf, device_cdf,
                  position_cdf, n_weekend, n_location, n_weather, n_device, n_position, user_theta, multiplier,
                  features, campaign, phi, static, discount, product, product_topic, product_tier,
                  product_discount, user_bias, device_bias, price_sens, beta, item_beta, gain_scale, d_scale,
                  neg_beta0, user, device, position, context, u_click, u_conv, logits, neg_z):
    """A pool-mode block of requests: every array ``RequestGenerator.requests`` computes, in its order.

    Per request (slot n, step t0 + t): the nine uniforms of the slot's stream (user, hour, weekend,
    location, weather, device, ad slot, click, conversion), the arrival and ad slot, the interests
    in context θ (user θ × context multiplier / their sum), the item interest θ·topic, the K
    affinities θ·φ (einsum's order) and click logits ((β·affinity + user term) + static) + gain
    (into ``logits`` (K, N, T)), the context features (``context`` (N, T, C)), and the arguments
    of the two σ's NumPy exponentiates next: ``neg_z[k] = −β0 − logit_k`` (k < K) and ``neg_z[K]``
    = −(the conversion logit).
    """
    N = keys.shape[0]
    K = phi.shape[1]
    d = user_theta.shape[1]
    th = np.empty(d)
    prod = np.empty(d)
    for n in range(N):
        c = campaign[n]
        p = product[c]
        tier = product_tier[p] / 2.0
        pdisc = product_discount[p]
        topic = product_topic[p]
        for t in range(T):
            pos = np.uint64(episode) * _EPISODE_STRIDE + np.uint64(t0 + t)
            base = pos * _POS_GOLDEN + keys[n]
            u0 = np.float64(np.int64(_mix64(np.uint64(1) * _GOLDEN + base) >> _S11)) * _TO_UNIT
            u1 = np.float64(np.int64(_mix64(np.uint64(2) * _GOLDEN + base) >> _S11)) * _TO_UNIT
            u2 = np.float64(np.int64(_mix64(np.uint64(3) * _GOLDEN + base) >> _S11)) * _TO_UNIT
            u3 = np.float64(np.int64(_mix64(np.uint64(4) * _GOLDEN + base) >> _S11)) * _TO_UNIT
            u4 = np.float64(np.int64(_mix64(np.uint64(5) * _GOLDEN + base) >> _S11)) * _TO_UNIT
            u5 = np.float64(np.int64(_mix64(np.uint64(6) * _GOLDEN + base) >> _S11)) * _TO_UNIT
            u6 = np.float64(np.int64(_mix64(np.uint64(7) * _GOLDEN + base) >> _S11)) * _TO_UNIT
            u_click[n, t] = np.float64(np.int64(_mix64(np.uint64(8) * _GOLDEN + base) >> _S11)) * _TO_UNIT
            u_conv[n, t] = np.float64(np.int64(_mix64(np.uint64(9) * _GOLDEN + base) >> _S11)) * _TO_UNIT
            usr = min(np.int64(u0 * n_users), n_users - 1)
            hour = _categorical(u1, hour_cdf)
            weekend = 1 if u2 < weekend_p else 0
            loc = _categorical(u3, location_cdf)
            wea = _categorical(u4, weather_cdf)
            dev = _categorical(u5, device_cdf)
            slot = _categorical(u6, position_cdf)
            user[n, t], device[n, t], position[n, t] = usr, dev, slot
            m = ((hour * n_weekend + weekend) * n_location + loc) * n_weather + wea
            context[n, t] = features[(m * n_device + dev) * n_position + slot]
            for j in range(d):
                th[j] = user_theta[usr, j] * multiplier[m, j]
            s = pairwise_sum(th, 0, d)
            for j in range(d):
                th[j] = th[j] / s
                prod[j] = th[j] * topic[j]
            item = pairwise_sum(prod, 0, d)
            ps = price_sens[usr]
            user_term = (user_bias[usr] + device_bias[dev]) + item_beta * item
            gain = gain_scale * ps
            for k in range(K):
                z = ((beta * einsum_dot(th, phi[c, k]) + user_term) + static[c, k]) + gain * (1.0 if discount[c, k] else 0.0)
                logits[k, n, t] = z
                neg_z[k, n, t] = neg_beta0 - z
            neg_z[K, n, t] = -(((-2.0 + 0.6 * (item * d_scale)) - 1.5 * ps * tier) + 3.0 * ps * pdisc)


@jit
def pool_truth(e, p_conv, position, slot_factor, reward, value, probs_t, expected_t, optimal_t, best_t):
    """The truth of a pool-mode block from ``e`` = exp(−β0 − logits) (K, N, T) and the conversion
    probabilities ``p_conv`` (N, T), as ``SelectionCore._block_truth_of`` computes it: click
    probabilities 1 / (1 + e) × the ad slot's factor, expected rewards (``reward`` 0: clicks, 1:
    conversions, 2: revenue, × ``value`` (N,)), their maximum and the first candidate reaching it,
    step-major (T, N, K) and (T, N). With ``reward`` 0, ``expected_t`` is not written (it is ``probs_t``)."""
    K, N, T = e.shape
    for n in range(N):
        for t in range(T):
            pc = p_conv[n, t]
            f = slot_factor[position[n, t]]
            best = 0.0
            arg = 0
            for k in range(K):
                pk = (1.0 / (e[k, n, t] + 1.0)) * f
                probs_t[t, n, k] = pk
                if reward == 0:
                    x = pk
                else:
                    x = pk * pc
                    if reward == 2:
                        x = x * value[n]
                    expected_t[t, n, k] = x
                if k == 0 or x > best:
                    best = x
                    arg = k
            optimal_t[t, n] = arg
            best_t[t, n] = best
