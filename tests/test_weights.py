"""Saving and loading parameters: the safetensors format, bit for bit, checked on load."""
import json
import struct

import numpy as np
import pytest

import unroll as ur


def _read_by_the_spec(path) -> dict:
    """An independent reader of the safetensors layout (8-byte length, JSON, raw bytes)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    kinds = {"F64": "<f8", "F32": "<f4", "I64": "<i8"}
    out = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                            dtype=kinds[v["dtype"]]).reshape(v["shape"]) for k, v in header.items()}
    return out, meta


def test_parameters_round_trip_bit_for_bit_in_the_safetensors_layout(tmp_path):
    c = ur.models.lstm(3, 5, num_layers=2)
    p = c.init_params(seed=4)
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    for params in (p, p32, {"w": np.array(2.5), "b": np.arange(6.0).reshape(2, 3)}):
        path = ur.save(params, tmp_path / "w.safetensors", metadata={"by": "unroll"})
        back = ur.load(path)
        assert list(back) == list(params)
        for k in params:
            assert back[k].dtype == params[k].dtype and back[k].shape == params[k].shape
            assert back[k].tobytes() == np.array(params[k], order="C").tobytes()
            assert back[k].flags.writeable and not np.shares_memory(back[k], params[k])
        spec, meta = _read_by_the_spec(path)
        assert meta == {"by": "unroll"}
        assert all(np.array_equal(spec[k], params[k]) for k in params)
    assert set(ur.load(tmp_path / "w.safetensors", xp="numpy")) == {"w", "b"}


def test_a_file_written_by_another_safetensors_writer_loads(tmp_path):
    a = np.arange(12, dtype="<f4").reshape(3, 4)
    header = json.dumps({"weight_ih_l0": {"dtype": "F32", "shape": [3, 4],
                                          "data_offsets": [0, 48]}}).encode()
    path = tmp_path / "other.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + a.tobytes())
    assert np.array_equal(ur.load(path)["weight_ih_l0"], a)


def test_loading_checks_the_file_and_the_circuit(tmp_path):
    c = ur.models.elman(3, 4, 2)
    p = c.init_params()
    path = ur.save(p, tmp_path / "e.safetensors")
    assert set(ur.load(path, circuit=c)) == set(p)
    with pytest.raises(ur.ParamError, match="lacks b .*has Q, which elman does not"):
        ur.load(ur.save({**{k: v for k, v in p.items() if k != "b"}, "Q": np.ones(1)},
                        tmp_path / "f.safetensors"), circuit=c)
    with pytest.raises(ur.ParamError, match=r"parameter W has shape \(4, 3\), but elman "
                                            r"declares \(4, 4\)"):
        ur.load(ur.save({**p, "W": np.ones((4, 3))}, tmp_path / "g.safetensors"), circuit=c)
    raw = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(raw[:-5])
    with pytest.raises(ur.InputError, match="cut short or damaged"):
        ur.load(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00hello")
    with pytest.raises(ur.InputError, match="header is not JSON"):
        ur.load(tmp_path / "junk.safetensors")
    (tmp_path / "tiny").write_bytes(b"abc")
    with pytest.raises(ur.InputError, match="not a safetensors file"):
        ur.load(tmp_path / "tiny")
    with pytest.raises(ur.InputError, match="cannot read"):
        ur.load(tmp_path / "nothing.safetensors")
    with pytest.raises(ur.ParamError, match="dtype complex128"):
        ur.save({"z": np.ones(2, complex)}, tmp_path / "z.safetensors")
    with pytest.raises(ur.ParamError, match="params must be a dict"):
        ur.save([np.ones(2)], tmp_path / "l.safetensors")


def test_trained_weights_go_to_pytorch_names_and_back(tmp_path):
    """The models' parameters carry PyTorch's names: a saved LSTM reloads, and maps to a
    state dict with every name PyTorch's nn.LSTM uses."""
    c = ur.models.lstm(3, 4, bidirectional=True)
    p = c.init_params(seed=1)
    back = ur.load(ur.save(p, tmp_path / "lstm.safetensors"), circuit=c)
    sd = ur.interop.to_torch_state_dict(c, back)
    assert list(sd) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                        "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                        "bias_hh_l0_reverse"]
    try:
        import torch
    except ImportError:
        return                                   # the torch round trip runs in make test-torch
    m = torch.nn.LSTM(3, 4, bidirectional=True).double()
    m.load_state_dict(ur.interop.to_torch_state_dict(c, back, as_tensors=True))
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    want = m(torch.from_numpy(x))[0].detach().numpy()
    assert np.allclose(c.unroll(steps=5).run(back, x=x)["h"], want, atol=1e-12)
