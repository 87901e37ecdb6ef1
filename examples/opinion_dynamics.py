"""Opinion dynamics on a discourse sheaf (Hansen & Ghrist) with stubborn agents.

Agents hold opinions on two topics (stalk ℝ^2). Each pair of neighbours talks about a
shared "discourse" space: an edge maps both agents' opinions into it through their own
(random) framing matrices, and disagreement there costs energy. Stubborn agents never
change their minds: they are pinned. Heat diffusion relaxes everyone else towards the
harmonic extension of the stubborn opinions; we watch the energy fall and draw the
network with the stubborn agents highlighted.

    python examples/opinion_dynamics.py [OUT_DIR]
"""
import os
import sys

import networkx as nx
import numpy as np

import graphsheaf as gs


def main(out="opinion-dynamics"):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    society = nx.connected_watts_strogatz_graph(24, 4, 0.2, seed=7)
    # discourse sheaf: 1-dimensional discourse per conversation, personal framings
    S = gs.random_sheaf(society, dims=2, edge_dims=1, rng=rng)
    stubborn = {0: np.array([1.0, -1.0]), 12: np.array([-1.0, 0.5]), 18: np.array([0.2, 2.0])}
    x0 = {v: rng.standard_normal(2) for v in S}
    gap = gs.spectral_gap(S, stubborn)
    times = np.concatenate([[0.0], np.geomspace(1.0, 10.0 / gap, 8)])  # out to 10 time constants
    traj = gs.heat_diffusion(S, x0, times, boundary=stubborn)
    target = gs.harmonic_extension(S, stubborn)
    print(f"{S.number_of_nodes()} agents, {S.number_of_edges()} conversations, "
          f"{len(stubborn)} stubborn; spectral gap {gap:.4f}")
    for t, state in zip(times, traj.states):
        dist = np.linalg.norm(gs.to_vector(S, state) - gs.to_vector(S, target))
        print(f"  t = {t:7.1f}: disagreement energy {gs.dirichlet_energy(S, state):8.4f}, "
              f"distance to the harmonic extension {dist:.2e}")
    print(f"the stubborn agents leave residual disagreement {target.energy:.4f} "
          "(zero only if their opinions were mutually consistent)")
    c = gs.cohomology(S, relative_to=list(stubborn))
    print(f"relative H^0 = {c.h0}: the stubborn agents determine everyone's opinion")
    energies = gs.edge_energies(S, target)
    gs.write_dot(S, os.path.join(out, "discourse.dot"), pinned=list(stubborn),
                 energies=energies, show_maps=False)
    gs.write_json(S, os.path.join(out, "discourse.json"))
    print(f"wrote {out}/discourse.dot (stubborn agents in red) and {out}/discourse.json")
    return traj, target


if __name__ == "__main__":
    main(*sys.argv[1:2])
