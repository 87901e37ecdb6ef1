"""Operations other sheaf libraries have: morphisms, pushforward/pullback, constructions,
weighted/normalised/edge Laplacians, Hodge decomposition, nearest sections, consistency
radius, finite fields, complex sheaves. Tests are identities and published examples."""
from fractions import Fraction

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphsheaf as gs

from .strategies import random_sheaves


def twisted_cycle(n, twist=-1.0):
    G = gs.constant_sheaf(nx.cycle_graph(n))
    e = list(G.edges)[-1]
    G.edges[e]["target_map"] = np.array([[twist]])
    return G


def dims(S):
    c = gs.cohomology(S, bases=False)
    return c.h0, c.h1


# ----------------------------------------------------------------------- Laplacians

def test_weighted_normalized_constant_sheaf_is_networkx_normalized_laplacian():
    # Hansen & Ghrist 2019 (spectral theory of cellular sheaves), §3.4: for the constant
    # sheaf ℝ the normalised sheaf Laplacian is the graph's normalised Laplacian
    G = nx.gnm_random_graph(25, 50, seed=3)
    G.add_node(99)  # isolated: networkx leaves its row zero, so do we
    rng = np.random.default_rng(0)
    for u, v in G.edges:
        G.edges[u, v]["weight"] = float(rng.uniform(0.1, 3))
    S = gs.constant_sheaf(G)
    ours = gs.sheaf_laplacian(S, weight="weight", normalized=True).toarray()
    ref = nx.normalized_laplacian_matrix(G, weight="weight").toarray()
    assert np.allclose(ours, ref, atol=1e-13)
    assert np.allclose(gs.sheaf_laplacian(S, weight="weight").toarray(),
                       nx.laplacian_matrix(G, weight="weight").toarray())


@given(random_sheaves(max_nodes=6, max_dim=3, self_loops=False))
@settings(max_examples=40, deadline=None)
def test_weights_equal_maps_scaled_by_sqrt_w(G):
    rng = np.random.default_rng(1)
    H = G.copy()
    for e in G.edges:
        w = float(rng.uniform(0.2, 4))
        G.edges[e]["w"] = w
        H.edges[e]["source_map"] = np.sqrt(w) * G.edges[e]["source_map"]
        H.edges[e]["target_map"] = np.sqrt(w) * G.edges[e]["target_map"]
    assert np.allclose(gs.sheaf_laplacian(G, weight="w").toarray(), gs.sheaf_laplacian(H).toarray())
    assert np.allclose(gs.edge_laplacian(G, weight="w").toarray(), gs.edge_laplacian(H).toarray())


def _block_condition(L, dims):
    """The largest condition number of L's diagonal blocks on their numerical range (the
    part D^{-1/2} inverts): rounding in D^{-1/2} L D^{-1/2} grows with it."""
    starts, worst = np.r_[0, np.cumsum(dims)], 1.0
    for a, b in zip(starts[:-1], starts[1:]):
        lam = np.linalg.eigvalsh(L[a:b, a:b]) if b > a else np.zeros(0)
        lam = lam[lam > lam.max(initial=0.0) * (b - a) * np.finfo(float).eps * 10]
        if lam.size:
            worst = max(worst, lam.max() / lam.min())
    return worst


@given(random_sheaves(max_nodes=6, max_dim=3))
@settings(max_examples=40, deadline=None)
def test_normalized_spectrum_in_0_2_and_kernel_is_h0(G):
    # Hansen & Ghrist 2019, Prop. 3.13 analogue: the normalised Laplacian's spectrum lies in
    # [0, 2]; D^{1/2} carries ker L onto its kernel when every block of D is invertible.
    # The bound is exact; the computed spectrum is off by rounding times the conditioning of
    # D's blocks (a block of condition 1.8e5 gave 2 + 2.5e-11, 630 eps times the condition;
    # a rarer draw in CI went past a fixed 1e-9)
    Ln = gs.sheaf_laplacian(G, normalized=True).toarray()
    w = np.linalg.eigvalsh(Ln) if Ln.size else np.zeros(0)
    dims = [G.nodes[v]["dim"] for v in G]
    tol = 1e-9 + 1e4 * np.finfo(float).eps * _block_condition(gs.sheaf_laplacian(G).toarray(), dims)
    assert np.all(w > -tol) and np.all(w < 2 + tol)
    Lg = gs.sheaf_laplacian(G, normalized="augmented").toarray()
    wa = np.linalg.eigvalsh(Lg) if Lg.size else np.zeros(0)
    assert np.all(wa > -1e-9) and np.all(wa < 2 + 1e-9)


@given(random_sheaves(max_nodes=6, max_dim=3))
@settings(max_examples=40, deadline=None)
def test_edge_laplacian_shares_nonzero_spectrum_and_kernel_is_h1(G):
    L0 = gs.sheaf_laplacian(G).toarray()
    L1 = gs.edge_laplacian(G).toarray()
    nz = lambda M: np.sort(np.linalg.eigvalsh(M)[np.linalg.eigvalsh(M) > 1e-8]) if M.size else []
    assert np.allclose(nz(L0), nz(L1), atol=1e-7)
    c = gs.cohomology(G, method="dense", bases=False)
    assert L1.shape[0] - np.linalg.matrix_rank(L1, tol=1e-8) == c.h1 if L1.size else c.h1 == 0


def test_negative_edge_weight_refused_by_edge_laplacian():
    S = gs.constant_sheaf(nx.path_graph(3))
    S.edges[1, 2]["weight"] = -1.0
    with pytest.raises(gs.SheafError, match=r"\(1, 2\).*negative"):
        gs.edge_laplacian(S, weight="weight")


# ------------------------------------------------------------------ Hodge and sections

@given(random_sheaves(max_nodes=6, max_dim=3), st.integers(0, 2**31))
@settings(max_examples=40, deadline=None)
def test_hodge_parts_orthogonal_and_summing(G, seed):
    rng = np.random.default_rng(seed)
    D = gs.coboundary_matrix(G).toarray()
    y = rng.standard_normal(D.shape[0])
    h = gs.hodge_decomposition(G, y)
    assert np.allclose(h.image + h.harmonic, y)
    assert abs(h.image @ h.harmonic) < 1e-8 * (1 + y @ y)
    assert np.allclose(D.T @ h.harmonic, 0, atol=1e-8)          # harmonic: in ker δᵀ
    assert np.allclose(D @ h.potential, h.image, atol=1e-8)    # image: a coboundary
    x = rng.standard_normal(D.shape[1])
    h0 = gs.hodge_decomposition(G, x, degree=0)
    assert np.allclose(h0.harmonic + h0.coimage, x)
    assert np.allclose(D @ h0.harmonic, 0, atol=1e-8)          # a global section
    assert abs(h0.harmonic @ h0.coimage) < 1e-8 * (1 + x @ x)


def test_hodge_harmonic_part_is_projection_on_h1_basis():
    S = gs.random_sheaf(nx.petersen_graph(), 2, 2, rng=4)
    c = gs.cohomology(S, bases=True)
    y = np.random.default_rng(2).standard_normal(c.dim_c1)
    h = gs.hodge_decomposition(S, y)
    assert np.allclose(h.harmonic, c.h1_basis @ (c.h1_basis.T @ y))


def test_hodge_sparse_path_agrees_with_dense(monkeypatch):
    import graphsheaf.hodge as hodge
    S = gs.random_connection_sheaf(nx.grid_2d_graph(6, 6), 2, rng=3)
    y = np.random.default_rng(0).standard_normal((gs.cochain_dim(S, 1), 2))
    dense = gs.hodge_decomposition(S, y)
    monkeypatch.setattr(hodge, "DENSE_LIMIT", 0)
    sparse = gs.hodge_decomposition(S, y)
    assert np.allclose(dense.harmonic, sparse.harmonic, atol=1e-8)


def test_nearest_section_is_the_limit_of_the_heat_flow():
    # Hansen & Ghrist 2019, Prop. 4.1 / Hansen & Ghrist 2021 (opinion dynamics on discourse
    # sheaves), Thm 4.1: the heat flow converges to the orthogonal projection of x(0) onto H⁰
    S = gs.random_connection_sheaf(nx.cycle_graph(7), 3, rng=5, consistent=True)
    rng = np.random.default_rng(0)
    x0 = {v: rng.standard_normal(3) for v in S}
    near = gs.nearest_section(S, x0)
    limit = gs.heat_diffusion(S, x0, 400.0)
    for v in S:
        assert np.allclose(near.section[v], limit[v], atol=1e-8)
    x = gs.to_vector(S, x0)
    assert np.isclose(near.distance, np.linalg.norm(x - near.vector))
    assert gs.nearest_section(S, near.section).distance < 1e-10


# ---------------------------------------------------------------------- consistency

def test_consistency_radius_zero_exactly_on_sections_and_half_difference():
    F = gs.constant_sheaf(nx.path_graph(3))
    assert gs.consistency_radius(F, {0: [2.0], 1: [2.0], 2: [2.0]}) == 0.0
    r, per = gs.consistency_radius(F, {0: [0.0], 1: [1.0], 2: [5.0]}, per_edge=True)
    assert r == 2.0 and per == {(0, 1): 0.5, (1, 2): 2.0}
    # PySheaf's convention compares the two propagated values in full
    assert gs.consistency_radius(F, {0: [0.0], 1: [1.0], 2: [5.0]}, edge_completion="pairwise") == 4.0
    # a partial assignment: relations at the unassigned vertex are not counted
    assert gs.consistency_radius(F, {0: [0.0], 2: [5.0]}) == 0.0
    # an edge value is compared with both propagated values (Robinson 2017's definition)
    assert gs.consistency_radius(F, {0: [0.0], 1: [1.0]}, edge_values={(0, 1): [3.0]}) == 3.0


def test_consistency_radius_of_the_nearest_section_is_zero_and_norms_combine():
    S = gs.random_sheaf(nx.cycle_graph(5), 2, 1, rng=0)
    near = gs.nearest_section(S, {v: np.ones(2) for v in S})
    assert gs.consistency_radius(S, near.section) < 1e-10
    a = {v: np.arange(2.0) + v for v in S}
    r_inf = gs.consistency_radius(S, a)
    r_2 = gs.consistency_radius(S, a, norm=2, combine=2)
    D = gs.coboundary_matrix(S)
    assert np.isclose(r_2, 0.5 * np.linalg.norm(D @ gs.to_vector(S, a)))
    assert np.isclose(r_inf, 0.5 * np.abs(D @ gs.to_vector(S, a)).max())


def test_consistency_radius_names_bad_input():
    F = gs.constant_sheaf(nx.path_graph(2))
    with pytest.raises(gs.SheafError, match="'x'"):
        gs.consistency_radius(F, {"x": [1.0]})
    with pytest.raises(gs.SheafError, match="node 0.*2 entries"):
        gs.consistency_radius(F, {0: [1.0, 2.0]})


# ------------------------------------------------------------------- constructions

@given(random_sheaves(max_nodes=5, max_dim=2, multigraph=False), st.integers(0, 2**31))
@settings(max_examples=30, deadline=None)
def test_direct_sum_adds_and_restrict_equals_subgraph(G, seed):
    H = G.copy()
    rng = np.random.default_rng(seed)
    for e in H.edges:
        for k in ("source_map", "target_map"):
            H.edges[e][k] = rng.standard_normal(H.edges[e][k].shape)
    s = gs.direct_sum(G, H)
    a, b, c = dims(G), dims(H), dims(s)
    assert c == (a[0] + b[0], a[1] + b[1])
    nodes = list(G)[: max(1, len(G) // 2)]
    assert np.allclose(gs.sheaf_laplacian(gs.restrict(G, nodes)).toarray(),
                       gs.sheaf_laplacian(G.subgraph(nodes)).toarray())


def test_tensor_product_of_twists_and_with_constant():
    T = twisted_cycle(5)
    assert dims(T) == (0, 0)
    assert dims(gs.tensor_product(T, T)) == (1, 1)            # (−1)(−1) = 1
    C2 = gs.constant_sheaf(nx.cycle_graph(5), dim=2)
    assert dims(gs.tensor_product(T, C2)) == (0, 0)           # two copies of the twist
    S = gs.random_connection_sheaf(nx.cycle_graph(5), 2, rng=1)
    # ℝ ⊗ S = S
    assert np.allclose(gs.sheaf_laplacian(gs.tensor_product(gs.constant_sheaf(nx.cycle_graph(5)), S)).toarray(),
                       gs.sheaf_laplacian(S).toarray())


def test_dual_pairs_sections_and_keeps_dimensions():
    rng = np.random.default_rng(0)
    S = gs.constant_sheaf(nx.cycle_graph(6), dim=3)
    for e in S.edges:  # a GL(3) local system: invertible, not orthogonal
        S.edges[e]["source_map"] = np.eye(3) + 0.3 * rng.standard_normal((3, 3))
    S.edges[0, 1]["source_map"] = np.eye(3)
    Sd = gs.dual(S)
    assert dims(Sd) == dims(S)
    # ⟨A x, (A⁻¹)ᵀ y⟩ = ⟨x, y⟩ edge by edge
    for e in S.edges:
        A, Ad = S.edges[e]["source_map"], Sd.edges[e]["source_map"]
        assert np.allclose(A.T @ Ad, np.eye(3))
    O = gs.random_connection_sheaf(nx.cycle_graph(6), 3, group="O", rng=2)
    assert all(np.allclose(O.edges[e]["source_map"], gs.dual(O).edges[e]["source_map"]) for e in O.edges)
    P = gs.constant_sheaf(nx.path_graph(2))
    P.edges[0, 1]["source_map"] = np.zeros((1, 1))
    with pytest.raises(gs.SheafError, match="0 -> 1.*not invertible"):
        gs.dual(P)


def test_constructions_need_the_same_graph():
    with pytest.raises(gs.SheafError, match="one sheaf only"):
        gs.direct_sum(gs.constant_sheaf(nx.path_graph(3)), gs.constant_sheaf(nx.DiGraph([(1, 0), (1, 2)])))


def test_connection_sheaves_euler_rotation_theorem():
    # Euler: every rotation of ℝ³ fixes an axis, so an SO(3) connection on a cycle has a
    # one-dimensional H⁰; a generic SO(2) holonomy fixes nothing; O(d) maps are orthogonal
    cyc = nx.cycle_graph(7)
    assert gs.cohomology(gs.random_connection_sheaf(cyc, 3, "SO", rng=0)).h0 == 1
    assert gs.cohomology(gs.random_connection_sheaf(cyc, 2, "SO", rng=0)).h0 == 0
    R = gs.random_connection_sheaf(nx.petersen_graph(), 4, "O", rng=3)
    for e in R.edges:
        A = R.edges[e]["source_map"]
        assert np.allclose(A.T @ A, np.eye(4))
    S = gs.random_connection_sheaf(nx.petersen_graph(), 3, "SO", rng=3)
    assert all(np.isclose(np.linalg.det(S.edges[e]["source_map"]), 1) for e in S.edges)
    flat = gs.random_connection_sheaf(nx.petersen_graph(), 3, rng=4, consistent=True)
    assert gs.cohomology(flat).h0 == 3
    with pytest.raises(gs.SheafError, match="not orthogonal"):
        gs.connection_sheaf(nx.path_graph(2), {(0, 1): 2 * np.eye(2)}, orthogonal=True)
    with pytest.raises(gs.SheafError, match="no transport"):
        gs.connection_sheaf(nx.path_graph(3), {(0, 1): np.eye(2)})


def test_connection_sheaf_reverse_key_uses_inverse_transport():
    R = np.array([[0.0, -1.0], [1.0, 0.0]])
    S = gs.connection_sheaf(nx.path_graph(2), {(1, 0): R})
    x = gs.harmonic_extension(S, {0: [1.0, 0.0]})
    assert np.allclose(x[1], np.linalg.inv(R) @ [1.0, 0.0])


# --------------------------------------------------------------- pushforward, pullback

@given(random_sheaves(max_nodes=7, max_dim=2, multigraph=False, self_loops=False), st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_pushforward_keeps_global_sections(G, k):
    # Curry 2014, §4: Γ(H; f_*F) ≅ Γ(G; F)
    f = {v: v % k for v in G}
    P = gs.pushforward(G, f)
    assert gs.cohomology(P, bases=False, method="dense").h0 == gs.cohomology(G, bases=False, method="dense").h0
    # a global section of F read in the fibre bases is a global section of f_*F
    c = gs.cohomology(G, bases=True, method="dense")
    if c.h0:
        x = gs.to_assignment(G, c.h0_basis[:, 0])
        y = {w: P.nodes[w]["fiber_basis"].T @ np.concatenate([x[v] for v in P.nodes[w]["fiber"]] or [np.zeros(0)])
             for w in P}
        assert gs.dirichlet_energy(P, y) < 1e-16 * (1 + sum(np.sum(v ** 2) for v in y.values()))


def test_pushforward_to_a_point_is_global_sections_and_target_edges():
    F = gs.random_connection_sheaf(nx.cycle_graph(8), 2, rng=0, consistent=True)
    P = gs.pushforward(F, {v: "*" for v in F})
    assert list(P.nodes(data="dim")) == [("*", 2)]
    H = nx.DiGraph([(0, 1), (1, 2), (2, 3)])
    Q = gs.pushforward(gs.constant_sheaf(nx.path_graph(3)), {0: 0, 1: 1, 2: 2}, target=H)
    assert Q.nodes[3]["dim"] == 0 and Q.edges[2, 3]["source_map"].shape == (0, 1)
    with pytest.raises(gs.SheafError, match="not an edge of the target"):
        gs.pushforward(gs.constant_sheaf(nx.path_graph(3)), {0: 0, 1: 1, 2: 2},
                       target=nx.DiGraph([(0, 1), (2, 0)]))
    with pytest.raises(gs.SheafError, match="to 2, which is not a node of the target"):
        gs.pushforward(gs.constant_sheaf(nx.path_graph(3)), {0: 0, 1: 1, 2: 2}, target=nx.DiGraph([(0, 1)]))


def test_pullback_along_double_cover_untwists_and_identity_is_identity():
    # the connected double cover of the Möbius (−1) twisted cycle is the untwisted cycle
    M = twisted_cycle(4)
    C8 = nx.cycle_graph(8)
    P = gs.pullback(M, {v: v % 4 for v in C8}, C8)
    assert dims(M) == (0, 0) and dims(P) == (1, 1)
    S = gs.random_sheaf(nx.petersen_graph(), 2, 1, rng=0)
    Id = gs.pullback(S, {v: v for v in S}, nx.DiGraph(S.edges))
    assert np.allclose(gs.sheaf_laplacian(Id, nodelist=list(S)).toarray(), gs.sheaf_laplacian(S).toarray())
    # collapsing an edge pulls back the identity
    Q = gs.pullback(gs.constant_sheaf(nx.path_graph(2), dim=2), {"a": 0, "b": 0, "c": 1},
                    nx.DiGraph([("a", "b"), ("b", "c")]))
    assert np.allclose(Q.edges["a", "b"]["source_map"], np.eye(2))
    with pytest.raises(gs.SheafError, match="not a graph homomorphism"):
        gs.pullback(gs.constant_sheaf(nx.path_graph(3)), {"a": 0, "b": 2}, nx.DiGraph([("a", "b")]))


def test_pullback_default_domain_is_the_preimage_graph():
    P = gs.pullback(gs.constant_sheaf(nx.path_graph(2)), {"a": 0, "b": 0, "c": 1})
    assert set(P.edges) == {("a", "c"), ("b", "c")}


# ----------------------------------------------------------------------- morphisms

def test_morphism_functoriality_on_induced_maps():
    # constant sheaves ℝ^a on one graph: any matrix M gives a morphism (M at every vertex
    # and edge), and H^k(ℝ^a) = H^k(ℝ) ⊗ ℝ^a, so the induced maps compose like the Ms
    g = nx.petersen_graph()
    F1, F2, F3 = (gs.constant_sheaf(g, dim=d) for d in (2, 3, 2))
    rng = np.random.default_rng(0)
    M1, M2 = rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    phi = gs.SheafMorphism(F1, F2, {v: M1 for v in g})
    psi = gs.SheafMorphism(F2, F3, {v: M2 for v in g})
    assert phi.is_valid() and psi.is_valid()
    c1, c2, c3 = (gs.cohomology(F, bases=True) for F in (F1, F2, F3))
    for k in (0, 1):
        a = gs.induced_map(phi, k, source_cohomology=c1, target_cohomology=c2)
        b = gs.induced_map(psi, k, source_cohomology=c2, target_cohomology=c3)
        ab = gs.induced_map(psi @ phi, k, source_cohomology=c1, target_cohomology=c3)
        assert np.allclose(b @ a, ab)
        assert np.linalg.matrix_rank(ab) == np.linalg.matrix_rank(M2 @ M1) * (1 if k == 0 else 6)
    ident = gs.induced_map(gs.SheafMorphism.identity(F2), 1, source_cohomology=c2, target_cohomology=c2)
    assert np.allclose(ident, np.eye(c2.h1))


def test_invalid_morphism_names_the_edge():
    F = gs.constant_sheaf(nx.path_graph(3))
    phi = gs.SheafMorphism(F, F, {0: np.eye(1), 1: np.eye(1), 2: 2 * np.eye(1)},
                           {(0, 1): np.eye(1), (1, 2): np.eye(1)})
    assert not phi.is_valid()
    with pytest.raises(gs.SheafError, match="at edge 1 -> 2"):
        phi.check()
    with pytest.raises(gs.SheafError, match="node 1.*shape"):
        gs.SheafMorphism(F, F, {0: np.eye(1), 1: np.eye(2), 2: np.eye(1)})


def test_kernel_image_cokernel_are_exact():
    # φ = projection ℝ² -> ℝ onto the first coordinate, on a twisted/untwisted pair
    g = nx.cycle_graph(5)
    F = gs.constant_sheaf(g, dim=2)
    G = gs.constant_sheaf(g, dim=1)
    phi = gs.SheafMorphism(F, G, {v: np.array([[1.0, 0.0]]) for v in g})
    ker, im, cok = phi.kernel(), phi.image(), phi.cokernel()
    for m in (ker, im, cok):
        assert m.is_valid()
    assert (phi @ ker).mismatch() and max(np.abs((phi @ ker).vertex_matrix().toarray()).ravel()) < 1e-12
    assert all(ker.source.nodes[v]["dim"] == 1 and im.source.nodes[v]["dim"] == 1 and
               cok.target.nodes[v]["dim"] == 0 for v in g)
    assert dims(ker.source) == (1, 1)
    # rank–nullity stalk by stalk: dim ker + dim im = dim F
    assert all(ker.source.nodes[v]["dim"] + im.source.nodes[v]["dim"] == 2 for v in g)


def test_inferred_edge_maps_satisfy_commutation_when_determined():
    S = gs.random_connection_sheaf(nx.cycle_graph(5), 2, rng=1)
    phi = gs.SheafMorphism(S, S, {v: 3.0 * np.eye(2) for v in S})
    assert phi.is_valid()
    assert all(np.allclose(M, 3 * np.eye(2)) for M in phi.edge_maps.values())


# ------------------------------------------------------------------- finite fields

def mobius(source=1, target=-1):
    M = nx.DiGraph()
    M.add_node(0, dim=1)
    M.add_edge(0, 0, source_map=np.array([[source]]), target_map=np.array([[target]]))
    return M


def test_mobius_band_over_gf2_and_gf3():
    # the example of the issue: δ = −2 is invertible over ℚ, zero over GF(2)
    assert dims(mobius()) == (0, 0)
    c = gs.cohomology(mobius(), field=2, bases=True)
    assert (c.h0, c.h1, c.field, c.method) == (1, 1, 2, "exact mod 2")
    assert c.h0_basis.tolist() == [[1]] and c.h1_basis.tolist() == [[1]]
    assert (gs.cohomology(mobius(), field=3).h0, gs.cohomology(mobius(1, -2), field=3).h0) == (0, 1)


def _hadamard_bound(D):
    return float(np.prod(np.maximum(np.linalg.norm(D, axis=0), 1.0)))


PRIMES = [2, 3, 5, 7, 11, 13, 101, 1_000_003, 2_147_483_647]


@given(random_sheaves(max_nodes=5, max_dim=2, integer=True))
@settings(max_examples=50, deadline=None)
def test_gf_p_agrees_with_q_when_p_divides_no_elementary_divisor(G):
    # every nonzero minor of δ is at most Hadamard's bound; a prime above it divides none of
    # them, hence none of δ's elementary divisors, and the ranks over ℚ and GF(p) agree
    D = gs.coboundary_matrix(G).toarray()
    q = gs.cohomology(G, method="exact", bases=False)
    p = next(p for p in PRIMES if p > _hadamard_bound(D))
    c = gs.cohomology(G, field=p, bases=True)
    assert (c.h0, c.h1) == (q.h0, q.h1)
    # the GF(p) bases: kernel vectors of δ mod p, and unit vectors completing the image
    Di = np.rint(D).astype(object)
    assert all(x % p == 0 for x in (Di.dot(c.h0_basis.astype(object))).ravel())
    full = np.hstack([D, c.h1_basis]) if D.size else c.h1_basis
    if full.size:
        assert _rank_mod_p(full, p) == D.shape[0]


def _rank_mod_p(M, p):
    """Rank over GF(p) by plain Gaussian elimination (independent of the library's)."""
    A = [[int(round(x)) % p for x in row] for row in M.tolist()]
    rank, rows, cols = 0, len(A), len(A[0]) if A else 0
    for c in range(cols):
        piv = next((r for r in range(rank, rows) if A[r][c]), None)
        if piv is None:
            continue
        A[rank], A[piv] = A[piv], A[rank]
        inv = pow(A[rank][c], -1, p)
        A[rank] = [x * inv % p for x in A[rank]]
        for r in range(rows):
            if r != rank and A[r][c]:
                f = A[r][c]
                A[r] = [(x - f * y) % p for x, y in zip(A[r], A[rank])]
        rank += 1
    return rank


def test_gf_p_rank_by_independent_elimination():
    # δ of a cycle with maps 1 and 2 has det 2^n − 1 (= 7 for n = 3): singular only mod 7
    S = gs.constant_sheaf(nx.cycle_graph(3, create_using=nx.DiGraph))  # 0 -> 1 -> 2 -> 0
    for e in S.edges:
        S.edges[e]["target_map"] = np.array([[2]])
    for p in (2, 3, 5, 7, 11):
        D = gs.coboundary_matrix(S).toarray()
        assert gs.cohomology(S, field=p).h0 == 3 - _rank_mod_p(D, p)
    assert gs.cohomology(S, field=7).h0 == 1 and gs.cohomology(S, field=5).h0 == 0


def test_gf_p_refusals():
    with pytest.raises(gs.SheafError, match="4 = 2 × 2"):
        gs.cohomology(mobius(), field=4)
    H = mobius(Fraction(1, 2), 1)
    with pytest.raises(gs.SheafError, match="divisible by 2"):
        gs.cohomology(H, field=2)
    assert gs.cohomology(H, field=3).h0 == 0            # 1/2 = 2 in GF(3): δ = 1 − 2 ≠ 0
    with pytest.raises(gs.SheafError, match="method must be"):
        gs.cohomology(mobius(), field=2, method="dense")


# ----------------------------------------------------------------------- complex

def magnetic_cycle(n, theta):
    F = gs.constant_sheaf(nx.cycle_graph(n))
    F.edges[0, n - 1]["target_map"] = np.array([[np.exp(1j * theta)]])
    return F


@pytest.mark.parametrize("theta", [0.0, 0.4, np.pi])
def test_magnetic_laplacian_spectrum(theta):
    # discrete magnetic Laplacian of a cycle with flux θ (Shubin 1994, "Discrete magnetic
    # Laplacian"; Lieb & Loss 1993): eigenvalues 2 − 2 cos((2πk + θ)/n)
    n = 9
    L = gs.sheaf_laplacian(magnetic_cycle(n, theta)).toarray()
    assert np.allclose(L, L.conj().T)
    ref = np.sort(2 - 2 * np.cos((2 * np.pi * np.arange(n) + theta) / n))
    assert np.allclose(np.linalg.eigvalsh(L), ref)
    c = gs.cohomology(magnetic_cycle(n, theta), bases=True)
    assert (c.h0, c.h1) == ((1, 1) if theta == 0 else (0, 0))
    assert c.h0_basis.shape == (n, c.h0)


def test_complex_harmonic_extension_and_diffusion_match_dense_complex_algebra():
    rng = np.random.default_rng(0)
    g = nx.gnm_random_graph(12, 24, seed=1)
    S = gs.constant_sheaf(g, dim=2)
    for e in S.edges:
        Z = rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))
        S.edges[e]["source_map"] = np.linalg.qr(Z)[0]      # U(2) connection
    L = gs.sheaf_laplacian(S).toarray()
    pins = {0: np.array([1 + 2j, -1j]), 5: np.array([0.5, 2 - 1j])}
    x = gs.harmonic_extension(S, pins)
    pos = gs.stalk_offsets(S)
    pinned = np.r_[pos[0], pos[5]]
    xv = gs.to_vector(S, x)
    free = np.setdiff1d(np.arange(L.shape[0]), pinned)
    assert np.allclose((L @ xv)[free], 0, atol=1e-10)       # harmonic on the free part
    assert np.allclose(x[5], pins[5])
    x0 = {v: rng.standard_normal(2) + 1j * rng.standard_normal(2) for v in S}
    from scipy.linalg import expm
    ref = expm(-0.7 * L) @ gs.to_vector(S, x0)
    out = gs.heat_diffusion(S, x0, 0.7)
    assert np.allclose(gs.to_vector(S, out), ref)
    c = gs.cohomology(S, bases=True)
    D = gs.coboundary_matrix(S).toarray()
    assert np.allclose(D @ c.h0_basis, 0, atol=1e-10) and np.allclose(D.conj().T @ c.h1_basis, 0, atol=1e-10)
    assert c.h1 - c.h0 == D.shape[0] - D.shape[1]


def test_complex_maps_refused_by_exact_methods():
    with pytest.raises(gs.SheafError, match="complex maps"):
        gs.cohomology(magnetic_cycle(4, 0.3), method="exact")


def test_operations_return_valid_sheaves():
    S = gs.random_connection_sheaf(nx.cycle_graph(4), 2, rng=0)
    for op in (lambda: gs.direct_sum(S, S), lambda: gs.tensor_product(S, S), lambda: gs.dual(S),
               lambda: gs.restrict(S, [0, 1]), lambda: gs.pushforward(S, {v: v % 2 for v in S})):
        gs.validate_sheaf(op())


def test_complex_energies_are_real_and_match_the_extension():
    F = magnetic_cycle(5, 0.5)
    x = gs.harmonic_extension(F, {0: [1 + 1j]})
    e = gs.dirichlet_energy(F, x)
    assert isinstance(e, float) and e > 0
    assert np.isclose(e, x.energy) and np.isclose(sum(gs.edge_energies(F, x).values()), e)


def test_hostile_inputs_to_the_new_operations_are_named():
    F = gs.constant_sheaf(nx.path_graph(3))
    with pytest.raises(gs.SheafError, match="must be a dict"):
        gs.pushforward(F, [0, 0, 1])
    with pytest.raises(gs.SheafError, match="no image for node 2"):
        gs.pushforward(F, {0: 0, 1: 0})
    with pytest.raises(gs.SheafError, match="must be a dict"):
        gs.pullback(F, "f")
    with pytest.raises(gs.SheafError, match="node 1.*not finite"):
        gs.SheafMorphism(F, F, {0: np.eye(1), 1: np.array([[np.nan]]), 2: np.eye(1)})
    with pytest.raises(gs.SheafError, match="not a numeric"):
        gs.SheafMorphism(F, F, {0: "a", 1: np.eye(1), 2: np.eye(1)})
    with pytest.raises(gs.SheafError, match="non-finite"):
        gs.connection_sheaf(nx.path_graph(2), {(0, 1): np.array([[np.inf, 0], [0, 1.0]])})
    with pytest.raises(ValueError, match="degree"):
        gs.hodge_decomposition(F, np.zeros(2), degree=2)
    with pytest.raises(gs.SheafError, match="shape"):
        gs.hodge_decomposition(F, np.zeros(5))
    with pytest.raises(ValueError, match="group"):
        gs.random_connection_sheaf(nx.path_graph(2), 2, group="U")


def test_dag_builder_names_what_an_operation_lacks():
    import graphsheaf.neural as gn
    with pytest.raises(gs.SheafError, match="'h' \\(linear\\) needs 'weight'"):
        gn.dag_sheaf([{"name": "h", "op": "linear", "input": "x"}], input_shape=(3,))
    with pytest.raises(gs.SheafError, match="reads 'nope'"):
        gn.dag_sheaf([{"name": "h", "op": "relu", "input": "nope"}], input_shape=(3,))
    with pytest.raises(gs.SheafError, match="op 'tanh' is not supported"):
        gn.dag_sheaf([{"name": "h", "op": "tanh", "input": "x"}], input_shape=(3,))


def test_pushforward_map_that_kills_the_fibre_sections_is_exactly_zero():
    # regression (hypothesis found it): a crossing edge whose map annihilates the fibre's
    # sections must push forward to the zero map, not to rounding noise whose numerical
    # rank makes h0(f_*F) = 0 while h0(F) = 1
    Q = np.linalg.qr(np.random.default_rng(3).standard_normal((2, 2)))[0]
    G = nx.DiGraph()
    for v, d in (("u", 2), ("v", 1), ("w", 1), ("z1", 1), ("z2", 1)):
        G.add_node(v, dim=d)
    one, zero = np.ones((1, 1)), np.zeros((1, 1))
    G.add_edge("u", "v", source_map=np.array([[1.0, 0.0]]) @ Q, target_map=one)
    G.add_edge("u", "w", source_map=np.array([[0.0, 1.0]]) @ Q, target_map=one)
    G.add_edge("v", "w", source_map=one, target_map=one)  # sections: u₁ = u₂ (rotated by Q)
    G.add_edge("z1", "z2", source_map=one, target_map=zero)  # x_z1 = 0
    G.add_edge("z2", "z1", source_map=one, target_map=zero)  # x_z2 = 0: no sections there
    G.add_edge("u", "z1", source_map=np.array([[1.0, -1.0]]) @ Q, target_map=one)
    P = gs.pushforward(G, {"u": 0, "v": 0, "w": 0, "z1": 1, "z2": 1})
    assert np.all(P.edges[0, 1]["source_map"] == 0)
    assert gs.cohomology(G, bases=False, method="dense").h0 == 1
    assert gs.cohomology(P, bases=False, method="dense").h0 == 1
