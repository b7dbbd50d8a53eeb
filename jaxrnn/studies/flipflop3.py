"""The 3-bit flip-flop study (Jarne 2023, "Exploring Flip Flop memories and beyond"; Sussillo & Barak 2013;
Jarne & Laje 2019 §5): train an ensemble on `flipflop3` and measure, per member,

  * the memory cube: centroids of the 8 memory states of a noise-free test sequence in the top-3 PCs, and the
    cube score R² of their linear fit on the 3 bits (1 = parallelepiped), with the angles between the bit axes;
  * fixed points of the autonomous map (zero input), stable / saddle / unstable, and how many cube vertices have a
    stable fixed point beside them (8 expected);
  * the spectrum of W_rec (radius, eigenvalues outside the unit circle, leading complex eigenvalue and its
    frequency in both conventions) and a regime label (fixed-point vs oscillatory) from the activity after the
    input stops;
  * linear CKA between every pair of members' trajectories on the test sequence, and clusters of members;
  * time-translation invariance of the response to a pulse presented at several onsets in a longer trial;

and the same for the original tutorial's trained network (`jaxrnn.reference`, `flipflop3_N400_orthogonal`, N = 400).
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
from jaxrnn.evaluate import evaluate
from jaxrnn.network import NetConfig
from jaxrnn.studies.base import Context, Protocol, Scale, Study, log, md_table, write_csv
from jaxrnn.tasks import make_task

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
}

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

    # spectrum of W_rec and the regime from the last steps of the zero-input free run
    W = np.asarray(params["W_rec"])
    regimes = [spectrum.regime(W[i], H_all[i, -_LATE:]) for i in range(E)]
    modes = [spectrum.spectral_summary(W[i]) for i in range(E)]

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
        vertices_matched=np.asarray(matched),
        vertex_distance=np.asarray(nearest),
        edges_with_saddle=np.asarray(edges),
        stable_pc=stable_pc,
        regimes=regimes,
        modes=modes,
        invariance=inv,
    )


def member_rows(res: dict, ids, ev=None, clusters=None, cka_ref=None) -> list[dict]:
    """One CSV row per member."""
    rows = []
    for i, m in enumerate(ids):
        f, r, md, inv = res["fixed"][i], res["regimes"][i], res["modes"][i], res["invariance"]
        row = {"member": m}
        if ev is not None:
            row.update(mse=ev.mse[i], distance=ev.distance[i], accuracy=ev.accuracy[i], success=bool(ev.success[i]))
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
            radius=md.radius,
            n_outside_unit_circle=md.n_outside,
            leading_re=r.leading.real,
            leading_im=r.leading.imag,
            leading_complex_abs=abs(r.leading_complex),
            freq_slides=r.freq_slides,
            freq_map_hz=r.freq_hz,
            regime=r.label,
            late_speed=r.speed,
            inv_min_corr=inv.min_corr[i],
            inv_mean_rel_error=float(np.mean(inv.rel_error[i][1:])),
            inv_latency_mean=float(np.mean(inv.latency[i])),
            inv_latency_spread=inv.latency_spread[i],
        )
        if clusters is not None:
            row["cluster"] = int(clusters[i])
        if cka_ref is not None:
            row["cka_with_reference"] = float(cka_ref[i])
        rows.append(row)
    return rows


def _fp_rows(res: dict, ids) -> list[dict]:
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


def _summary(x) -> str:
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return "n/a"
    return f"{np.median(x):.3f} (median; range {x.min():.3f}–{x.max():.3f}, mean {x.mean():.3f})"


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
    log(f"ensemble: {E} members, median MSE {np.median(ev.mse):.4f}; analysing")
    res = analyse(params, net, task, g, g["fp_starts"])

    M = similarity.similarity_matrix(jnp.asarray(res["states"]), "cka")
    clusters = similarity.cluster_members(M, threshold=0.2)

    # the reference network
    log("reference network")
    ref_params, ref_net = load_reference()
    ref_ev = evaluate(task, ref_net, ref_params, n_trials=sc.protocol.n_eval)
    ref_res = analyse(ref_params, ref_net, task, g, g["ref_starts"])
    cka_ref = np.asarray(
        jax.vmap(lambda h: similarity.linear_cka(h, jnp.asarray(ref_res["states"][0])))(jnp.asarray(res["states"]))
    )

    # files
    rows = member_rows(res, ids, ev, clusters, cka_ref)
    write_csv(out / "members.csv", rows)
    write_csv(out / "fixed_points.csv", _fp_rows(res, ids))
    write_csv(out / "similarity_cka.csv", [{"member": i, **{str(j): M[i, j] for j in ids}} for i in ids])
    ref_rows = member_rows(ref_res, ["reference"], ref_ev)
    write_csv(out / "reference.csv", ref_rows)
    write_csv(out / "reference_fixed_points.csv", _fp_rows(ref_res, ["reference"]))
    names = list(task.conditions)
    figs = out / "figures"
    ref_r2 = float(ref_res["r2"][0])
    plots.cube_scores(res["r2"], figs / "cube_scores.png", reference=ref_r2)
    shown = ids[: min(E, 7)]
    cents = [res["centroids"][i] for i in shown]
    titles = [f"member {i}: R² {res['r2'][i]:.3f}" for i in shown]
    fixed_pc = [res["stable_pc"][i] for i in shown]
    cents.append(ref_res["centroids"][0])
    titles.append(f"reference N=400: R² {ref_r2:.3f}")
    fixed_pc.append(ref_res["stable_pc"][0])
    plots.cubes(cents, names, titles, figs / "cubes.png", fixed=fixed_pc)
    best = int(np.nanargmax(res["r2"]))
    for stale in figs.glob("trajectory_member*.png"):  # an earlier run's best member
        stale.unlink()
    plots.trajectory_3d(
        res["scores"][best],
        res["seq"].label,
        names,
        figs / f"trajectory_member{best}.png",
        centroids=res["centroids"][best],
        fixed=res["stable_pc"][best],
        title=f"member {best}, 8-state test sequence (top-3 PCs)",
    )
    counts = {k: np.array([f.count(k) for f in res["fixed"]]) for k in fp_mod.KINDS}
    plots.fixed_point_counts(counts, figs / "fixed_point_counts.png", [str(i) for i in ids])
    plots.eigenvalues(
        [np.linalg.eigvals(np.asarray(params["W_rec"][i], np.float64)) for i in ids],
        figs / "eigenvalues_W_rec.png",
        title="W_rec eigenvalues, all members",
    )
    plots.similarity(
        M, figs / "similarity_cka.png", [str(i) for i in ids], title="linear CKA of trajectories on the test sequence"
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
    plots.eigenvalues(
        [
            np.linalg.eigvals(np.asarray(ref_params["W_rec"][0], np.float64)),
            *([f.eigvals[f.kind == "stable"][0]] if f.count("stable") else []),
        ],
        figs / "eigenvalues_reference.png",
        labels=["W_rec", "Jacobian at a stable fixed point"][: 1 + bool(f.count("stable"))],
        title="reference network",
    )
    plots.onset_responses(
        np.asarray(ref_res["invariance"].aligned[0]),
        _INV_ONSETS,
        figs / "invariance_reference.png",
        title="reference: output 0 after a +1 pulse",
    )

    return _report_body(res, rows, ref_res, ref_rows, ev, ref_ev, clusters, M, g, E, task.noise)


def _report_body(res, rows, ref_res, ref_rows, ev, ref_ev, clusters, M, g, E, noise) -> list[str]:
    stable = np.array([r["fp_stable"] for r in rows])
    matched = np.array([r["vertices_with_stable_fp"] for r in rows])
    regimes = [r["regime"] for r in rows]
    inv = res["invariance"]
    off = M[~np.eye(E, dtype=bool)] if E > 1 else np.array([np.nan])
    held = np.array([r["bits_held"] for r in rows])
    three = held == 3
    n3 = int(three.sum())
    sub = lambda key: np.array([r[key] for r in rows], float)[three]  # noqa: E731
    edges = np.array([r["edges_with_1mode_saddle"] for r in rows])
    ref = ref_rows[0]
    ref_census = fp_mod.census(ref_res["fixed"][0])
    growth = fp_mod.census_growth(ref_res["fixed"][0], [n for n in (32, 64, 128, 256, 512) if n <= g["ref_starts"]])
    lines = [
        "## Reading",
        "",
        f"{n3} of {E} members hold all 3 bits (bits held per member: {held.tolist()}; a bit is held when the sign of "
        "its output is right on ≥ 90% of the settled steps of the noise-free 8-pattern test sequence, whose slowest "
        f"bit is held for {4 * g['hold']} steps) and {int(ev.success.sum())} of {E} succeed on held-out trials of the "
        "training task. A member that holds k < 3 bits has a collapsed cube: its 8 memory states fall on 2^k points, "
        "the cube score R² can still read near 1 (a degenerate parallelepiped is linear in the bits) while the axis "
        "ratio is near 0. So the cube statistics below are computed over the members that hold 3 bits"
        + (f" (n = {n3})" if n3 else " (none does: there is no cube to describe)")
        + "; the table lists every member's bits held and axis ratio beside its R².",
        "",
        "## Results",
        "",
        f"Ensemble of {E} members. Training: median held-out MSE {np.median(ev.mse):.4f} "
        f"(range {ev.mse.min():.4f}–{ev.mse.max():.4f}); {int(ev.success.sum())}/{E} members succeed; zero output "
        "scores MSE ≈ 0.63.",
        "",
        md_table(
            [
                "member",
                "bits held",
                "success",
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
                    r["bits_held"],
                    "yes" if r.get("success") else "no",
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
        f"**The cube, over the {n3} members that hold 3 bits** (R² of the linear fit of the 8 memory-state centroids "
        "on the 3 bits, in the top-3 PCs of the test sequence; 1 = parallelepiped, ≈ 0.43 = random points): "
        + (
            f"{_summary(sub('cube_r2'))}. In the full state space: {_summary(sub('cube_r2_full'))}. With the "
            f"tutorial's uncentred SVD instead of PCA: {_summary(sub('cube_r2_uncentred_svd'))}. Angles between the "
            f"bit axes (90° = cube): {_summary(np.concatenate([sub(k) for k in ('angle_01', 'angle_02', 'angle_12')]))}"
            f" degrees. Variance in the top 3 PCs: {_summary(sub('pc3_variance'))}. Shortest over longest bit axis: "
            f"{_summary(sub('axis_ratio'))}."
            if n3
            else "none."
        ),
        "",
        f"**Fixed points**, a census of the points found ({g['fp_starts']} searches per member started on its "
        f"trajectory, {fp_mod.describe(g['fp_steps'])}): stable points per member {stable.tolist()}; members with a "
        f"stable point beside each of the 8 vertices (within a quarter of the smallest vertex spacing): "
        f"{int(np.sum(matched == 8))}/{E} ({int(np.sum(matched[three] == 8))}/{n3} of those holding 3 bits). "
        f"Saddles per member: {[r['fp_saddle'] for r in rows]}, of them with one unstable mode "
        f"{[r['fp_saddle_1mode'] for r in rows]}. Largest |λ| of the Jacobian at a member's stable points (linearized "
        f"memory decay per step): {_summary([r['stable_fp_max_abs_lambda'] for r in rows])}. A census counts what "
        "the searches reached: more starts find more saddles (see the reference network's growth below).",
        "",
        "## Beside the tutorial's network and the 2023 paper",
        "",
        "The 2023 tutorial's picture of a trained 3-bit flip-flop: the 8 memory states at the vertices of a cube in "
        "the top-3 principal components, 8 stable fixed points beside them, and saddles between them that mediate "
        "the bit flips.",
        "",
        md_table(
            ["claim", f"jaxrnn members holding 3 bits (n = {n3})", "the tutorial's network (N = 400)"],
            [
                [
                    "a cube in the top-3 PCs: R² / variance in 3 PCs / axis ratio",
                    f"{np.median(sub('cube_r2')):.3f} / {np.median(sub('pc3_variance')):.3f} / "
                    f"{np.median(sub('axis_ratio')):.3f} (medians)"
                    if n3
                    else "—",
                    f"{ref['cube_r2']:.3f} / {ref['pc3_variance']:.3f} / {ref['axis_ratio']:.3f}",
                ],
                [
                    "a stable fixed point beside each of the 8 vertices",
                    f"{int(np.sum(matched[three] == 8))} of {n3} members (vertices matched: {matched[three].tolist()})"
                    if n3
                    else "—",
                    f"{ref['vertices_with_stable_fp']} of 8 vertices",
                ],
                [
                    "saddles between adjacent memory states (edges of the cube with a 1-mode saddle)",
                    f"median {np.median(edges[three]):.0f} of 12 ({edges[three].tolist()})" if n3 else "—",
                    f"{ref['edges_with_1mode_saddle']} of 12",
                ],
            ],
        ),
        "",
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
        f"**Spectrum and regime**: spectral radius of W_rec {_summary([r['radius'] for r in rows])}; eigenvalues "
        f"outside the unit circle {[r['n_outside_unit_circle'] for r in rows]}; frequency of the leading complex "
        f"eigenvalue, continuous-time convention arg(λ)/(2π·1 ms): {_summary([r['freq_map_hz'] for r in rows])} Hz; "
        f"slides' convention Im/(2π·Re): {_summary([r['freq_slides'] for r in rows])}. Regime from the last "
        f"{_LATE} steps of a {_FREE_RUN}-step zero-input run after the sequence (oscillatory when the median relative "
        f"state speed exceeds 1e-3): {regimes.count('fixed-point')} fixed-point, {regimes.count('oscillatory')} "
        "oscillatory.",
        "",
        "**Similarity across realizations**: linear CKA (invariant to rotations and isotropic scaling of the "
        "state space, the freedom between realizations; needs no fit and compares different N) between members' "
        f"trajectories on the test sequence: off-diagonal {_summary(off)}. Average-linkage clusters at 1 − CKA ≤ 0.2: "
        f"{int(clusters.max()) + 1} cluster(s), sizes {np.bincount(clusters).tolist()}.",
        "",
        f"**Time-translation invariance** (a +1 pulse of {_STIM_WIDTH} steps on channel 0 at onsets "
        f"{list(_INV_ONSETS)} in a {_INV_T}-step trial with input noise {noise:g}, {g['n_noise']} noise draws each, "
        f"output 0 over the {_INV_WINDOW} steps after onset): smallest correlation with the first onset's response "
        f"{_summary(inv.min_corr)}; latency spread {_summary(inv.latency_spread)} steps; mean latency "
        f"{_summary([r['inv_latency_mean'] for r in rows])} steps.",
        "",
    ]
    r = ref_rows[0]
    lines += [
        "## The tutorial's trained network (reference/jarne_2023_flipflop3, N = 400)",
        "",
        md_table(
            ["quantity", "value"],
            [
                ["held-out MSE (jaxrnn flipflop3 task)", f"{ref_ev.mse[0]:.4f}"],
                ["accuracy (every response window on the right side of 0)", f"{ref_ev.accuracy[0]:.3f}"],
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
                ["spectral radius of W_rec", f"{r['radius']:.4f}"],
                ["eigenvalues outside the unit circle", f"{r['n_outside_unit_circle']}"],
                [
                    "leading complex eigenvalue frequency",
                    f"{r['freq_map_hz']:.2f} Hz (arg/2π), {r['freq_slides']:.4f} (Im/(2π·Re))",
                ],
                ["regime", r["regime"]],
                [
                    "invariance: min correlation / latency spread",
                    f"{r['inv_min_corr']:.3f} / {r['inv_latency_spread']:.2f} steps",
                ],
            ],
        ),
        "",
    ]
    lines += [
        "## Files",
        "",
        "- `members.csv`: one row per member (metrics, cube score and angles, fixed-point counts, spectrum, regime, "
        "invariance, cluster, CKA with the reference network); `reference.csv`: the same for the reference network.",
        "- `fixed_points.csv`, `reference_fixed_points.csv`: every distinct fixed point (kind, unstable modes, q, "
        "|λ₁|, norm). `similarity_cka.csv`: the member × member CKA matrix.",
        "- `figures/`: `cube_scores.png` (ensemble histogram, reference in red), `cubes.png` (several members' "
        "cubes and the reference's, stable fixed points as crosses), `trajectory_*.png`, `fixed_point_counts.png`, "
        "`eigenvalues_*.png`, `similarity_cka.png`, `invariance_*.png`.",
        "- `runs/`: the trained ensemble's run directory (not committed; rerunning the command reuses it).",
    ]
    return lines


STUDY = Study(
    name=NAME,
    title="3-bit flip-flop: memory cube, fixed points, dynamics across realizations",
    summary="3-bit flip-flop populations: the memory cube, fixed points, spectra and similarity, beside the tutorial's",
    scales=SCALES,
    run=run,
    takes_run=True,
)
