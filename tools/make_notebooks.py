"""Writes notebooks/*.ipynb from the cell sources below, executes them and stores their outputs.

Edit the cells here, then run `python tools/make_notebooks.py` (all notebooks, about a minute) or
`python tools/make_notebooks.py 01_pathological_curvature ...`. Each notebook is executed in
`notebooks/` (nbclient, the `python3` kernel) and written with its outputs, so a reader on GitHub sees
its figures; its `claims` dict (every notebook ends by building one and asserting on it) is stored in
the notebook's metadata (`gradxform.claims`), and each figure it draws is also written to
`docs/figures/notebooks/<name>-<k>.png` for the site's notebooks page. `tests/test_notebooks.py`
executes the stored notebooks again and checks that the sources are these, that the stored claims
and figures are current and that the claims hold.
"""

from __future__ import annotations

import base64
import json
import pathlib
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
HERE = ROOT / "notebooks"
FIGURES = ROOT / "docs" / "figures" / "notebooks"
CLAIMS_CELL = "import json as _json; print('CLAIMS=' + _json.dumps(claims))"

SETUP = """import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import gradxform as gx
jax.config.update("jax_platforms", "cpu")"""


def run_2d():
    return '''def run(tx, loss, start, steps):
    """Trajectory (steps+1, 2) and losses of tx on a 2-D loss, as one compiled scan."""
    def body(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        p = gx.apply_updates(p, u)
        return (p, s), p
    p0 = jnp.asarray(start, jnp.float32)
    _, path = jax.lax.scan(body, (p0, tx.init(p0)), length=steps)
    path = jnp.concatenate([p0[None], path])
    return np.asarray(path), np.asarray(jax.vmap(loss)(path))'''


NB = {}

NB["01_pathological_curvature"] = [
    (
        "md",
        """# 1. Pathological curvature: why momentum damps the zig-zag

On a ravine the gradient across the ravine ($w_1$, steep) is much larger than along it
($w_2$, shallow), so plain gradient descent bounces between the walls and crawls along the floor.
Momentum averages the gradients, so the alternating components cancel and the consistent ones add up;
RMSProp and Adam instead give each parameter its own step size. Here the ravine is
$f(x, y) = \\tfrac12(0.1\\,x^2 + 10\\,y^2)$ (condition number 100), started at $(-9, 1)$.""",
    ),
    ("code", SETUP),
    (
        "md",
        """An optimizer shows itself as the chain of its blocks, each with its equation, its hyperparameters and
the state it keeps per parameter (`gx.describe` prints the same tree as text). Momentum is one trace
and the learning rate:""",
    ),
    ("code", "gx.momentum(0.03, 0.9)"),
    ("code", run_2d()),
    (
        "code",
        """ravine = lambda p: 0.5 * (0.1 * p[0] ** 2 + 10.0 * p[1] ** 2)
start, steps = (-9.0, 1.0), 300
runs = {
    "SGD (lr 0.19)": gx.sgd(0.19),
    "Momentum (lr 0.03, beta 0.9)": gx.momentum(0.03, 0.9),
    "RMSProp (lr 0.03)": gx.rmsprop(0.03),
    "Adam (lr 0.3)": gx.adam(0.3),
}
paths = {name: run(tx, ravine, start, steps) for name, tx in runs.items()}

xs, ys = np.meshgrid(np.linspace(-10, 2, 200), np.linspace(-1.5, 1.5, 200))
fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
a.contour(xs, ys, 0.5 * (0.1 * xs**2 + 10 * ys**2), levels=20, cmap="Greys", linewidths=0.6)
for name, (path, losses) in paths.items():
    a.plot(path[:60, 0], path[:60, 1], ".-", ms=3, lw=0.8, label=name)
    b.semilogy(losses, label=name)
a.set_title("first 60 steps over the contours"); a.set_xlabel("x (along the floor)"); a.set_ylabel("y (across)")
a.legend(fontsize=7)
b.set_title("loss per step"); b.set_xlabel("step"); b.set_ylabel("f (log scale)"); b.legend(fontsize=7)
plt.show()""",
    ),
    (
        "md",
        """SGD's learning rate is near its stability limit $2/L = 0.2$ across the ravine, so its step across
the ravine is multiplied by $1 - 0.19 \\cdot 10 = -0.9$ each step: a zig-zag that flips sign every step,
while along the floor it gains only a factor $1 - 0.019$ per step. Momentum (heavy ball, $\\beta = 0.9$)
adds up the consistent component along the floor and cancels the alternating one across it. We count the zig-zags
(sign changes of the step across the ravine) and the steps to reach $f \\le 10^{-3}$.""",
    ),
    (
        "code",
        """def flips(path, n=60):
    dy = np.diff(path[: n + 1, 1])
    return int(np.sum(np.sign(dy[1:]) != np.sign(dy[:-1])))

def steps_to(losses, target=1e-3):
    hit = np.flatnonzero(losses <= target)
    return int(hit[0]) if hit.size else None

for name, (path, losses) in paths.items():
    print(f"{name:32s} zig-zags in 60 steps: {flips(path):3d}   steps to f<=1e-3: {steps_to(losses)}")

# The averaging, seen directly: the EMA (beta 0.9) of SGD's own gradients along its path.
sgd_path = paths["SGD (lr 0.19)"][0]
grads = jax.vmap(jax.grad(ravine))(jnp.asarray(sgd_path[:40]))
tx = gx.ema(0.9)
_, avg = jax.lax.scan(lambda s, g: tuple(reversed(tx.update(g, s))), tx.init(grads[0]), grads)
avg = np.asarray(avg)
shrink = np.abs(avg[-1]) / np.abs(np.asarray(grads[-1]))
print("|EMA of gradients| / |gradient| at step 40 (x: along the floor, y: across):", shrink)""",
    ),
    (
        "md",
        """RMSProp divides each coordinate by the root of its own running mean square, so on the first step
both coordinates move by the same amount, $\\eta/\\sqrt{1-\\rho}$, whatever their gradients: big steps along the
floor, small ones across it.""",
    ),
    (
        "code",
        """tx = gx.rmsprop(0.03, decay=0.9)
g0 = jax.grad(ravine)(jnp.asarray(start))
u, _ = tx.update(g0, tx.init(g0))
first_step = np.abs(np.asarray(u))
print("gradient at the start:", np.asarray(g0), " RMSProp's first step:", first_step,
      " expected:", 0.03 / np.sqrt(0.1))""",
    ),
    (
        "code",
        """claims = dict(
    flips_sgd=flips(paths["SGD (lr 0.19)"][0]),
    flips_momentum=flips(paths["Momentum (lr 0.03, beta 0.9)"][0]),
    steps_sgd=steps_to(paths["SGD (lr 0.19)"][1]),
    steps_momentum=steps_to(paths["Momentum (lr 0.03, beta 0.9)"][1]),
    steps_adam=steps_to(paths["Adam (lr 0.3)"][1]),
    ema_shrink_x=float(shrink[0]),
    ema_shrink_y=float(shrink[1]),
    rmsprop_first_step=first_step.tolist(),
)
print(claims)
assert claims["flips_sgd"] >= 50 and claims["flips_momentum"] <= claims["flips_sgd"] // 5
assert claims["steps_momentum"] < claims["steps_sgd"] / 2
assert claims["ema_shrink_y"] < 0.1 < 0.5 < claims["ema_shrink_x"]  # across cancels, along survives
np.testing.assert_allclose(claims["rmsprop_first_step"], [0.03 / np.sqrt(0.1)] * 2, rtol=1e-5)""",
    ),
]

NB["02_ewa_bias_correction"] = [
    (
        "md",
        """# 2. Exponentially weighted averages and bias correction

An exponentially weighted average $v_t = b\\,v_{t-1} + (1-b)\\,\\theta_t$ with $v_0 = 0$ starts far below the data, because at first
only the small weight $1-b$ has been given out. Dividing by $1 - b^t$ removes that bias:
$\\hat v_t = v_t / (1 - b^t)$. In gradxform these are the blocks `ema(b)` and `bias_correction(b)`.""",
    ),
    ("code", SETUP),
    (
        "code",
        """rng = np.random.default_rng(0)
days = np.arange(1, 201)
theta = (15 + 8 * np.sin(2 * np.pi * days / 365) + rng.normal(0, 2, days.size)).astype(np.float32)  # "temperatures"
b = 0.98

def averaged(tx):
    _, out = jax.lax.scan(lambda s, x: tuple(reversed(tx.update(x, s))), tx.init(jnp.zeros(())), jnp.asarray(theta))
    return np.asarray(out)

raw = averaged(gx.ema(b))
corrected = averaged(gx.chain(gx.ema(b), gx.bias_correction(b)))

# The same recursion written out with numpy, as it is usually stated.
v, ref_raw, ref_cor = 0.0, [], []
for t, x in enumerate(theta.astype(np.float64), start=1):
    v = b * v + (1 - b) * x
    ref_raw.append(v); ref_cor.append(v / (1 - b**t))
np.testing.assert_allclose(raw, ref_raw, rtol=1e-5)
np.testing.assert_allclose(corrected, ref_cor, rtol=1e-5)

plt.figure(figsize=(8, 4))
plt.plot(days, theta, ".", ms=3, color="0.6", label="data")
plt.plot(days, raw, label=f"EMA, b={b} (uncorrected)")
plt.plot(days, corrected, label="bias-corrected")
plt.legend(); plt.xlabel("t"); plt.show()""",
    ),
    (
        "md",
        """Against the local level of the data (a centred 15-point mean, the "real average"), the
uncorrected average is badly off for the first few dozen steps, the corrected one is not; as $t$ grows
$1 - b^t \\to 1$ and the two curves meet: their relative gap is exactly $b^t$ ($0.98^{200} = 0.018$).""",
    ),
    (
        "code",
        """level = np.convolve(theta, np.ones(15) / 15, mode="same")
err_raw = np.abs(raw - level)[7:30].mean()
err_cor = np.abs(corrected - level)[7:30].mean()
late_gap = float(np.abs(raw[-1] - corrected[-1]) / np.abs(corrected[-1]))  # = b^200
claims = dict(
    first_raw=float(raw[0]), first_corrected=float(corrected[0]), theta_1=float(theta[0]),
    err_raw_early=float(err_raw), err_corrected_early=float(err_cor), late_gap=float(late_gap),
)
print(claims)
np.testing.assert_allclose(claims["first_raw"], (1 - b) * theta[0], rtol=1e-6)  # v_1 = (1-b) theta_1
np.testing.assert_allclose(claims["first_corrected"], theta[0], rtol=1e-6)  # v_1 / (1-b) = theta_1
assert claims["err_corrected_early"] < claims["err_raw_early"] / 3
np.testing.assert_allclose(claims["late_gap"], b**200, rtol=1e-3)  # the curves meet as 1 - b^t -> 1""",
    ),
]

NB["03_adagrad_vanishing_lr"] = [
    (
        "md",
        """# 3. Adagrad's vanishing learning rate, and how RMSProp and Adadelta fix it

Adagrad (Duchi et al. 2011) divides the learning rate by the root of the sum of *all* past squared gradients,
$\\eta'_t = \\eta / \\sqrt{\\alpha_t + \\epsilon}$, $\\alpha_t = \\sum_{i \\le t} g_i^2$. The sum only grows, so
$\\eta'_t$ shrinks towards zero and $w_{new} \\approx w_{old}$. RMSProp replaces the sum by a moving average
(which forgets), Adadelta also replaces $\\eta$ by the RMS of recent updates. We feed each optimizer the
same constant gradient $g = 1$ and read its effective learning rate $\\eta'_t = -\\Delta\\theta_t / g_t$.""",
    ),
    ("code", SETUP),
    (
        "code",
        """steps, lr = 1000, 0.1
g = jnp.ones(())

def effective_lr(tx, steps=steps):
    def body(s, _):
        u, s = tx.update(g, s)
        return s, -u / g
    _, eff = jax.lax.scan(body, tx.init(g), length=steps)
    return np.asarray(eff)

eff = {
    "Adagrad": effective_lr(gx.adagrad(lr)),  # initial_accumulator_value=0.1, eps=1e-7 (optax's defaults)
    "RMSProp": effective_lr(gx.rmsprop(lr, decay=0.9)),
    "Adadelta": effective_lr(gx.adadelta(1.0, rho=0.9, eps=1e-6)),
}
t = np.arange(1, steps + 1)
plt.figure(figsize=(7, 4))
for name, e in eff.items():
    plt.loglog(t, e, label=name)
plt.loglog(t, lr / np.sqrt(0.1 + t), "k:", label=r"$\\eta/\\sqrt{0.1 + t}$")
plt.xlabel("step t"); plt.ylabel("effective learning rate"); plt.legend(); plt.show()
for name, e in eff.items():
    print(f"{name:9s} t=1: {e[0]:.4g}  t=10: {e[9]:.4g}  t=100: {e[99]:.4g}  t=1000: {e[-1]:.4g}")""",
    ),
    (
        "md",
        """With $g_t = 1$ the formulas give: Adagrad $\\eta/\\sqrt{0.1 + t + 10^{-7}}$, a $1/\\sqrt t$ decay to zero;
RMSProp $\\eta/(\\sqrt{1-\\rho^t} + \\epsilon) \\to \\eta$; Adadelta's ratio
$\\sqrt{w_{t-1} + \\epsilon}/\\sqrt{v_t + \\epsilon}$ starts at $\\sqrt{\\epsilon}$ and *grows* as the update RMS $w$
builds up. The effect on a problem: minimise $f(w) = \\tfrac12 (w - 50)^2$ from $w = 0$; Adagrad, with the
steepest early gradients in its sum, is still far away after 1000 steps, while RMSProp arrives. Adadelta's
step never vanishes, but it starts at $\\sqrt{\\epsilon} \\approx 10^{-3}$ and grows slowly: on this problem it
is the slowest starter of the three (its numbers are printed; that slow start is a known trait of Adadelta).""",
    ),
    (
        "code",
        """def final_w(tx, steps=1000):
    loss = lambda w: 0.5 * (w - 50.0) ** 2
    def body(c, _):
        w, s = c
        u, s = tx.update(jax.grad(loss)(w), s, w)
        return (gx.apply_updates(w, u), s), None
    (w, _), _ = jax.lax.scan(body, (jnp.zeros(()), tx.init(jnp.zeros(()))), length=steps)
    return float(w)

reach = {"Adagrad": final_w(gx.adagrad(0.5)), "RMSProp": final_w(gx.rmsprop(0.5)), "Adadelta": final_w(gx.adadelta(1.0))}
print("w after 1000 steps (target 50):", reach)""",
    ),
    (
        "code",
        """claims = dict(
    adagrad=[float(eff["Adagrad"][i]) for i in (0, 9, 99, 999)],
    rmsprop=[float(eff["RMSProp"][i]) for i in (0, 9, 99, 999)],
    adadelta=[float(eff["Adadelta"][i]) for i in (0, 9, 99, 999)],
    reach=reach,
)
print(claims)
ts = np.array([1, 10, 100, 1000])
np.testing.assert_allclose(claims["adagrad"], lr / np.sqrt(0.1 + ts + 1e-7), rtol=1e-5)
np.testing.assert_allclose(claims["rmsprop"], lr / (np.sqrt(1 - 0.9**ts) + 1e-8), rtol=1e-5)
np.testing.assert_allclose(claims["adadelta"][0], np.sqrt(1e-6) / np.sqrt(0.1 + 1e-6), rtol=1e-4)
assert np.all(np.diff(eff["Adadelta"]) > 0) and claims["adadelta"][3] > 3 * claims["adadelta"][0]  # it grows
assert claims["adagrad"][3] < claims["adagrad"][0] / 30  # Adagrad's vanishes like 1/sqrt(t)
assert reach["Adagrad"] < 40 and abs(reach["RMSProp"] - 50) < 1  # Adagrad stalls, RMSProp arrives""",
    ),
]

NB["04_digits_experiment"] = [
    (
        "md",
        """# 4. A classic course experiment: SGD, momentum and Adam on handwritten digits, then learning-rate decay

Andrew Ng's deep-learning course trains one network with SGD, SGD with momentum and Adam: momentum helps little when the
learning rate is low, Adam converges fastest; then, with learning-rate decay
$\\alpha = \\alpha_0 / (1 + \\text{decay_rate} \\cdot \\text{epoch})$ on top of SGD with momentum, it catches up.
Here: a 64-32-10 tanh MLP on scikit-learn's 8x8 digits (1,437 training images, 360 held out), minibatches of
64, 30 epochs. Momentum is the course's moving-average form $v = \\beta v + (1-\\beta) g$: `chain(ema(0.9), scale_by_learning_rate(lr))`.""",
    ),
    ("code", SETUP),
    (
        "code",
        """from gradxform.race.problems import load_digits_split, init_mlp, cross_entropy, accuracy

x_tr, x_te, y_tr, y_te = (jnp.asarray(a) for a in load_digits_split(0))
EPOCHS, BATCH = 30, 64
per_epoch = x_tr.shape[0] // BATCH
keys = jax.random.split(jax.random.key(1), EPOCHS)
order = jax.vmap(lambda k: jax.random.permutation(k, x_tr.shape[0])[: per_epoch * BATCH])(keys)
order = order.reshape(EPOCHS * per_epoch, BATCH)  # the same minibatches for every optimizer

def train(tx):
    p0 = init_mlp(jax.random.key(0))
    def step(carry, idx):
        p, s = carry
        loss, g = jax.value_and_grad(cross_entropy)(p, x_tr[idx], y_tr[idx])
        u, s = tx.update(g, s, p)
        return (gx.apply_updates(p, u), s), loss
    (p, _), losses = jax.lax.scan(step, (p0, tx.init(p0)), order)
    return np.asarray(losses.reshape(EPOCHS, per_epoch).mean(1)), float(cross_entropy(p, x_tr, y_tr)), float(accuracy(p, x_te, y_te))

ema_momentum = lambda lr: gx.chain(gx.ema(0.9), gx.scale_by_learning_rate(lr))
results = {
    "SGD (lr 0.01)": train(gx.sgd(0.01)),
    "SGD + momentum (lr 0.01)": train(ema_momentum(0.01)),
    "Adam (lr 0.001)": train(gx.adam(1e-3)),
}
for name, (curve, loss, acc) in results.items():
    print(f"{name:28s} train loss {loss:.4f}   held-out accuracy {100 * acc:.1f}%")""",
    ),
    (
        "md",
        """Now SGD with momentum and inverse-time decay, $\\alpha_t = \\alpha_0 / (1 + 0.2\\, t / 22)$ with $t$ the step
(22 steps per epoch, so $\\text{decay_rate} = 0.2$ per epoch) and $\\alpha_0 = 1$:
`gx.schedules.inverse_time_decay(1.0, 0.2, decay_steps=22)`. Any hyperparameter accepts a schedule, a function
of the step count. For comparison, the same $\\alpha_0$ without decay.""",
    ),
    (
        "code",
        """lr0, decay_rate = 1.0, 0.2
inverse_time = gx.schedules.inverse_time_decay(lr0, decay_rate, decay_steps=per_epoch)  # lr0 / (1 + 0.2 t / 22)
np.testing.assert_allclose([inverse_time(t) for t in (0, 22, 220)], [lr0, lr0 / 1.2, lr0 / 3], rtol=1e-6)
results["SGD + momentum + decay (lr0 1)"] = train(ema_momentum(inverse_time))
results["SGD + momentum (lr 1, no decay)"] = train(ema_momentum(lr0))
for name, (curve, loss, acc) in results.items():
    print(f"{name:32s} train loss {loss:.4f}   held-out accuracy {100 * acc:.1f}%")
plt.figure(figsize=(7, 4))
for name, (curve, _, _) in results.items():
    plt.semilogy(np.arange(1, EPOCHS + 1), curve, label=name)
plt.xlabel("epoch"); plt.ylabel("mean minibatch loss"); plt.legend(fontsize=8); plt.show()""",
    ),
    (
        "md",
        """What the numbers say, honestly: SGD with momentum plus inverse-time decay does catch up with Adam (lower
training loss, held-out accuracy at least as good), as the course reports. But the run with the same $\\alpha_0 = 1$
and *no* decay does at least as well over these 30 epochs: here it is the larger initial learning rate that closes
the gap, and the decay's job is to keep a large rate safe as training goes on (it costs little here). The test
asserts the course's claim, not that decay is necessary.""",
    ),
    (
        "code",
        """claims = {name: dict(loss=loss, acc=acc) for name, (_, loss, acc) in results.items()}
print(claims)
sgd, mom, adam = claims["SGD (lr 0.01)"], claims["SGD + momentum (lr 0.01)"], claims["Adam (lr 0.001)"]
decayed = claims["SGD + momentum + decay (lr0 1)"]
assert adam["loss"] < mom["loss"] / 2 and adam["loss"] < sgd["loss"] / 2  # Adam converges fastest
assert abs(mom["loss"] - sgd["loss"]) < 0.25 * sgd["loss"]  # low lr: momentum makes little difference
assert decayed["loss"] <= adam["loss"] and decayed["acc"] >= adam["acc"] - 0.01  # decay catches up with Adam""",
    ),
]

NB["05_lr_momentum_sweep"] = [
    (
        "md",
        """# 5. A jit/vmap sweep over learning rates and momenta

Hyperparameters are values, so a JAX array of them can be traced: `jax.vmap` over a grid of learning rates
and momenta trains every cell at once in a single compiled function. Heavy-ball momentum on the ravine
$f = \\tfrac12(0.1\\,x^2 + 10\\,y^2)$, 100 steps. Theory (Polyak) puts the best constant pair at
$\\eta^* = 4/(\\sqrt L + \\sqrt\\mu)^2 \\approx 0.33$, $\\beta^* = ((\\sqrt\\kappa - 1)/(\\sqrt\\kappa + 1))^2 \\approx 0.67$.""",
    ),
    ("code", SETUP),
    (
        "code",
        """ravine = lambda p: 0.5 * (0.1 * p[0] ** 2 + 10.0 * p[1] ** 2)
lrs = jnp.geomspace(0.01, 0.6, 19)
betas = jnp.linspace(0.0, 0.95, 20)
steps = 100

def final_loss(lr, beta):
    tx = gx.momentum(lr, beta)  # traced hyperparameters: not validated, just used
    p0 = jnp.array([-9.0, 1.0])
    def body(c, _):
        p, s = c
        u, s = tx.update(jax.grad(ravine)(p), s, p)
        return (gx.apply_updates(p, u), s), None
    (p, _), _ = jax.lax.scan(body, (p0, tx.init(p0)), length=steps)
    return ravine(p)

sweep = jax.jit(jax.vmap(jax.vmap(final_loss, in_axes=(None, 0)), in_axes=(0, None)))
grid = np.asarray(sweep(lrs, betas))  # shape (lrs, betas)
log_grid = np.log10(np.where(np.isfinite(grid), grid, np.inf).clip(1e-30, 1e3))
i, j = np.unravel_index(np.nanargmin(np.where(np.isfinite(grid), grid, np.inf)), grid.shape)
best_lr, best_beta = float(lrs[i]), float(betas[j])
plt.figure(figsize=(7, 5))
plt.pcolormesh(np.asarray(betas), np.asarray(lrs), log_grid, shading="nearest", cmap="viridis")
plt.yscale("log"); plt.colorbar(label="log10 final loss (1e3 = diverged)")
plt.plot(best_beta, best_lr, "r*", ms=12); plt.xlabel("momentum beta"); plt.ylabel("learning rate")
plt.title(f"best: lr={best_lr:.3f}, beta={best_beta:.2f}"); plt.show()""",
    ),
    (
        "code",
        """L, mu = 10.0, 0.1
lr_star = 4 / (np.sqrt(L) + np.sqrt(mu)) ** 2
beta_star = ((np.sqrt(L / mu) - 1) / (np.sqrt(L / mu) + 1)) ** 2
single = float(final_loss(best_lr, best_beta))  # the best cell again, alone and with Python numbers
claims = dict(best_lr=best_lr, best_beta=best_beta, lr_star=lr_star, beta_star=beta_star,
              best_loss=float(grid[i, j]), single_run=single, sgd_best=float(np.nanmin(grid[:, 0])))
print(claims)
np.testing.assert_allclose(claims["single_run"], claims["best_loss"], rtol=1e-3, atol=1e-30)
assert 0.5 * lr_star <= best_lr <= 2 * lr_star and abs(best_beta - beta_star) <= 0.2
assert claims["best_loss"] < 1e-6 * claims["sgd_best"]  # momentum's best beats plain GD's best by far""",
    ),
]


NB["06_curvature_vs_first_order"] = [
    (
        "md",
        """# 6. Newton, BFGS and conjugate gradients against first-order methods on Rosenbrock

Lists of optimizers put Newton's method, BFGS and conjugate gradients beside the first-order ones.
What they buy: the gradient says how steep the surface is, the Hessian how it
*bends*. On Rosenbrock's curved valley, $f(x, y) = (1-x)^2 + 100(y-x^2)^2$ from $(-1.2, 1)$,
first-order methods crawl along the floor; methods that use curvature (exactly, as Newton does, or
learned from gradients, as BFGS, L-BFGS and CG do) follow the bend. Everything runs in float64 and
each run is one compiled loop (`gx.minimize` for the curvature methods, `lax.scan` for the others).""",
    ),
    ("code", SETUP + '\njax.config.update("jax_enable_x64", True)'),
    (
        "code",
        """def rosenbrock(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2

start = jnp.array([-1.2, 1.0])
second_order = {
    "Newton (damped)": gx.newton(),
    "Newton-CG": gx.newton_cg(),
    "BFGS": gx.bfgs(),
    "L-BFGS (m=10)": gx.lbfgs(),
    "CG (Polak-Ribiere+)": gx.conjugate_gradient(),
}
results = {name: gx.minimize(rosenbrock, start, tx, max_steps=200, tol=1e-10) for name, tx in second_order.items()}
for name, r in results.items():
    print(f"{name:22s} steps {int(r.num_steps):4d}  f evals {int(r.num_evals):4d}  "
          f"error {float(jnp.max(jnp.abs(r.params - 1))):.1e}")""",
    ),
    (
        "code",
        """def first_order(tx, steps):
    def body(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(rosenbrock)(p), s, p)
        p = gx.apply_updates(p, u)
        return (p, s), p
    _, path = jax.lax.scan(body, (start, tx.init(start)), length=steps)
    return np.asarray(jnp.concatenate([start[None], path]))

# Each at its best learning rate on the grid 1e-4 ... 1 (tests/test_convergence.py).
first = {"SGD (lr 1e-3)": gx.sgd(1e-3), "Momentum (lr 3e-3)": gx.momentum(3e-3, 0.9), "Adam (lr 2e-3)": gx.adam(2e-3)}
paths = {name: first_order(tx, 20000) for name, tx in first.items()}

def steps_to(path, tol):
    err = np.max(np.abs(path - 1), axis=1)
    bad = np.nonzero(err >= tol)[0]
    return int(bad[-1]) + 1 if bad.size and bad[-1] + 1 < len(path) else (0 if not bad.size else None)

for name, path in paths.items():
    print(f"{name:22s} steps to 1e-3: {steps_to(path, 1e-3)}   to 1e-6: {steps_to(path, 1e-6)}")""",
    ),
    (
        "code",
        """xs, ys = np.meshgrid(np.linspace(-1.5, 1.5, 300), np.linspace(-0.5, 1.5, 300))
zs = (1 - xs) ** 2 + 100 * (ys - xs**2) ** 2
fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5))
# One colour per method, the same in both panels.
names = list(paths) + list(second_order)
colour = {n: plt.cm.tab10(i) for i, n in enumerate(names)}
ax.contour(xs, ys, np.log10(zs + 1e-3), levels=25, cmap="gray", linewidths=0.6)
for name, path in paths.items():
    ax.plot(path[:, 0], path[:, 1], "-", lw=1, color=colour[name], label=name)  # every step
for name, tx in second_order.items():
    # Re-run step by step to draw the iterates (minimize keeps only the objective's trace).
    def step(p, s, tx=tx):
        v, g = jax.value_and_grad(rosenbrock)(p)
        u, s = tx.update(g, s, p, value=v, grad=g, value_fn=rosenbrock)
        return gx.apply_updates(p, u), s
    step = jax.jit(step)
    p, s, pts = start, tx.init(start), [np.asarray(start)]
    for _ in range(int(results[name].num_steps)):
        p, s = step(p, s)
        pts.append(np.asarray(p))
    pts = np.array(pts)
    ax.plot(pts[:, 0], pts[:, 1], "o-", ms=3, lw=1.5, color=colour[name], label=name)
ax.plot(1, 1, "k*", ms=14); ax.set_title("iterates over log10 f"); ax.set_xlabel("x"); ax.set_ylabel("y")
ax.legend(fontsize=7)
for name, r in results.items():
    tr = np.asarray(r.trace)[: int(r.num_steps) + 1]
    bx.semilogy(np.maximum(tr, 1e-30), color=colour[name], label=name)
for name, path in paths.items():
    bx.semilogy(np.maximum(np.asarray(jax.vmap(rosenbrock)(path)), 1e-30), color=colour[name], label=name)
bx.set_xscale("symlog", linthresh=100); bx.set_xlabel("iteration"); bx.set_ylabel("f"); bx.set_title("f per iteration")
bx.legend(fontsize=7)
plt.show()""",
    ),
    (
        "code",
        """claims = {
    "second_order_steps": {n: int(r.num_steps) for n, r in results.items()},
    "second_order_error": {n: float(jnp.max(jnp.abs(r.params - 1))) for n, r in results.items()},
    "first_order_steps_1e-3": {n: steps_to(p, 1e-3) for n, p in paths.items()},
}
print(claims)
# Every curvature method reaches the minimum to 1e-6 in under 100 iterations ...
assert all(e < 1e-6 for e in claims["second_order_error"].values())
assert all(k < 100 for k in claims["second_order_steps"].values())
# ... while the best first-order method needs more than 4x as many steps just to get within 1e-3.
best_first = min(k for k in claims["first_order_steps_1e-3"].values() if k is not None)
assert best_first > 4 * max(claims["second_order_steps"].values())""",
    ),
    (
        "md",
        """**Iterations are not the whole cost.** A curvature iteration costs more than a gradient step:
the line searches evaluate $f$ and $\\nabla f$ two to five times per iteration (the `f evals`
column), Newton forms and factors the $n\\times n$ Hessian ($O(n^3)$) and BFGS keeps an $n\\times n$
matrix. On two parameters that is free; on a network with millions of parameters only L-BFGS, CG
and Newton-CG (Hessian-vector products) scale, and noisy minibatch gradients break the line
searches' assumptions, which is why the first-order methods of notebooks 1-5 train networks.""",
    ),
]


def build(name: str) -> nbformat.NotebookNode:
    """The notebook `name` as written here, without outputs."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        for kind, src in NB[name]
    ]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 600) -> tuple[nbformat.NotebookNode, dict]:
    """Runs `nb` in notebooks/ and returns it with its outputs, and its `claims` (read by an extra cell)."""
    import nbclient

    nb = nbformat.from_dict(json.loads(json.dumps(nb)))  # a copy
    nb.cells.append(nbformat.v4.new_code_cell(CLAIMS_CELL))
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    extra = nb.cells.pop()
    text = "".join(o.get("text", "") for o in extra.outputs if o.output_type == "stream")
    line = next(ln for ln in text.splitlines() if ln.startswith("CLAIMS="))
    return nb, json.loads(line[len("CLAIMS=") :])


def figures(nb: nbformat.NotebookNode) -> list[bytes]:
    """The PNG figures among `nb`'s outputs, in order."""
    return [
        base64.b64decode(o["data"]["image/png"])
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]


def figure_path(name: str, k: int) -> pathlib.Path:
    return FIGURES / f"{name}-{k + 1}.png"


def main(argv: list[str]) -> int:
    names = argv or list(NB)
    HERE.mkdir(exist_ok=True)
    FIGURES.mkdir(parents=True, exist_ok=True)
    for name in names:
        nb, claims = execute(build(name))
        for cell in nb.cells:  # execution times and counts would make every run a diff
            cell.metadata.pop("execution", None)
        nb.metadata["gradxform"] = {"claims": claims}
        nbformat.write(nb, HERE / f"{name}.ipynb")
        for old in FIGURES.glob(f"{name}-*.png"):
            old.unlink()
        for k, png in enumerate(figures(nb)):
            figure_path(name, k).write_bytes(png)
        print(f"{name}: {len(figures(nb))} figure(s), claims {claims}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
