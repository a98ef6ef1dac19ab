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
inline = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")
"""A helper of the kernels, inlined into them (so that LLVM sees, and vectorises, the whole loop)."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_EPISODE_STRIDE = np.uint64(1 << 32)  # adsim.rng.MAX_EPISODE_STEPS
_POS_GOLDEN = np.uint64(((1 << 12) * 0x9E3779B97F4A7C15) % (1 << 64))  # adsim.rng._POS_GOLDEN
_TO_UNIT = 1.0 / float(1 << 53)
MAX_PAIRWISE = 128
"""Longest row :func:`pairwise_sum` sums as NumPy does (NumPy's ``PW_BLOCKSIZE``; longer rows recurse)."""


@inline
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
def orders(x, y, order):
    """(M,) last-axis sums of ``x`` (M, d) and (M, K) einsum dot products of each row of ``x`` with
    the K columns of ``y`` (M, d, K), as the kernels compute them (``order`` = ``lane_order(d)``):
    what :func:`adsim.compiled.orders_match` compares with NumPy's before the kernels are used."""
    m, d = x.shape
    sums = np.empty(m)
    dots = np.empty((m, y.shape[2]))
    for i in range(m):
        sums[i] = pairwise_sum(x[i], 0, d)
        _affinities(x[i], y[i], order, dots[i])
    return sums, dots


@inline
def _mix64(z):
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


@inline
def _categorical(u, cdf):
    """``searchsorted(cdf, u, side="right")`` clipped to ``len(cdf) - 1`` (as ``adsim.rng.categorical``):
    the count of the (sorted) CDF entries at or below ``u``, without branches."""
    n = cdf.shape[0]
    i = 0
    for j in range(n):
        i += cdf[j] <= u
    return min(i, n - 1)


def lane_order(d):
    """The order in which einsum's dot product (the module docstring) adds the products to its
    lanes, as the index of each lane-0 product (its lane-1 product is the next, or 0 · 0 past the
    end): per block of 8, 6, 4, 2, 0; then the rest pairwise, in increasing order."""
    order = [b + i for b in range(0, d - d % 8, 8) for i in (6, 4, 2, 0)]
    return np.array(order + list(range(d - d % 8, d, 2)), dtype=np.int64)


@inline
def _dots8(th, phi_c, k0, order, out):
    """einsum's dot product (the module docstring) of θ with candidates k0 .. k0+7 (``phi_c`` (d,
    K)) into ``out[k0 : k0+8]``, the eight dot products advancing together (one vector operation
    per product)."""
    d = th.shape[0]
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = 0.0
    for i in order:
        x = th[i]
        a0 = x * phi_c[i, k0] + a0
        a1 = x * phi_c[i, k0 + 1] + a1
        a2 = x * phi_c[i, k0 + 2] + a2
        a3 = x * phi_c[i, k0 + 3] + a3
        a4 = x * phi_c[i, k0 + 4] + a4
        a5 = x * phi_c[i, k0 + 5] + a5
        a6 = x * phi_c[i, k0 + 6] + a6
        a7 = x * phi_c[i, k0 + 7] + a7
        if i + 1 < d:
            y = th[i + 1]
            b0 = y * phi_c[i + 1, k0] + b0
            b1 = y * phi_c[i + 1, k0 + 1] + b1
            b2 = y * phi_c[i + 1, k0 + 2] + b2
            b3 = y * phi_c[i + 1, k0 + 3] + b3
            b4 = y * phi_c[i + 1, k0 + 4] + b4
            b5 = y * phi_c[i + 1, k0 + 5] + b5
            b6 = y * phi_c[i + 1, k0 + 6] + b6
            b7 = y * phi_c[i + 1, k0 + 7] + b7
        else:
            b0, b1, b2, b3 = 0.0 * 0.0 + b0, 0.0 * 0.0 + b1, 0.0 * 0.0 + b2, 0.0 * 0.0 + b3
            b4, b5, b6, b7 = 0.0 * 0.0 + b4, 0.0 * 0.0 + b5, 0.0 * 0.0 + b6, 0.0 * 0.0 + b7
    out[k0], out[k0 + 1] = 0.0 + (a0 + b0), 0.0 + (a1 + b1)  # lane 0 + lane 1, added to the output's 0
    out[k0 + 2], out[k0 + 3] = 0.0 + (a2 + b2), 0.0 + (a3 + b3)
    out[k0 + 4], out[k0 + 5] = 0.0 + (a4 + b4), 0.0 + (a5 + b5)
    out[k0 + 6], out[k0 + 7] = 0.0 + (a6 + b6), 0.0 + (a7 + b7)


@inline
def _dot1(th, phi_c, k, order):
    """einsum's dot product (the module docstring) of θ with candidate k alone (``phi_c`` (d, K))."""
    d = th.shape[0]
    a = 0.0
    b = 0.0
    for i in order:
        a = th[i] * phi_c[i, k] + a
        b = (th[i + 1] * phi_c[i + 1, k] if i + 1 < d else 0.0 * 0.0) + b
    return 0.0 + (a + b)


@inline
def _affinities(th, phi_c, order, out):
    """``out[k]`` = einsum's dot product of θ (d,) with candidate k's φ (``phi_c`` (d, K)), for all k:
    eight candidates at a time, then one by one."""
    K = phi_c.shape[1]
    k = 0
    while k + 8 <= K:
        _dots8(th, phi_c, k, order, out)
        k += 8
    while k < K:
        out[k] = _dot1(th, phi_c, k, order)
        k += 1


@inline
def _uniform(base, stream):
    """Uniform ``stream`` (0-based) at a position whose base counter is ``base`` (``adsim.rng.uniforms``)."""
    return np.float64(np.int64(_mix64(np.uint64(stream + 1) * _GOLDEN + base) >> _S11)) * _TO_UNIT


@jit
def pool_requests(keys, episode, t0, T, n_users, weekend_p, hour_cdf, location_cdf, weather_cdf, device_cdf,
                  position_cdf, n_weekend, n_location, n_weather, n_device, n_position, user_theta, multiplier,
                  features, campaign, phi_dk, static, discount, product, product_topic, product_tier,
                  product_discount, user_bias, device_bias, price_sens, beta, item_beta, gain_scale, d_scale,
                  neg_beta0, order, user, device, position, context, u_click, u_conv, logits, neg_z, theta, rows):
    """A pool-mode block of requests: every array ``RequestGenerator.requests`` computes, in its order.

    Per request (slot n, step t0 + t): the nine uniforms of the slot's stream (user, hour, weekend,
    location, weather, device, ad slot, click, conversion), the arrival and ad slot, the interests
    in context θ (user θ × context multiplier / their sum), the item interest θ·topic, the K
    affinities θ·φ (einsum's order, ``order`` = ``lane_order(d)``; ``phi_dk`` (n_campaigns, d, K): the
    pools' φ, candidates last) and click logits ((β·affinity + user term) + static) + gain (into
    ``logits`` (N, T, K)), the context features (``context`` (N, T, C)), and the arguments of the two
    σ's NumPy exponentiates next: ``neg_z[..., k] = −β0 − logit_k`` (k < K) and ``neg_z[..., K]`` =
    −(the conversion logit). ``theta`` (N·T, d) and ``rows`` (2, N·T) int64 are scratch. Every
    array a request writes is request-major: K-major rows, N·T apart, would all fall into one
    cache set.

    The table rows a request reads (its user's θ, its context's multiplier and features) are
    gathered for all requests first, each in a loop of its own as ``np.take`` does, so that the
    processor fetches many rows at once instead of waiting for each request's.
    """
    N = keys.shape[0]
    K = phi_dk.shape[2]
    d = user_theta.shape[1]
    C = features.shape[1]
    mult_row, feature_row = rows[0], rows[1]
    for n in range(N):  # the uniforms, arrivals and ad slots
        for t in range(T):
            r = n * T + t
            pos = np.uint64(episode) * _EPISODE_STRIDE + np.uint64(t0 + t)
            base = pos * _POS_GOLDEN + keys[n]
            u_click[n, t] = _uniform(base, 7)
            u_conv[n, t] = _uniform(base, 8)
            user[n, t] = min(np.int64(_uniform(base, 0) * n_users), n_users - 1)
            hour = _categorical(_uniform(base, 1), hour_cdf)
            weekend = 1 if _uniform(base, 2) < weekend_p else 0
            loc = _categorical(_uniform(base, 3), location_cdf)
            wea = _categorical(_uniform(base, 4), weather_cdf)
            dev = _categorical(_uniform(base, 5), device_cdf)
            slot = _categorical(_uniform(base, 6), position_cdf)
            device[n, t], position[n, t] = dev, slot
            m = ((hour * n_weekend + weekend) * n_location + loc) * n_weather + wea
            mult_row[r] = m
            feature_row[r] = (m * n_device + dev) * n_position + slot
    for n in range(N):  # the gathers
        for t in range(T):
            f = feature_row[n * T + t]
            for j in range(C):
                context[n, t, j] = features[f, j]
    for n in range(N):
        for t in range(T):
            r = n * T + t
            usr, m = user[n, t], mult_row[r]
            for j in range(d):
                theta[r, j] = user_theta[usr, j] * multiplier[m, j]
    prod = np.empty(d)
    aff = np.empty(K)
    for n in range(N):
        c = campaign[n]
        p = product[c]
        tier = product_tier[p] / 2.0
        pdisc = product_discount[p]
        phi_c = phi_dk[c]
        for t in range(T):
            th = theta[n * T + t]
            usr, dev = user[n, t], device[n, t]
            s = pairwise_sum(th, 0, d)
            for j in range(d):
                th[j] = th[j] / s
            for j in range(d):
                prod[j] = th[j] * product_topic[p, j]
            item = pairwise_sum(prod, 0, d)
            _affinities(th, phi_c, order, aff)
            ps = price_sens[usr]
            user_term = (user_bias[usr] + device_bias[dev]) + item_beta * item
            gain = gain_scale * ps
            for k in range(K):
                z = ((beta * aff[k] + user_term) + static[c, k]) + gain * (1.0 if discount[c, k] else 0.0)
                logits[n, t, k] = z
                neg_z[n, t, k] = neg_beta0 - z
            neg_z[n, t, K] = -(((-2.0 + 0.6 * (item * d_scale)) - 1.5 * ps * tier) + 3.0 * ps * pdisc)


@jit
def pool_truth(e, p_conv, position, slot_factor, reward, value, probs_t, expected_t, optimal_t, best_t):
    """The truth of a pool-mode block from ``e`` = exp(−β0 − logits) (N, T, K + 1; the last column
    unread) and the conversion
    probabilities ``p_conv`` (N, T), as ``SelectionCore._block_truth_of`` computes it: click
    probabilities 1 / (1 + e) × the ad slot's factor, expected rewards (``reward`` 0: clicks, 1:
    conversions, 2: revenue, × ``value`` (N,)), their maximum and the first candidate reaching it,
    step-major (T, N, K) and (T, N). With ``reward`` 0, ``expected_t`` is not written (it is ``probs_t``)."""
    N, T, K = e.shape[0], e.shape[1], e.shape[2] - 1
    for n in range(N):
        for t in range(T):
            pc = p_conv[n, t]
            f = slot_factor[position[n, t]]
            best = 0.0
            arg = 0
            for k in range(K):
                pk = (1.0 / (e[n, t, k] + 1.0)) * f
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
