"""The losses under KERAS_BACKEND=jax (in a subprocess): values vs NumPy, gmi's custom gradient vs jax autodiff."""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import jax, jax.numpy as jnp
    import keras
    assert keras.backend.backend() == "jax"
    from tfreg.registry import REGISTRY
    from tfreg.losses.mutual_information import global_mutual_information

    rng = np.random.default_rng(0)
    t = rng.random((2, 9, 10, 8)).astype(np.float32)
    # strictly inside (0, 1): jnp.clip splits the gradient 50/50 at the bounds, while tfreg passes it
    # whole there (TensorFlow's clip_by_value convention), so bound voxels are not comparable
    p = (0.7 * t + 0.25 * rng.random(t.shape) + 0.01).astype(np.float32)
    f64 = lambda x: x.reshape(2, -1).astype(np.float64)
    T, P = f64(t), f64(p)

    def check(name, expected, **kw):
        out = np.asarray(REGISTRY.build_loss({"name": name, **kw}, {"reduction": None})(t, p))
        np.testing.assert_allclose(out, expected, rtol=1e-5, err_msg=name)

    check("ssd", ((T - P) ** 2).mean(1))
    check("dice", -(2 * (T * P).sum(1) + 1e-5) / ((T + P).sum(1) + 1e-5))
    check("jaccard", -((T * P).sum(1) + 1e-5) / ((T + P - T * P).sum(1) + 1e-5))
    check("cross-entropy", -(T * np.log(P + 1e-5)).mean(1))
    cov = ((T - T.mean(1, keepdims=True)) * (P - P.mean(1, keepdims=True))).mean(1)
    check("gncc", -(cov**2) / (T.var(1) * P.var(1) + 1e-5))
    check("gncc", -(cov**2 + 1e-5) / (T.var(1) * P.var(1) + 1e-5), formula="deepreg")
    # lncc with a 1-voxel window: cross = tv = pv = 0 everywhere, so the score is nr / dr exactly:
    # 0 by default (bounded), 1 with DeepReg's formula
    check("lncc", np.zeros(2), kernel_size=1)
    check("lncc", -np.ones(2), kernel_size=1, formula="deepreg")
    ddf = rng.normal(size=(2, 7, 8, 9, 3)).astype(np.float32)
    d = lambda f, a: (np.take(f, range(2, f.shape[a + 1]), a + 1) - np.take(f, range(0, f.shape[a + 1] - 2), a + 1)) / 2
    crop = lambda f, a: f[tuple([slice(None)] + [slice(None) if b == a else slice(1, -1) for b in range(3)])]
    grads = [crop(d(ddf.astype(np.float64), a), a) for a in range(3)]
    np.testing.assert_allclose(np.asarray(REGISTRY.build_loss({"name": "gradient"})(ddf)),
                               sum(g**2 for g in grads).reshape(2, -1).mean(1), rtol=1e-5)
    assert REGISTRY.build_loss({"name": "bending"})(ddf).shape == (2,)

    def dense(a, b, nb=23):
        a = jnp.clip(a.reshape(a.shape[0], -1, 1), 0, 1)
        b = jnp.clip(b.reshape(b.shape[0], -1, 1), 0, 1)
        c = jnp.linspace(0, 1, nb)
        s = 0.5 / (nb - 1)
        wa = jnp.exp(-(a - c) ** 2 / (2 * s * s)); wa = wa / wa.sum(-1, keepdims=True)
        wb = jnp.exp(-(b - c) ** 2 / (2 * s * s)); wb = wb / wb.sum(-1, keepdims=True)
        n = a.shape[1]
        pab = jnp.einsum("bna,bnc->bac", wa, wb) / n
        q = wa.mean(1)[:, :, None] * wb.mean(1)[:, None, :]
        return jnp.sum(pab * jnp.log((pab + 1e-5) / (q + 1e-5) + 1e-5), axis=(1, 2))

    w = jnp.array([1.0, -0.5])
    mine = jax.jit(jax.value_and_grad(lambda b: jnp.sum(w * global_mutual_information(t, b, chunk_size=100))))
    ref = jax.value_and_grad(lambda b: jnp.sum(w * dense(jnp.asarray(t), b)))
    v1, g1 = mine(jnp.asarray(p))
    v2, g2 = ref(jnp.asarray(p))
    np.testing.assert_allclose(v1, v2, rtol=1e-4)
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-4 * float(jnp.abs(g2).max()))
    print("OK")
    """
)


@pytest.mark.jax
def test_losses_under_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout[-2000:] + res.stderr[-4000:]
