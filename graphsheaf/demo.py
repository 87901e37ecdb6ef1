"""The main demo: a small ReLU network, seen and computed as a sheaf.

Runs on an embedded default (the [2, 4, 1] network of Bosca & Ghrist's convergence
figure, whose weights are the authors' PyTorch seed-7 initialisation written out
here), prints what it finds and writes diagrams and files to a folder.
"""

import os
import shutil

import numpy as np

#: The authors' He initialisation of [2, 4, 1] with torch.manual_seed(7) (float64).
FIG6_WEIGHTS = [
    np.array([[-0.1467950974849952, 0.7861412987235358], [0.9468216090039564, -1.1143440212610307],
              [1.6907901257942333, -0.8948278791726386], [-0.3556250270062136, 1.2323857451651945]]),
    np.array([[0.09770282746796344, -1.1894939567902931, 0.22463249105382202,
               0.09390870520903268]]),
]
FIG6_INPUT = np.array([0.5, -0.3])


def run_demo(out="graphsheaf-demo", print_=print):
    """Run the demo, writing ``neural_sheaf.json`` and diagrams into ``out``."""
    import graphsheaf as gs
    import graphsheaf.neural as gn

    os.makedirs(out, exist_ok=True)
    S = gn.neural_sheaf(FIG6_WEIGHTS, None)
    x = FIG6_INPUT
    p = print_
    p("graphsheaf demo: a [2, 4, 1] ReLU network as a cellular sheaf (Bosca & Ghrist)")
    p("  vertices: " + ", ".join(f"{v} ℝ^{S.nodes[v]['dim']} ({S.nodes[v]['kind']})" for v in S))
    p("  edges:    " + ", ".join(f"{u}->{v} ({S.edges[u, v]['kind']})" for u, v in S.edges))
    tri = gn.check_unitriangular(S, x)
    spec = gn.restricted_spectrum(S, x)
    p(f"\n1. Lemma 3.2: δ_Ω is {tri.n_free}×{tri.n_free}, unit lower triangular: "
      f"{tri.unit_lower_triangular}, det = {tri.det:g}")
    p(f"   L[Ω,Ω] eigenvalues in [{spec.lambda_min:.5f}, {spec.lambda_max:.5f}], "
      f"condition {spec.condition:.2f}")
    f = gn.forward(S, x)
    ext = gs.harmonic_extension(S, gn.forward_boundary(S, x), state=f)
    err = max(float(np.abs(ext[v] - f[v]).max()) for v in S)
    coh = gs.cohomology(S, relative_to=gn.pinned_spec(S), state=f)
    p(f"2. Proposition 3.4: forward pass output {f['z2'][0]:.7f}; generic harmonic extension "
      f"differs by {err:.1e}; relative H^0 = {coh.h0}, energy {gs.dirichlet_energy(S, f, state=f):.1e}")
    heat = gn.heat_equation(S, x, rng=42, tol=1e-13)
    rate = heat.decay_rate(heat.steps // 3, heat.steps)
    p(f"3. Theorem 4.1: heat equation from random stalks converged in {heat.steps} steps "
      f"(dt = 0.01), ReLU switches at steps {heat.switches}; output {heat.state['z2'][0]:.7f}")
    p(f"   energy decay rate {rate:.4f} vs 2·λ_min = {2 * spec.lambda_min:.4f}")
    target = f["z2"][0] + 0.5
    pins = {"z2": {0: target}}
    eq = gn.equilibrium(S, x, pins=pins)
    moved = np.abs(eq.state["z1"] - f["z1"])
    p(f"4. Pinning the output z2 := {target:.4f} (forward {f['z2'][0]:.4f}) pulls the hidden layer "
      f"backwards: z1 moves by up to {moved.max():.3f} (neuron {int(moved.argmax())}), "
      f"a1 by {np.abs(eq.state['a1'][:4] - f['a1'][:4]).max():.3f}")
    where = ", ".join(f"{e[0]}->{e[1]}: {v:.2e}" for e, v in eq.edge_energy.items())
    p(f"   residual energy {eq.energy:.3e} sits on {where}")
    d = gn.discord(S, eq.state)
    p("5. Discord (the paper's ‖δc‖² per edge: twice the energy ½‖δc‖² above) by operation: "
      + ", ".join(f"{k} {v:.2e}" for k, v in d.by_kind.items())
      + "; by layer: " + ", ".join(f"{k}: {v:.2e}" for k, v in d.by_layer.items()))
    gs.write_json(S, os.path.join(out, "neural_sheaf.json"))
    energies = gs.edge_energies(S, eq.state, state=eq.state)
    gs.write_dot(S, os.path.join(out, "neural_sheaf.dot"))
    gs.write_dot(S, os.path.join(out, "pinned_output.dot"), energies=energies,
                 pinned={**gn.pinned_spec(S), "z2": None})
    files = ["neural_sheaf.json", "neural_sheaf.dot", "pinned_output.dot"]
    if shutil.which("dot"):
        gs.render(S, os.path.join(out, "pinned_output.svg"), energies=energies,
                  pinned={**gn.pinned_spec(S), "z2": None})
        files.append("pinned_output.svg")
    p(f"\nwrote {', '.join(os.path.join(out, f) for f in files)}")
    if not shutil.which("dot"):
        p("(install Graphviz to render the .dot files: apt-get install graphviz)")
    return S
