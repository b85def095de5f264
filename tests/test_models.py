"""Every model of unroll.models against an independent NumPy implementation (forward and
complex-step gradients, float64, 1e-10), plus gradcheck; PyTorch's layout with and without
torch; teacher forcing's two graphs; generation after training."""
import networkx as nx
import numpy as np
import pytest

import references as ref
import unroll as ur

M = ur.models
T, B, D, H, K = 4, 3, 3, 4, 3


def rand_params(c, seed=0, scale=0.6):
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-scale, scale, size=s) for k, s in c.param_shapes().items()}


def inputs(seed=1, T=T):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, B, D)), rng.integers(0, K, size=(T, B))


def agree(g, params, loss_fn, **data):
    """unroll's loss and gradients against the reference's (complex step)."""
    loss, grads = g.value_and_grad(params, **data)
    want = loss_fn(params)
    assert abs(float(loss) - want.real) <= 1e-12 * max(1.0, abs(want.real))
    expect = ref.complex_step(loss_fn, params)
    for k, e in expect.items():
        err = np.max(np.abs(grads[k] - e)) / (np.max(np.abs(e)) or 1.0)
        assert err <= 1e-10, (k, err)
    assert ur.gradcheck(g, params, mode="directional", **data).ok


# --- chapter 10 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_elman(nonlinearity):
    c = M.elman(D, H, K, nonlinearity=nonlinearity)
    p, (x, y) = rand_params(c), inputs()
    o = c.unroll(steps=T).run(p, x=x, y=y)["o"]
    assert np.allclose(o, ref.elman(p, x, nonlinearity), rtol=1e-13, atol=1e-14)
    agree(c.unroll(steps=T), p,
          lambda q: ref.total(ref.cross_entropy(ref.elman(q, x, nonlinearity), y)), x=x, y=y)


def test_jordan():
    c = M.jordan(D, H, K)
    p, (x, y) = rand_params(c, 2), inputs()
    agree(c.unroll(steps=T), p, lambda q: ref.total(ref.cross_entropy(ref.jordan(q, x), y)),
          x=x, y=y)
    # the only recurrence goes through the output: no h -> h edge in the circuit
    G = c.to_networkx()
    delays = [(G.nodes[u]["label"], G.nodes[v]["label"]) for u, v, d in G.edges(data="delay")
              if d]
    assert delays == [("o", "o.prev")]


def test_many_to_one():
    c = M.many_to_one(D, H, K)
    p, (x, y) = rand_params(c, 3), inputs()
    g = c.unroll(steps=T)
    out = g.run(p, x=x, y=y[0])
    assert out["o"].shape == (B, K)
    agree(g, p, lambda q: ref.cross_entropy(ref.many_to_one(q, x), y[0]).mean(), x=x, y=y[0])


@pytest.mark.parametrize("mode", ["train", "free", "greedy"])
def test_teacher_forcing_modes(mode):
    c = M.teacher_forcing(D, H, K, mode=mode)
    p, (x, y) = rand_params(c, 4), inputs()
    agree(c.unroll(steps=T), p,
          lambda q: ref.total(ref.cross_entropy(ref.teacher_forcing(q, x, y, mode), y)),
          x=x, y=y)


def test_teacher_forcing_graphs_have_the_textbook_edges():
    """Train: y(t-1) feeds h(t) (fig. 10.6, left); test: o(t-1) does (right)."""
    train = M.teacher_forcing(D, H, K, mode="train").unroll(steps=3).to_networkx()
    free = M.teacher_forcing(D, H, K, mode="free").unroll(steps=3).to_networkx()
    assert nx.has_path(train, "y[1]", "h[2]") and not nx.has_path(train, "o[1]", "h[2]")
    assert nx.has_path(free, "o[1]", "h[2]") and not nx.has_path(free, "y[1]", "h[2]")
    assert set(M.teacher_forcing(D, H, K, mode="free").param_shapes()) == \
        set(M.teacher_forcing(D, H, K, mode="train").param_shapes())


@pytest.mark.parametrize("feed_previous, sequence", [(False, False), (True, False),
                                                     (True, True)])
def test_conditioned(feed_previous, sequence):
    """Fig. 10.9 (one vector x, y(t-1) fed back) and fig. 10.10 (a sequence x(t))."""
    c = M.conditioned(D, H, K, feed_previous=feed_previous, sequence=sequence)
    p, (x, y) = rand_params(c, 5), inputs()
    xv = x if sequence else x[0]
    agree(c.unroll(steps=T), p,
          lambda q: ref.total(ref.cross_entropy(ref.conditioned(q, xv, y, T, feed_previous),
                                                y)), x=xv, y=y)


def test_bidirectional():
    c = M.bidirectional(D, H, K)
    p, (x, y) = rand_params(c, 6), inputs()
    agree(c.unroll(steps=T), p,
          lambda q: ref.total(ref.cross_entropy(ref.bidirectional(q, x), y)), x=x, y=y)


@pytest.mark.parametrize("mode", ["train", "greedy"])
def test_encoder_decoder_with_different_lengths(mode):
    s2s = M.encoder_decoder(D, H, K, mode=mode)
    g = s2s.unroll(input_steps=5, output_steps=3)
    p = rand_params(s2s.encoder, 7) | rand_params(s2s.decoder, 8)
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((5, B, D)), rng.integers(0, K, size=(3, B))
    assert g.run(p, x=x, y=y)["o"].shape == (3, B, K)
    agree(g, p, lambda q: ref.total(ref.cross_entropy(ref.encoder_decoder(q, x, y, mode), y)),
          x=x, y=y)
    with pytest.raises(ur.InputError, match=r"input y has 4 steps, but the graph was unrolled "
                                            r"for τ = 3"):
        g.run(p, x=x, y=np.zeros((4, B), dtype=int))


# --- PyTorch's layout -----------------------------------------------------------------------------

def with_readout(c, size):
    """An MSE loss of the top hidden sequence against targets r."""
    r = c.input("r", (size,))
    c.loss(ur.mse(c["h"], r))
    return c


@pytest.mark.parametrize("kind,layers,bidir,bias", [
    ("rnn", 1, False, True), ("rnn", 2, True, True), ("rnn", 2, False, False),
    ("lstm", 1, False, True), ("lstm", 2, True, True), ("gru", 1, False, True),
    ("gru", 2, True, False), ("gru", 3, False, True)])
def test_torch_layout_layers(kind, layers, bidir, bias):
    c = getattr(M, kind)(D, H, num_layers=layers, bidirectional=bidir, bias=bias)
    p = rand_params(c, 10)
    x = inputs()[0]
    out = c.unroll(steps=T).run(p, x=x)["h"]
    want = ref.torch_layers(kind, p, x, layers, bidir, bias=bias)
    assert out.shape == (T, B, (2 if bidir else 1) * H)
    assert np.allclose(out, want, rtol=1e-13, atol=1e-14)
    width = out.shape[-1]
    r = np.random.default_rng(11).standard_normal((T, B, width))
    agree(with_readout(c, width).unroll(steps=T), p,
          lambda q: ref.total(ref.mse(ref.torch_layers(kind, q, x, layers, bidir, bias=bias),
                                      r)), x=x, r=r)


@pytest.mark.parametrize("variant", sorted(M.LSTM_VARIANTS))
def test_lstm_odyssey_variants(variant):
    c = with_readout(M.lstm(D, H, variant=variant), H)
    p = rand_params(c, 12)
    x = inputs()[0]
    r = np.random.default_rng(13).standard_normal((T, B, H))
    opts = M.LSTM_VARIANTS[variant]
    agree(c.unroll(steps=T), p,
          lambda q: ref.total(ref.mse(ref.torch_layers("lstm", q, x, 1, False, variant=opts),
                                      r)), x=x, r=r)


def test_lstm_variants_change_the_parameters_as_documented():
    base = M.lstm(D, H).param_shapes()
    assert base["weight_ih_l0"] == (4 * H, D) and "peephole_i_l0" not in base
    assert M.lstm(D, H, variant="NIG").param_shapes()["weight_ih_l0"] == (3 * H, D)
    assert M.lstm(D, H, variant="CIFG").param_shapes()["weight_hh_l0"] == (3 * H, H)
    fgr = M.lstm(D, H, variant="FGR").param_shapes()
    assert fgr["weight_gates_l0"] == (3 * H, 3 * H) and fgr["peephole_o_l0"] == (H,)
    with pytest.raises(ur.CircuitError, match="unknown variant 'XYZ'"):
        M.lstm(D, H, variant="XYZ")


def test_stacked_mixed_cells():
    c = M.stacked(D, [("lstm", 4), ("gru", 3), ({"cell": "rnn", "nonlinearity": "relu"}, 5)])
    p = rand_params(c, 14)
    x = inputs()[0]

    def forward(q):
        h = ref.torch_layers("lstm", {k: v for k, v in q.items() if k.endswith("_l0")}, x, 1,
                             False)
        h = ref.torch_layers("gru", {k.replace("_l1", "_l0"): v for k, v in q.items()
                                     if k.endswith("_l1")}, h, 1, False)
        return ref.torch_layers("rnn", {k.replace("_l2", "_l0"): v for k, v in q.items()
                                        if k.endswith("_l2")}, h, 1, False, nonlinearity="relu")
    assert np.allclose(c.unroll(steps=T).run(p, x=x)["h"], forward(p), rtol=1e-13, atol=1e-14)
    r = np.random.default_rng(15).standard_normal((T, B, 5))
    agree(with_readout(c, 5).unroll(steps=T), p, lambda q: ref.total(ref.mse(forward(q), r)),
          x=x, r=r)


def test_default_initialisation_is_pytorchs():
    p = M.gru(D, 16).init_params(seed=0)
    for v in p.values():
        assert np.abs(v).max() <= 1 / np.sqrt(16) and np.abs(v).max() > 0.2


def test_state_dict_names_without_torch():
    """A state dict of NumPy arrays under PyTorch's names is a parameter dict, and maps back
    to PyTorch's names in PyTorch's order."""
    c = M.lstm(D, H, num_layers=2, bidirectional=True)
    sd = ur.interop.to_torch_state_dict(c, rand_params(c))
    assert list(sd)[:8] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                            "weight_ih_l0_reverse", "weight_hh_l0_reverse",
                            "bias_ih_l0_reverse", "bias_hh_l0_reverse"]
    assert sd["weight_ih_l1"].shape == (4 * H, 2 * H)
    peep = M.lstm(D, H, variant="V")
    with pytest.raises(ur.UnrollError, match=r"peephole_f_l0, peephole_i_l0, peephole_o_l0 "
                                             r"have no PyTorch counterpart"):
        ur.interop.to_torch_state_dict(peep, peep.init_params())
    bad = rand_params(c)
    bad["weight_ih_l0"] = np.zeros((2, 2))
    with pytest.raises(ur.UnrollError, match=r"weight_ih_l0 has shape \(2, 2\)"):
        ur.interop.to_torch_state_dict(c, bad)


def test_from_torch_errors_without_torch():
    class NotAnRNN:
        mode = "TRANSFORMER"
    with pytest.raises(ur.UnrollError, match="expected a torch.nn.RNN, LSTM or GRU"):
        ur.interop.from_torch(NotAnRNN())


# --- against torch itself, where it is installed -------------------------------------------------

@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_from_torch_matches_torch(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    mod = getattr(torch.nn, kind)(D, H, num_layers=2, bidirectional=True).double()
    x = torch.randn(T, B, D, dtype=torch.float64)
    out, _ = mod(x)
    c, p = ur.interop.from_torch(mod)
    assert np.allclose(c.unroll(steps=T).run(p, x=x.numpy())["h"], out.detach().numpy(),
                       rtol=1e-13, atol=1e-14)
    R = torch.randn_like(out)
    (out * R).sum().backward()
    r = c.input("r", (2 * H,))
    c.loss(ur.sum(c["h"] * r))
    _, grads = c.unroll(steps=T).value_and_grad(p, x=x.numpy(), r=R.numpy())
    for name, prm in mod.named_parameters():       # unroll's loss is averaged over the batch
        assert np.allclose(grads[name] * B, prm.grad.numpy(), rtol=1e-12, atol=1e-14), name
    with pytest.raises(ur.UnrollError, match="proj_size=2"):
        ur.interop.from_torch(torch.nn.LSTM(D, H, proj_size=2))
    with pytest.raises(ur.UnrollError, match="batch_first=True"):
        ur.interop.from_torch(torch.nn.GRU(D, H, batch_first=True))


# --- generation ---------------------------------------------------------------------------------

def test_generation_reproduces_a_memorised_sequence():
    vocab = "helo"
    text = "hello"
    ids = [vocab.index(ch) for ch in text]
    c = M.elman(len(vocab), 12, len(vocab))
    g = c.unroll(steps=len(text) - 1)
    x = np.eye(len(vocab))[ids[:-1]]
    y = np.array(ids[1:])
    p = c.init_params(seed=0)
    p = {k: v + np.random.default_rng(1).uniform(-0.3, 0.3, v.shape) for k, v in p.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    s = {k: np.zeros_like(v) for k, v in p.items()}
    for step in range(1, 301):                        # Adam, by hand
        loss, grads = g.value_and_grad(p, x=x, y=y)
        for k in p:
            m[k] = 0.9 * m[k] + 0.1 * grads[k]
            s[k] = 0.999 * s[k] + 0.001 * grads[k] ** 2
            p[k] -= 0.05 * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(s[k] / (1 - 0.999 ** step))
                                                          + 1e-8)
    assert float(loss) < 0.05
    out = M.generate(c, p, [ids[0]], steps=len(text) - 1, greedy=True)
    assert "".join(vocab[k] for k in out) == "hello"
    sampled = M.generate(c, p, [ids[0]], steps=4, temperature=0.5, seed=3)
    assert len(sampled) == 5 and sampled[0] == ids[0]


def test_generation_errors():
    c = M.elman(4, 8, 4)
    p = c.init_params()
    with pytest.raises(ur.InputError, match="prime must be a non-empty list of token ids"):
        M.generate(c, p, [], 3)
    with pytest.raises(ur.InputError, match="no output 'out'"):
        M.generate(c, p, [0], 3, output="out")
    with pytest.raises(ur.InputError, match="temperature must be a finite number > 0"):
        M.generate(c, p, [0], 3, temperature=0)
    with pytest.raises(ur.InputError, match=r"prime token\(s\) \[7\] are not classes"):
        M.generate(c, p, [0, 7], 3)
    with pytest.raises(ur.InputError, match="steps must be an integer >= 0"):
        M.generate(c, p, [0], -1)


def _attention_by_hand(p, x, y, attention):
    """The attention encoder-decoder in plain NumPy (teacher forcing), one sequence."""
    n_x, H = len(x), p["W_f"].shape[0]
    f, b = np.zeros((n_x + 2, H)), np.zeros((n_x + 2, H))
    for t in range(1, n_x + 1):
        f[t] = np.tanh(p["W_f"] @ f[t - 1] + p["U_f"] @ x[t - 1])
    for t in range(n_x, 0, -1):
        b[t] = np.tanh(p["W_b"] @ b[t + 1] + p["U_b"] @ x[t - 1])
    E = np.concatenate([f[1:n_x + 1], b[1:n_x + 1]], axis=1)
    K = p["V"].shape[0]
    s, fb, loss, alphas, outs = np.zeros(H), np.zeros(K), 0.0, [], []
    for t in range(len(y)):
        if attention == "additive":
            e = np.tanh(E @ p["U_a"].T + p["W_a"] @ s) @ p["v_a"]
        else:
            e = E @ (p["W_a"] @ s)
        a = np.exp(e - e.max())
        a /= a.sum()
        s = np.tanh(p["W_d"] @ s + p["U_d"] @ fb + p["C_d"] @ (a @ E) + p["b_d"])
        o = p["V"] @ s + p["c"]
        loss += np.log(np.exp(o - o.max()).sum()) + o.max() - o[y[t]]
        fb = np.eye(K)[y[t]]
        alphas.append(a)
        outs.append(o)
    return loss, np.array(alphas), np.array(outs)


@pytest.mark.parametrize("attention", ["additive", pytest.param("dot", id="dotproduct")])
def test_attention_seq2seq_matches_numpy_and_finite_differences(attention):
    m = ur.models.attention_seq2seq(3, 4, 5, input_steps=4, attention=attention)
    g = m.unroll(4, 3)
    rng = np.random.default_rng(2)
    p = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in m.init_params(seed=1).items()}
    x, y = rng.standard_normal((4, 3)), np.array([1, 4, 0])
    out = g.run(p, x=x, y=y)
    loss, alphas, outs = _attention_by_hand(p, x, y, attention)
    assert np.isclose(float(out["loss"]), loss, rtol=1e-10)
    assert np.allclose(out["alpha"], alphas, atol=1e-12) and np.allclose(out["o"], outs)
    assert ur.gradcheck(g, p, mode="directional", x=x, y=y).ok
    li, gi = g.value_and_grad(p, x=x, y=y, executor="interpret")
    lc, gc = g.value_and_grad(p, x=x, y=y)
    assert np.isclose(li, lc) and all(np.allclose(gi[k], gc[k]) for k in p)
    with pytest.raises(ur.CircuitError, match="attends over n_x = 4"):
        m.unroll(5, 3)


def test_the_alignment_of_a_trained_reverser_is_the_anti_diagonal(tmp_path):
    """Trained to reverse 4 digits, the attention model looks at input n - t + 1 at output
    step t: the alignment matrix is close to the anti-diagonal, and it draws as a heat map."""
    K, n = 4, 4
    m = ur.models.attention_seq2seq(K, 16, K, input_steps=n)
    g = m.unroll(n, n)
    p = m.init_params(seed=0)
    rng = np.random.default_rng(0)
    seqs = rng.integers(0, K, size=(300, n))
    batches = [dict(x=np.eye(K)[s].transpose(1, 0, 2), y=s[:, ::-1].T)
               for s in np.split(seqs, 10)]
    ur.training.train(g, p, batches, ur.optim.Adam(p, lr=0.02), epochs=60, progress=False)
    test = rng.integers(0, K, size=(50, n))
    out = g.run(p, x=np.eye(K)[test].transpose(1, 0, 2), y=test[:, ::-1].T)
    assert (out["o"].argmax(-1) == test[:, ::-1].T).mean() > 0.95
    alpha = out["alpha"].mean(axis=1)                       # (decoder t, encoder j)
    assert np.all(alpha.argmax(-1) == np.arange(n)[::-1])
    path = ur.diagnostics.alignment(out["alpha"][:, 0], tmp_path / "alpha.png",
                                    inputs=list(test[0]), outputs=list(test[0][::-1]))
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ur.RenderError, match="one sequence"):
        ur.diagnostics.alignment(out["alpha"], tmp_path / "a.png")
