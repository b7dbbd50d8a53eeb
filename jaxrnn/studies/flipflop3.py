"""The 3-bit flip-flop study (Jarne 2023, "Exploring Flip Flop memories and beyond"; Sussillo & Barak 2013;
Jarne & Laje 2019 §5): train an ensemble on `flipflop3` and measure, per member,

  * the memory cube: centroids of the 8 memory states of a noise-free test sequence in the top-3 PCs, and the
    cube score R² of their linear fit on the 3 bits (1 = parallelepiped), with the angles between the bit axes;
  * fixed points of the autonomous map (zero input), stable / saddle / unstable, and how many cube vertices have a
    stable fixed point beside them (8 expected);
  * the spectrum of the per-step map (1 − a) I + a W_rec, the network's linearisation around h = 0 with its leak a
    (`spectrum.step_map`; W_rec itself only when a = 1): radius, eigenvalues outside the unit circle, leading
    complex eigenvalue and its frequency in both conventions; W_rec's own spectrum beside it, labelled as W_rec's
    and secondary (its frequencies are not the network's when a < 1); and a regime label (fixed-point vs
    oscillatory) from the activity after the input stops;
  * linear CKA between every pair of members' trajectories on the test sequence, and clusters of the learners;
  * time-translation invariance of the response to a pulse presented at several onsets in a longer trial;

and the same for the original tutorial's trained network (`jaxrnn.reference`, `flipflop3_N400_orthogonal`, N = 400,
a = 1, so its per-step map is its W_rec).

Every statistic of the population (medians, counts, similarity, clusters, the comparison with the tutorial's network)
is over the members that learned the task (`Run.learned`: success on the held-out trials and not diverged), with
their number beside it; with fewer than `MIN_LEARNERS` learners the ensemble is not analysed as a population. Each
member's own values, learners or not, are in `members.csv`.

Fixed-point Jacobians (`jaxrnn.analysis.fixed_points.HostMap.jacobian`, `network_jacobian`) are those of the map with
its leak, (1 − a) I + a · diag(tanh'(W_rec h + u)) W_rec, so their |λ| and frequencies are per-step already.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import reference
from jaxrnn.analysis import cube as cube_mod
from jaxrnn.analysis import fixed_points as fp_mod
from jaxrnn.analysis import invariance as inv_mod
from jaxrnn.analysis import similarity, spectrum
from jaxrnn.analysis.states import ensemble_states, project
from jaxrnn.cells.network import NetConfig
from jaxrnn.studies.base import Context, Protocol, Scale, Study, log, md_table, write_csv
from jaxrnn.tasks import make_task
from jaxrnn.training.evaluate import evaluate

NAME = "flipflop3"
#: the tutorial's trained network (Keras SimpleRNN(400), no bias, orthogonal init), in `jaxrnn.reference`
REFERENCE_NETWORK = "flipflop3_N400_orthogonal"


#: Analysis sizes per scale (Scale.grid): hold: steps per pattern of the test sequence; fp_starts, fp_steps:
#: fixed-point searches per member and the length of each; ref_starts: searches for the N = 400 reference network;
#: n_noise: noise draws per onset in the invariance test.
SCALES = {
    "smoke": Scale(
        members=2,
        protocol=Protocol(
            units=16,
            epochs=2,
            n_train=64,
            batch_size=16,
            protocol="online",
            lr=1e-3,
            clip_norm=1.0,
            threshold=0.0,
            n_eval=32,
        ),
        reduced="Smoke test only (CI): N = 16, 2 members, 8 updates; the numbers mean nothing.",
        grid=dict(hold=60, fp_starts=16, fp_steps=200, ref_starts=8, n_noise=2),
    ),
    "cpu": Scale(
        members=8,
        protocol=Protocol(
            units=100,
            epochs=24,
            n_train=3200,
            batch_size=64,
            protocol="online",
            alpha=0.2,
            lr=1e-3,
            clip_norm=1.0,
            threshold=0.0,
            n_eval=256,
        ),
        reduced="Reduced to fit 2 CPU cores: N = 100 (paper 400), leak a = dt/tau = 0.2 (the tutorial's Keras "
        "SimpleRNN is a = 1), training trials of T = 700 steps (paper 340; the same pulse schedule, so every trial "
        "ends with a hold of 330-518 steps), 8 members, online protocol (fresh trials every update) with 1,200 updates "
        "of batch 64 (76,800 trials; paper: 20 epochs × 30,000 trials, batch 128, ≈ 4,700 updates), Adam lr 1e-3 "
        "with Keras decay and gradient-norm clipping at 1 (paper lr 1e-4, no clipping), no early stop. Measured "
        "before choosing it (4-8 members each): at a = 1 (N = 100 or 200, T = 340 or 700) members held at most 2 "
        "bits and none succeeded; at a = 0.2 on T = 340 trials every member succeeded on the task's trials but held "
        "the slow bits only in slowly decaying activity (1-2 bits held on the 480-step holds of the test sequence, "
        "no stable points at the vertices, also after 3,000 updates); on T = 700 trials every member held 3 bits in "
        "a cube of attractors.",
        grid=dict(task={"T": 700}, hold=120, fp_starts=128, fp_steps=1000, ref_starts=512, n_noise=16),
    ),
    "paper": Scale(
        members=20,
        protocol=Protocol(units=400, epochs=20, n_train=30_000, batch_size=128, lr=1e-4, n_eval=512),
        reduced="The tutorial's protocol: N = 400, 20 epochs × 30,000 trials, batch 128, Adam lr 1e-4 with decay, "
        "early stop below 9e-3.",
        grid=dict(hold=120, fp_starts=512, fp_steps=5000, ref_starts=512, n_noise=32),
    ),
    "tutorial": Scale(
        members=8,
        protocol=Protocol(
            units=400,
            epochs=5,
            n_train=30_000,
            batch_size=128,
            protocol="paper",
            threshold=0.0,
            alpha=1.0,
            lr=1e-4,
            n_eval=256,
        ),
        reduced="The tutorial's own model and protocol (Jarne 2023, katejarne/3-bit-FF-tutorial), the network the "
        "reference was trained as: a Keras SimpleRNN, so leak a = 1, N = 400, orthogonal recurrent init, no RNN "
        "bias, Adam lr 1e-4 with Keras decay 1e-4, batch 128, epochs over one fixed set of 30,000 trials of the "
        "task's default T = 340 steps. Reduced to fit 2 CPU cores: 8 members and 5 epochs (1,170 updates each) "
        "instead of 20 epochs (the tutorial's saved network: 4,700 Adam iterations in its optimizer state, i.e. "
        "20 × 235 updates); no early stop (threshold 0, so every member trains all 5 epochs; the tutorial's "
        "preset stops below a loss of 9e-3, which its saved network never triggered before epoch 20); held-out "
        "evaluation on 256 trials; fixed points from 128 searches of at most 1,000 Adam steps per member, as at the "
        "cpu scale (the reference network: 512 searches).",
        grid=dict(hold=120, fp_starts=128, fp_steps=1000, ref_starts=512, n_noise=16),
        folder="flipflop3_tutorial",
    ),
}

#: a condition with fewer learners than this is not analysed as a population (no medians, no comparison)
MIN_LEARNERS = 3
_FEW = f"fewer than {MIN_LEARNERS} learners: not analysed as a population"

_STIM_WIDTH = 20
_INV_T = 600
_INV_ONSETS = (20, 100, 180, 260, 340, 420, 500)
_INV_WINDOW = 100
_FREE_RUN = 600  # zero-input steps after the test sequence, for the regime label
_LATE = 200  # last steps of the free run used for it


# ----------------------------------------------------------------------------------------------------------------
# Analyses of an ensemble (member axis first). Returned as plain numpy dicts.


def load_reference() -> tuple[dict, NetConfig]:
    """The tutorial's trained network as (params with a member axis of 1, NetConfig)."""
    m = reference.network(REFERENCE_NETWORK)
    params = {k: jnp.asarray(v)[None] for k, v in m.params.items()}
    return params, NetConfig(n_in=m.n_in, n_out=m.n_out, units=m.units, bias=m.bias)


def _match_vertices(centroids_full: np.ndarray, stable: np.ndarray) -> tuple[int, np.ndarray]:
    """How many cube vertices have a stable fixed point closer than a quarter of the smallest vertex spacing.

    Returns:
        (count, (P,) distance from each vertex to its nearest stable point; inf if none).
    """
    P = centroids_full.shape[0]
    if len(stable) == 0:
        return 0, np.full(P, np.inf)
    d = np.linalg.norm(centroids_full[:, None, :] - stable[None, :, :], axis=-1)
    spacing = np.linalg.norm(centroids_full[:, None] - centroids_full[None], axis=-1)
    spacing = np.min(spacing[~np.eye(P, dtype=bool)])
    nearest = d.min(1)
    return int(np.sum(nearest < 0.25 * spacing)), nearest


def _edge_saddles(centroids_full: np.ndarray, patterns: np.ndarray, saddles: np.ndarray) -> int:
    """How many of the cube's edges (pairs of memory states whose patterns differ in one bit; 12 for 3 bits) have a
    saddle with one unstable mode between their two memory states: within a quarter of the edge's length of the
    segment joining them, its projection on the segment in the middle 80% (the saddles that mediate a bit flip in
    Sussillo & Barak 2013 and the 2023 tutorial's picture)."""
    if len(saddles) == 0:
        return 0
    edges = [(i, j) for i in range(len(patterns)) for j in range(i + 1, len(patterns))
             if np.sum(patterns[i] != patterns[j]) == 1]  # fmt: skip
    found = 0
    for i, j in edges:
        a, b = centroids_full[i], centroids_full[j]
        ab = b - a
        length = np.linalg.norm(ab)
        t = (saddles - a) @ ab / max(length**2, 1e-12)
        dist = np.linalg.norm(saddles - (a + np.clip(t, 0, 1)[:, None] * ab), axis=1)
        found += bool(np.any((dist < 0.25 * length) & (t > 0.1) & (t < 0.9)))
    return found


def analyse(params: dict, cfg: NetConfig, task, grid: dict, n_starts: int, seed: int = 0) -> dict:
    """Every analysis of the study for the members of `params` (member axis first); `grid`: the scale's sizes.

    Returns:
        dict of numpy arrays / lists with a leading member axis, plus "seq" (the test sequence), "states" (E, T, N)
        on it, and "fixed" (one FixedPoints per member).
    """
    E = jax.tree.leaves(params)[0].shape[0]
    seq = cube_mod.cube_sequence(
        task.n_bits, hold=grid["hold"], repeats=2, pulse_width=task.pulse_width, settle=min(50, grid["hold"] // 2)
    )
    cubes = jax.jit(jax.vmap(lambda p: cube_mod.cube(p, cfg, seq)))(params)
    cubes_svd = jax.jit(jax.vmap(lambda p: cube_mod.cube(p, cfg, seq, centered=False)))(params)
    free = np.concatenate([seq.inputs, np.zeros((_FREE_RUN, seq.inputs.shape[1]), np.float32)])
    H_all = np.asarray(ensemble_states(params, jnp.asarray(free)[None], cfg)[:, 0])  # (E, T + free, N)
    T_seq = seq.inputs.shape[0]
    H = H_all[:, :T_seq]
    # which bits the member holds: sign agreement of each output with its bit on the settled steps of the sequence
    W_out, b_out = np.asarray(params["W_out"]), np.asarray(params["b_out"])
    out_seq = np.einsum("etn,eon->eto", H, W_out) + b_out[:, None, :]
    settled = seq.label >= 0
    bit_accuracy = np.mean(np.sign(out_seq[:, settled]) == seq.bits[settled][None], axis=1)  # (E, n_bits)
    log(f"cubes of {E} members done; fixed points from {n_starts} starts each")

    # fixed points of the zero-input map, started from states on each member's own trajectory
    keys = jax.random.split(jax.random.key(seed), E)
    starts = jax.vmap(lambda k, h: fp_mod.sample_starts(k, h, n_starts, noise=0.02))(keys, jnp.asarray(H))
    fixed = fp_mod.ensemble_fixed_points(params, cfg, starts, steps=grid["fp_steps"])
    centroids_full = np.asarray(jax.vmap(lambda h: cube_mod.centroids(h, seq.label, 2**task.n_bits))(jnp.asarray(H)))
    matched, nearest, stable_pc, edges = [], [], [], []
    for i, f in enumerate(fixed):
        st = f.points[f.kind == "stable"]
        m, d = _match_vertices(centroids_full[i], st)
        matched.append(m)
        nearest.append(d)
        one_mode = f.points[(f.kind == "saddle") & (f.n_unstable == 1)]
        edges.append(_edge_saddles(centroids_full[i], seq.patterns, one_mode))
        proj_i = jax.tree.map(lambda a, i=i: a[i], cubes.projection)
        stable_pc.append(np.asarray(project(proj_i, jnp.asarray(st, jnp.float32))) if len(st) else np.zeros((0, 3)))
    log("fixed points done; spectra, similarity, invariance")

    # spectra and the regime from the last steps of the zero-input free run. The dynamics' spectrum is the per-step
    # map's, (1 − a) I + a W_rec (eigenvalues 1 − a + a λ(W_rec)); W_rec's own is kept beside it, labelled as such.
    # (The fixed points' Jacobians above already include the leak: fixed_points.HostMap.jacobian.)
    W = np.asarray(params["W_rec"], np.float64)
    alpha = float(cfg.alpha)
    regimes = [spectrum.regime(W[i], H_all[i, -_LATE:], alpha=alpha) for i in range(E)]
    w_eigs = [spectrum.eigenvalues(W[i]) for i in range(E)]
    step_eigs = w_eigs if alpha == 1.0 else [1.0 - alpha + alpha * lam for lam in w_eigs]
    modes = [spectrum.spectral_summary(spectrum.step_map(W[i], alpha), step_eigs[i]) for i in range(E)]
    modes_w = [spectrum.spectral_summary(W[i], w_eigs[i]) for i in range(E)]

    # time-translation invariance of the response to a +1 pulse on channel 0
    stim = np.zeros((_STIM_WIDTH, task.n_in), np.float32)
    stim[:, 0] = 1.0
    trials = inv_mod.onset_inputs(stim, _INV_ONSETS, _INV_T, task.noise, jax.random.key(seed + 1), grid["n_noise"])
    inv = inv_mod.ensemble_invariance(params, cfg, trials, _INV_ONSETS, _INV_WINDOW, channel=0)

    return dict(
        seq=seq,
        states=H,
        fixed=fixed,
        r2=np.asarray(cubes.r2),
        r2_full=np.asarray(cubes.r2_full),
        r2_svd=np.asarray(cubes_svd.r2),
        angles=np.asarray(cubes.angles),
        axis_lengths=np.asarray(cubes.axis_lengths),
        bit_accuracy=bit_accuracy,
        centroids=np.asarray(cubes.centroids),
        evr=np.asarray(cubes.explained_variance_ratio),
        scores=np.asarray(jax.vmap(lambda p, h: project(p, h))(cubes.projection, jnp.asarray(H))),
        centroids_full=centroids_full,
        vertices_matched=np.asarray(matched),
        vertex_distance=np.asarray(nearest),
        edges_with_saddle=np.asarray(edges),
        stable_pc=stable_pc,
        regimes=regimes,
        modes=modes,
        modes_w=modes_w,
        step_eigs=step_eigs,
        w_eigs=w_eigs,
        alpha=alpha,
        invariance=inv,
    )


def member_rows(res: dict, ids, ev=None, learned=None, clusters=None, cka_ref=None) -> list[dict]:
    """One CSV row per member (every member, learner or not; `learned` (E,) bool marks the learners).

    Spectral columns: `step_*` are the per-step map's, (1 − a) I + a W_rec (the dynamics' linearisation around
    h = 0; `regime`'s eigenvalues are these), `W_rec_*` are W_rec's own (equal to `step_*` when a = 1).
    """
    rows = []
    for i, m in enumerate(ids):
        f, r, md, mw, inv = res["fixed"][i], res["regimes"][i], res["modes"][i], res["modes_w"][i], res["invariance"]
        row = {"member": m}
        if ev is not None:
            row.update(
                mse=ev.mse[i],
                distance=ev.distance[i],
                zero_distance=ev.zero_distance[i],
                accuracy=ev.accuracy[i],
                success=bool(ev.success[i]),
            )
        if learned is not None:
            row["learned"] = bool(learned[i])
        row.update(
            cube_r2=res["r2"][i],
            cube_r2_full=res["r2_full"][i],
            cube_r2_uncentred_svd=res["r2_svd"][i],
            angle_01=res["angles"][i, 0],
            angle_02=res["angles"][i, 1],
            angle_12=res["angles"][i, 2],
            axis_ratio=float(res["axis_lengths"][i].min() / res["axis_lengths"][i].max()),
            bit0_accuracy=res["bit_accuracy"][i, 0],
            bit1_accuracy=res["bit_accuracy"][i, 1],
            bit2_accuracy=res["bit_accuracy"][i, 2],
            pc3_variance=float(np.sum(res["evr"][i])),
            fp_stable=f.count("stable"),
            fp_saddle=f.count("saddle"),
            fp_unstable=f.count("unstable"),
            fp_converged=f.n_converged,
            fp_starts=f.n_starts,
            bits_held=int(np.sum(res["bit_accuracy"][i] >= 0.9)),
            vertices_with_stable_fp=int(res["vertices_matched"][i]),
            fp_saddle_1mode=int(np.sum((f.kind == "saddle") & (f.n_unstable == 1))),
            edges_with_1mode_saddle=int(res["edges_with_saddle"][i]),
            stable_fp_max_abs_lambda=float(np.max(np.abs(f.eigvals[f.kind == "stable", 0])))
            if f.count("stable")
            else float("nan"),
            alpha=res["alpha"],
            step_radius=md.radius,
            step_n_outside_unit_circle=md.n_outside,
            step_leading_re=r.leading.real,
            step_leading_im=r.leading.imag,
            step_leading_complex_abs=abs(r.leading_complex),
            step_freq_hz=r.freq_hz,
            step_freq_slides=r.freq_slides,
            W_rec_radius=mw.radius,
            W_rec_n_outside_unit_circle=mw.n_outside,
            W_rec_leading_complex_abs=mw.leading_complex_abs,
            W_rec_leading_complex_hz=mw.leading_complex_hz,
            regime=r.label,
            late_speed=r.speed,
            inv_min_corr=inv.min_corr[i],
            inv_mean_rel_error=float(np.mean(inv.rel_error[i][1:])),
            inv_latency_mean=float(np.mean(inv.latency[i])),
            inv_latency_spread=inv.latency_spread[i],
        )
        if clusters is not None:
            row["cluster"] = int(clusters[i]) if clusters[i] >= 0 else None  # None: not a learner / not clustered
        if cka_ref is not None:
            row["cka_with_reference"] = float(cka_ref[i])
        rows.append(row)
    return rows


def _fp_rows(res: dict, ids) -> list[dict]:
    """Every distinct fixed point; the Jacobian's eigenvalues include the leak (per-step)."""
    rows = []
    for i, m in enumerate(ids):
        f = res["fixed"][i]
        for j in range(len(f.points)):
            rows.append(
                {
                    "member": m,
                    "kind": f.kind[j],
                    "n_unstable": int(f.n_unstable[j]),
                    "q": f.q[j],
                    "abs_lambda1": float(np.abs(f.eigvals[j, 0])),
                    "lambda1_re": float(f.eigvals[j, 0].real),
                    "lambda1_im": float(f.eigvals[j, 0].imag),
                    "freq_map_hz_leading_complex": float(spectrum.frequency_hz(spectrum.leading_complex(f.eigvals[j]))),
                    "mirrored": bool(f.mirrored[j]),
                    "norm": float(np.linalg.norm(f.points[j])),
                }
            )
    return rows


def _summary(x, of: int | None = None) -> str:
    """Median, range and mean of the finite values of x, and how many there are (of `of`, when some are missing)."""
    x = np.asarray(x, float).ravel()
    total = len(x) if of is None else of
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return f"n/a (no value; n = 0 of {total})"
    n = f"n = {len(x)}" if len(x) == total else f"n = {len(x)} of {total} with a value"
    return f"{np.median(x):.3f} (median; range {x.min():.3f}–{x.max():.3f}, mean {x.mean():.3f}; {n})"


def _first_searches(fp, n: int) -> np.ndarray:
    """Indices of the points of a census reached by its first n searches, with their mirrors (a census with n
    starts, as in `fixed_points.census_growth`)."""
    n = min(n, fp.n_starts)
    reached = np.unique(fp.origin[:n][fp.origin[:n] >= 0])
    return np.union1d(reached, fp.mirror[reached][fp.mirror[reached] >= 0]).astype(int)


def _reference_at(ref_res: dict, n: int) -> dict:
    """The reference network's census facts from its first n searches: stable points, saddles, vertices with a
    stable point, edges with a 1-mode saddle (to compare with members searched with n starts)."""
    f = ref_res["fixed"][0]
    ids = _first_searches(f, n)
    kind, modes, pts = f.kind[ids], f.n_unstable[ids], f.points[ids]
    cf = ref_res["centroids_full"][0]
    return dict(
        starts=min(n, f.n_starts),
        stable=int(np.sum(kind == "stable")),
        saddle=int(np.sum(kind == "saddle")),
        vertices=_match_vertices(cf, pts[kind == "stable"])[0],
        edges=_edge_saddles(cf, ref_res["seq"].patterns, pts[(kind == "saddle") & (modes == 1)]),
    )


def _position(values, ref: float) -> str:
    """Where the reference's value falls among the learners' values."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v) or not np.isfinite(ref):
        return "—"
    if ref < v.min():
        return f"below all {len(v)}"
    if ref > v.max():
        return f"above all {len(v)}"
    return f"within the range ({int(np.sum(v < ref))} of {len(v)} below)"


def _label(i: int, learned: np.ndarray) -> str:
    """A member's label in figures: its id, in parentheses when it did not learn."""
    return str(i) if learned[i] else f"({i})"


# ----------------------------------------------------------------------------------------------------------------


def run(ctx: Context) -> list[str]:
    """The study (module docstring): writes `ctx.out` (CSVs, figures), returns the report body."""
    from jaxrnn.plots import dynamics as plots

    out, sc, g = ctx.out, ctx.scale, ctx.scale.grid
    if ctx.run is not None:
        trained = ctx.use(ctx.run)
    else:
        cfg = sc.config(make_task("flipflop3", **g.get("task", {})))
        trained = ctx.train(cfg, f"flipflop3_N{cfg.units}")
    cfg = trained.config
    task = cfg.task
    net = cfg.net
    params = jax.tree.map(jnp.asarray, trained.effective("final"))
    E = params["W_rec"].shape[0]
    ids = list(range(E))
    ev = trained.evaluation
    learned = np.asarray(trained.learned, bool)
    L = np.flatnonzero(learned)
    nL = len(L)
    log(f"ensemble: {E} members, {nL} learned, median MSE {np.median(ev.mse):.4f}; analysing")
    res = analyse(params, net, task, g, g["fp_starts"])

    # similarity between every pair (CSV), clusters of the learners only
    M = similarity.similarity_matrix(jnp.asarray(res["states"]), "cka")
    clusters = np.full(E, -1)
    if nL >= MIN_LEARNERS:
        clusters[L] = similarity.cluster_members(M[np.ix_(L, L)], threshold=0.2)

    # the reference network
    log("reference network")
    ref_params, ref_net = load_reference()
    ref_ev = evaluate(task, ref_net, ref_params, n_trials=sc.protocol.n_eval)
    ref_res = analyse(ref_params, ref_net, task, g, g["ref_starts"])
    cka_ref = np.asarray(
        jax.vmap(lambda h: similarity.linear_cka(h, jnp.asarray(ref_res["states"][0])))(jnp.asarray(res["states"]))
    )

    # files
    rows = member_rows(res, ids, ev, learned, clusters, cka_ref)
    write_csv(out / "members.csv", rows)
    write_csv(out / "fixed_points.csv", _fp_rows(res, ids))
    write_csv(out / "similarity_cka.csv", [{"member": i, **{str(j): M[i, j] for j in ids}} for i in ids])
    ref_learned = np.asarray(ref_ev.success, bool) & np.asarray(ref_ev.finite, bool)
    ref_rows = member_rows(ref_res, ["reference"], ref_ev, ref_learned)
    write_csv(out / "reference.csv", ref_rows)
    write_csv(out / "reference_fixed_points.csv", _fp_rows(ref_res, ["reference"]))
    names = list(task.conditions)
    figs = out / "figures"
    for stale in [*figs.glob("trajectory_member*.png"), figs / "eigenvalues_W_rec.png"]:  # an earlier run's files
        stale.unlink(missing_ok=True)
    ref_r2 = float(ref_res["r2"][0])
    pop = L if nL else np.arange(E)  # the members the population figures show (all of them when none learned)
    who = f"learners (n = {nL})" if nL else f"all {E} members (none learned)"
    plots.cube_scores(res["r2"][pop], figs / "cube_scores.png", reference=ref_r2, label=f"R², {who}")
    shown = [*L, *np.flatnonzero(~learned)][: min(E, 7)]  # learners first
    cents = [res["centroids"][i] for i in shown]
    titles = [f"member {i}{'' if learned[i] else ' (not learned)'}: R² {res['r2'][i]:.3f}" for i in shown]
    fixed_pc = [res["stable_pc"][i] for i in shown]
    cents.append(ref_res["centroids"][0])
    titles.append(f"reference N=400: R² {ref_r2:.3f}")
    fixed_pc.append(ref_res["stable_pc"][0])
    plots.cubes(cents, names, titles, figs / "cubes.png", fixed=fixed_pc)
    best = int(pop[np.nanargmax(res["r2"][pop])]) if np.any(np.isfinite(res["r2"][pop])) else int(pop[0])
    plots.trajectory_3d(
        res["scores"][best],
        res["seq"].label,
        names,
        figs / f"trajectory_member{best}.png",
        centroids=res["centroids"][best],
        fixed=res["stable_pc"][best],
        title=f"member {best}{'' if learned[best] else ' (not learned)'}, 8-state test sequence (top-3 PCs)",
    )
    counts = {k: np.array([f.count(k) for f in res["fixed"]]) for k in fp_mod.KINDS}
    plots.fixed_point_counts(counts, figs / "fixed_point_counts.png", [_label(i, learned) for i in ids])
    a = res["alpha"]
    if a == 1.0:
        sets, labels = [np.concatenate([res["w_eigs"][i] for i in pop])], ["W_rec = the per-step map (a = 1)"]
    else:
        sets = [np.concatenate([res[k][i] for i in pop]) for k in ("step_eigs", "w_eigs")]
        labels = [f"per-step map (1 − a) I + a W_rec, a = {a:g}", "W_rec's own (not the dynamics' for a < 1)"]
    plots.eigenvalues(sets, figs / "eigenvalues_members.png", labels=labels, title=f"eigenvalues, {who}")
    plots.similarity(
        M,
        figs / "similarity_cka.png",
        [_label(i, learned) for i in ids],
        title="linear CKA of trajectories on the test sequence ((i): not learned)",
    )
    plots.onset_responses(
        np.asarray(res["invariance"].aligned[best]),
        _INV_ONSETS,
        figs / "invariance_member.png",
        title=f"member {best}: output 0 after a +1 pulse at each onset",
    )
    plots.trajectory_3d(
        ref_res["scores"][0],
        ref_res["seq"].label,
        names,
        figs / "trajectory_reference.png",
        centroids=ref_res["centroids"][0],
        fixed=ref_res["stable_pc"][0],
        title="reference network (N = 400), top-3 PCs",
    )
    f = ref_res["fixed"][0]
    ref_map = "W_rec = the per-step map (a = 1)" if ref_res["alpha"] == 1.0 else "per-step map"
    plots.eigenvalues(
        [ref_res["step_eigs"][0], *([f.eigvals[f.kind == "stable"][0]] if f.count("stable") else [])],
        figs / "eigenvalues_reference.png",
        labels=[ref_map, "Jacobian at a stable fixed point"][: 1 + bool(f.count("stable"))],
        title="reference network",
    )
    plots.onset_responses(
        np.asarray(ref_res["invariance"].aligned[0]),
        _INV_ONSETS,
        figs / "invariance_reference.png",
        title="reference: output 0 after a +1 pulse",
    )

    same_model = all(getattr(net, k) == getattr(ref_net, k) for k in ("units", "alpha", "bias", "activation", "cell"))
    return _report_body(res, rows, ref_res, ref_rows, ev, ref_ev, learned, clusters, M, g, E, task, same_model, net)


def _report_body(
    res, rows, ref_res, ref_rows, ev, ref_ev, learned, clusters, M, g, E, task, same_model, net
) -> list[str]:
    L = np.flatnonzero(learned)
    nL = len(L)
    pop = nL >= MIN_LEARNERS
    col = lambda key: np.array([r[key] for r in rows], float)  # noqa: E731  every member
    lrn = lambda key: col(key)[L]  # noqa: E731  the learners
    held = np.array([r["bits_held"] for r in rows])
    three_l = L[held[L] == 3]  # learners that hold 3 bits: a subset of the learners
    n3 = len(three_l)
    matched = np.array([r["vertices_with_stable_fp"] for r in rows])
    edges = np.array([r["edges_with_1mode_saddle"] for r in rows])
    regimes = [rows[i]["regime"] for i in L]
    inv = res["invariance"]
    a = res["alpha"]
    ref = ref_rows[0]
    ref_census = fp_mod.census(ref_res["fixed"][0])
    sizes = sorted({n for n in (32, 64, 128, 256, 512) if n <= g["ref_starts"]} | {g["ref_starts"]})
    growth = fp_mod.census_growth(ref_res["fixed"][0], sizes)
    step_map = (
        "the per-step map (1 − a) I + a W_rec = W_rec (a = 1)"
        if a == 1.0
        else f"the per-step map (1 − a) I + a W_rec with a = {a:g} (eigenvalues 1 − a + a λ(W_rec))"
    )
    few = f"**{_FEW[:1].upper() + _FEW[1:]}** (n = {nL} of {E})."
    lines = [
        "## Reading",
        "",
        f"{nL} of {E} members learned the task (`learned`: they succeed on the held-out "
        "trials under the success criterion above and did not diverge). Every statistic of the "
        "population below (medians, counts, similarity, clusters, the comparison with the tutorial's network) is "
        "computed over the learners only, with their number n beside it; the members that did not learn appear in "
        "the per-member table and in `members.csv` only."
        + (f" {few} No population statistic or comparison is reported." if not pop else ""),
        "",
        f"Bits held per member: {held.tolist()} (a bit is held when the sign of its output is right on ≥ 90% of the "
        "settled steps of the noise-free 8-pattern test sequence, whose slowest bit is held for "
        f"{4 * g['hold']} steps); "
        + (f"{n3} of the {nL} learners hold all 3." if nL else "no member learned.")
        + " A member that holds k < 3 bits has a "
        "collapsed cube: its 8 memory states fall on 2^k points, the cube score R² can still read near 1 (a "
        "degenerate parallelepiped is linear in the bits) while the axis ratio is near 0; the table lists every "
        "member's bits held and axis ratio beside its R².",
        "",
        "## Results",
        "",
        f"Ensemble of {E} members, all of them: held-out MSE median {np.median(ev.mse):.4f} "
        f"(range {ev.mse.min():.4f}–{ev.mse.max():.4f}); distance ‖target − output‖ median "
        f"{np.median(ev.distance):.3f} against {np.median(ev.zero_distance):.3f} for an all-zero output; "
        f"{int(ev.success.sum())}/{E} succeed, {nL}/{E} learned.",
        "",
        md_table(
            [
                "member",
                "learned",
                "distance",
                "bits held",
                "cube R²",
                "axis ratio",
                "stable points",
                "saddles (1 unstable mode)",
                "vertices with a stable point",
                "edges with a 1-mode saddle",
                "searches converged",
            ],  # fmt: skip
            [
                [
                    r["member"],
                    "yes" if r["learned"] else "no",
                    f"{r['distance']:.3f}",
                    r["bits_held"],
                    f"{r['cube_r2']:.3f}",
                    f"{r['axis_ratio']:.3f}",
                    r["fp_stable"],
                    f"{r['fp_saddle']} ({r['fp_saddle_1mode']})",
                    f"{r['vertices_with_stable_fp']} / 8",
                    f"{r['edges_with_1mode_saddle']} / 12",
                    f"{r['fp_converged']} / {r['fp_starts']}",
                ]
                for r in rows
            ],
        ),
        "",
    ]
    if not pop:
        lines += [f"**Population statistics**: {few} The per-member values are in the table and in `members.csv`.", ""]
    else:
        angles = np.concatenate([lrn(k) for k in ("angle_01", "angle_02", "angle_12")])
        sub3 = ""
        if 0 < n3 < nL:
            s3 = lambda key: col(key)[three_l]  # noqa: E731
            sub3 = (
                f" Over the {n3} learners that also hold 3 bits (a subset of the learners): R² "
                f"{_summary(s3('cube_r2'))}; shortest over longest bit axis {_summary(s3('axis_ratio'))}."
            )
        lines += [
            f"**The cube, over the {nL} learners** (R² of the linear fit of the 8 memory-state centroids on the 3 "
            "bits, in the top-3 PCs of the test sequence; 1 = parallelepiped, ≈ 0.43 = random points): "
            f"{_summary(lrn('cube_r2'))}. In the full state space: {_summary(lrn('cube_r2_full'))}. With the "
            f"tutorial's uncentred SVD instead of PCA: {_summary(lrn('cube_r2_uncentred_svd'))}. Angles between the "
            f"bit axes (90° = cube; 3 per learner): {_summary(angles)} degrees. Variance in the top 3 PCs: "
            f"{_summary(lrn('pc3_variance'))}. Shortest over longest bit axis: {_summary(lrn('axis_ratio'))}.{sub3}",
            "",
            f"**Fixed points, over the {nL} learners**, a census of the points found ({g['fp_starts']} searches per "
            f"member started on its trajectory, {fp_mod.describe(g['fp_steps'])}): stable points per learner "
            f"{col('fp_stable')[L].astype(int).tolist()}; learners with a stable point beside each of the 8 vertices "
            f"(within a quarter of the smallest vertex spacing): {int(np.sum(matched[L] == 8))}/{nL}"
            + (f" ({int(np.sum(matched[three_l] == 8))}/{n3} of the learners holding 3 bits)" if 0 < n3 < nL else "")
            + f". Saddles per learner: {col('fp_saddle')[L].astype(int).tolist()}, of them with one unstable mode "
            f"{col('fp_saddle_1mode')[L].astype(int).tolist()}; cube edges with a 1-mode saddle: "
            f"{_summary(edges[L])}. Largest |λ| of the Jacobian at a learner's stable points (linearized memory decay "
            f"per step; the Jacobian (1 − a) I + a · diag(tanh') W_rec includes the leak): "
            f"{_summary(lrn('stable_fp_max_abs_lambda'))}. A census counts what the searches reached: more starts "
            "find more saddles (see the reference network's growth below).",
            "",
            f"**Spectrum and regime, over the {nL} learners.** The dynamics' linearisation around h = 0 is {step_map}; "
            f"every frequency and unit-circle count here is its. Spectral radius {_summary(lrn('step_radius'))}; "
            f"eigenvalues outside the unit circle {col('step_n_outside_unit_circle')[L].astype(int).tolist()}; "
            f"leading complex eigenvalue: |λ| {_summary(lrn('step_leading_complex_abs'))}, frequency arg(λ)/(2π·1 ms) "
            f"{_summary(lrn('step_freq_hz'))} Hz (slides' convention Im/(2π·Re): "
            f"{_summary(lrn('step_freq_slides'))}). "
            + (
                ""
                if a == 1.0
                else "W_rec's own spectrum, for reference only (not the network's dynamics at a < 1; what the 2019 "
                f"spectral-migration study tracks): radius {_summary(lrn('W_rec_radius'))}, eigenvalues outside the "
                f"unit circle {col('W_rec_n_outside_unit_circle')[L].astype(int).tolist()}, leading complex "
                f"eigenvalue at {_summary(lrn('W_rec_leading_complex_hz'))} Hz. "
            )
            + f"Regime from the last {_LATE} steps of a {_FREE_RUN}-step zero-input run after the sequence "
            f"(oscillatory when the median relative state speed exceeds 1e-3): {regimes.count('fixed-point')} "
            f"fixed-point, {regimes.count('oscillatory')} oscillatory (n = {nL}).",
            "",
            f"**Similarity across the {nL} learners**: linear CKA (invariant to rotations and isotropic scaling of the "
            "state space, the freedom between realizations; needs no fit and compares different N) between learners' "
            f"trajectories on the test sequence: off-diagonal {_summary(M[np.ix_(L, L)][~np.eye(nL, dtype=bool)])} "
            f"({nL * (nL - 1) // 2} pairs, each counted twice). Average-linkage clusters of the learners at "
            f"1 − CKA ≤ 0.2: {int(clusters[L].max()) + 1} cluster(s), sizes {np.bincount(clusters[L]).tolist()}.",
            "",
            f"**Time-translation invariance, over the {nL} learners** (a +1 pulse of {_STIM_WIDTH} steps on channel 0 "
            f"at onsets {list(_INV_ONSETS)} in a {_INV_T}-step trial with input noise {task.noise:g}, "
            f"{g['n_noise']} noise draws each, output 0 over the {_INV_WINDOW} steps after onset): smallest "
            f"correlation with the first onset's response {_summary(np.asarray(inv.min_corr)[L])}; latency spread "
            f"{_summary(np.asarray(inv.latency_spread)[L])} steps; mean latency {_summary(lrn('inv_latency_mean'))} "
            "steps.",
            "",
        ]
    lines += _comparison(res, rows, ref_res, ref, ref_ev, learned, g, E, same_model, net, pop)
    lines += [
        f"The reference network's census ({ref_census['starts']} searches, {ref_census['converged']} converged): "
        f"{ref_census['stable']} stable points, {ref_census['saddle']} saddles (by number of unstable modes: "
        f"{ref_census['saddle_modes']}), {ref_census['unstable']} unstable; {ref_census['found']} reached by a search "
        f"and {ref_census['mirrored']} added as the mirror −h of a point found (the zero-input map of a tanh network "
        "without bias is odd). How it grows with the number of starts:",
        "",
        md_table(
            ["starts", "converged", "points", "stable", "saddles", "unstable"],
            [[r["starts"], r["converged"], r["points"], r["stable"], r["saddle"], r["unstable"]] for r in growth],
        ),
        "",
    ]
    r = ref
    lines += [
        "## The tutorial's trained network (reference/jarne_2023_flipflop3, N = 400, a = 1)",
        "",
        md_table(
            ["quantity", "value"],
            [
                ["held-out MSE (jaxrnn flipflop3 task)", f"{ref_ev.mse[0]:.4f}"],
                [
                    "distance ‖target − output‖ (an all-zero output's)",
                    f"{ref_ev.distance[0]:.3f} ({ref_ev.zero_distance[0]:.3f})",
                ],
                ["accuracy (fraction of trials the task's band rule accepts)", f"{ref_ev.accuracy[0]:.3f}"],
                ["learned (success on the same held-out trials)", "yes" if r["learned"] else "no"],
                ["cube score R² (top-3 PCs)", f"{r['cube_r2']:.4f}"],
                ["cube score R² (full space)", f"{r['cube_r2_full']:.4f}"],
                ["cube score R² (uncentred SVD)", f"{r['cube_r2_uncentred_svd']:.4f}"],
                ["angles between bit axes (°)", f"{r['angle_01']:.1f}, {r['angle_02']:.1f}, {r['angle_12']:.1f}"],
                ["variance in top 3 PCs", f"{r['pc3_variance']:.3f}"],
                ["shortest / longest bit axis", f"{r['axis_ratio']:.3f}"],
                [
                    "sign accuracy of bits 0, 1, 2 on the test sequence",
                    f"{r['bit0_accuracy']:.3f}, {r['bit1_accuracy']:.3f}, {r['bit2_accuracy']:.3f}",
                ],
                ["fixed points (a census of the points found)", fp_mod.census_text(ref_res["fixed"][0])],
                ["cube vertices with a stable fixed point", f"{r['vertices_with_stable_fp']} of 8"],
                [
                    "largest eigenvalue modulus of the Jacobian at its stable points",
                    f"{r['stable_fp_max_abs_lambda']:.4f}",
                ],
                ["spectral radius of the per-step map (= W_rec's, a = 1)", f"{r['step_radius']:.4f}"],
                ["eigenvalues of the per-step map outside the unit circle", f"{r['step_n_outside_unit_circle']}"],
                [
                    "leading complex eigenvalue of the per-step map: frequency",
                    f"{r['step_freq_hz']:.2f} Hz (arg/2π), {r['step_freq_slides']:.4f} (Im/(2π·Re))",
                ],
                ["regime", r["regime"]],
                [
                    "invariance: min correlation / latency spread",
                    f"{r['inv_min_corr']:.3f} / {r['inv_latency_spread']:.2f} steps",
                ],
            ],
        ),
        "",
        "## Files",
        "",
        "- `members.csv`: one row per member, learners or not (`learned`; distance, zero_distance, MSE, success; cube "
        "score and angles, bits held, axis ratio, fixed-point counts; `step_*`: the per-step map's spectrum, "
        "`W_rec_*`: W_rec's own; regime, invariance, cluster (learners only), CKA with the reference network); "
        "`reference.csv`: the same for the reference network.",
        "- `fixed_points.csv`, `reference_fixed_points.csv`: every distinct fixed point (kind, unstable modes, q, "
        "|λ₁| and frequency of the Jacobian, which includes the leak, norm). `similarity_cka.csv`: the member × "
        "member CKA matrix (every member).",
        "- `figures/`: `cube_scores.png` (the learners' histogram, reference in red), `cubes.png` (several members' "
        "cubes, learners first, and the reference's, stable fixed points as crosses), `trajectory_*.png`, "
        "`fixed_point_counts.png` and `similarity_cka.png` (every member; (i) = did not learn), "
        "`eigenvalues_members.png` (the learners' per-step maps and W_rec's own), `eigenvalues_reference.png`, "
        "`invariance_*.png`.",
        "- `runs/`: the trained ensemble's run directory (not committed; rerunning the command reuses it).",
    ]
    return lines


def _comparison(res, rows, ref_res, ref, ref_ev, learned, g, E, same_model, net, pop) -> list[str]:
    """The section comparing the learners with the tutorial's network (computed by the same code)."""
    L = np.flatnonzero(learned)
    nL = len(L)
    lines = [
        "## Beside the tutorial's network and the 2023 paper",
        "",
        "The 2023 tutorial's picture of a trained 3-bit flip-flop: the 8 memory states at the vertices of a cube in "
        "the top-3 principal components, 8 stable fixed points beside them, and saddles between them that mediate "
        "the bit flips. The tutorial's network is analysed below by the same code as the members, on the same test "
        "sequence and held-out trials.",
        "",
    ]
    if not pop:
        return lines + [f"No comparison: {_FEW} (n = {nL} of {E}).", ""]
    col = lambda key: np.array([r[key] for r in rows], float)[L]  # noqa: E731
    n = g["fp_starts"]
    at = _reference_at(ref_res, n)
    held = col("bits_held")
    lines += [
        (
            f"This ensemble is the tutorial's own model (N = {net.units}, a = {net.alpha:g}, same cell and bias), so "
            "every row compares like with like: the last column says where the tutorial's single network falls "
            f"among the {nL} learners."
            if same_model
            else f"This ensemble's model differs from the tutorial's (N = {net.units}, a = {net.alpha:g} against "
            "N = 400, a = 1): compare the shape of the solution (cube, attractors, saddles), not magnitudes; the "
            "last column only places the tutorial's value among the learners'."
        )
        + (
            f" Fixed-point rows: the members were searched with {n} starts; the reference's census is given at its "
            f"first {n} searches (comparable) and, in parentheses, at all {g['ref_starts']}."
            if n < g["ref_starts"]
            else f" Fixed-point rows: the members were searched with {n} starts, the reference with {g['ref_starts']}."
        ),
        "",
    ]

    def num(label: str, key: str, fmt: str = ".3f", ref_value=None, ref_text: str | None = None) -> list[str]:
        """A row for a per-member number: the learners' median, the reference's value, where it falls."""
        v = ref[key] if ref_value is None else ref_value
        x = col(key)[np.isfinite(col(key))]
        mine = f"{np.median(x):{fmt}}" + ("" if len(x) == nL else f" (n = {len(x)} with a value)") if len(x) else "n/a"
        return [label, mine, ref_text or f"{v:{fmt}}", _position(x, v)]

    def at_all(v) -> str:  # the reference's value at all its starts, when the comparable one used fewer
        return f" ({v} at {g['ref_starts']} starts)" if n < g["ref_starts"] else ""

    regimes = [rows[i]["regime"] for i in L]
    rows_t = [
        ["learned", f"{nL} of {E}", "yes" if ref["learned"] else "no", "—"],
        num("held-out distance ‖target − output‖", "distance"),
        ["all 3 bits held on the test sequence", f"{int(np.sum(held == 3))} of {nL}", f"{ref['bits_held']} bits", "—"],
        num("a cube in the top-3 PCs: R²", "cube_r2"),
        num("variance in the top 3 PCs", "pc3_variance"),
        num("shortest / longest bit axis", "axis_ratio"),
        [
            "a stable fixed point beside each of the 8 vertices",
            f"{int(np.sum(col('vertices_with_stable_fp') == 8))} of {nL} learners",
            f"{at['vertices']} of 8 vertices{at_all(ref['vertices_with_stable_fp'])}",
            "—",
        ],
        num(
            "stable fixed points found",
            "fp_stable",
            ".0f",
            at["stable"],
            f"{at['stable']}{at_all(ref['fp_stable'])}",
        ),
        num(
            "cube edges with a 1-mode saddle between their memory states (of 12)",
            "edges_with_1mode_saddle",
            ".0f",
            at["edges"],
            f"{at['edges']}{at_all(ref['edges_with_1mode_saddle'])}",
        ),
        num(
            "largest eigenvalue modulus of the Jacobian at the stable points (memory decay per step)",
            "stable_fp_max_abs_lambda",
            ".4f",
        ),
        num("per-step map: spectral radius", "step_radius", ".4f"),
        num("per-step map: eigenvalues outside the unit circle", "step_n_outside_unit_circle", ".0f"),
        num("per-step map: frequency of the leading complex eigenvalue (Hz)", "step_freq_hz", ".1f"),
        [
            "regime (fixed-point / oscillatory)",
            f"{regimes.count('fixed-point')} / {regimes.count('oscillatory')}",
            ref["regime"],
            "—",
        ],
        [
            "linear CKA of the trajectories with the tutorial's network",
            f"{np.median(col('cka_with_reference')):.3f}",
            "1",
            "—",
        ],
        num("invariance: smallest correlation across onsets", "inv_min_corr"),
    ]
    header = ["quantity", f"learners (n = {nL}; median)", "the tutorial's network", "the tutorial's among the learners"]
    return lines + [md_table(header, rows_t), ""]


def planned_ensembles(scale: Scale, members: int, tasks, options: dict) -> list[tuple]:
    """`Study.ensembles`: one ensemble."""
    cfg = scale.config(make_task("flipflop3", **scale.grid.get("task", {})))
    return [(f"flipflop3_N{cfg.units}", cfg, members)]


STUDY = Study(
    name=NAME,
    title="3-bit flip-flop: memory cube, fixed points, dynamics across realizations",
    summary="3-bit flip-flop populations: the memory cube, fixed points, spectra and similarity, beside the tutorial's",
    scales=SCALES,
    run=run,
    takes_run=True,
    ensembles=planned_ensembles,
)
