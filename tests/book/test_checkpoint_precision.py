"""How shipped checkpoints store weights: half precision, or int8 with a scale per group of 64."""
import pytest
import torch
from torch import nn

from hypernet_lib.book import checkpoints as ck
from hypernet_lib.book.checkpoints import ShippedCheckpoint


def small_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(300, 257), nn.LayerNorm(257), nn.Linear(257, 3))


@pytest.mark.parametrize("shape", [(130, 97), (8, 4, 3, 3), (64, 64), (5,)])
def test_int8_codes_are_within_half_a_scale_of_every_number(shape):
    torch.manual_seed(1)
    t = torch.randn(shape) * torch.logspace(-3, 1, shape[0]).view(-1, *[1] * (len(shape) - 1))
    t.view(-1)[-1] = 1e-30                                   # a tiny number: code 0, not a NaN
    t.view(-1)[:64] = 0.0                                     # an all-zero group
    packed = ck._int8(t)
    back = ck._from_int8(packed)
    assert back.shape == t.shape and back.dtype == torch.float32
    scales = packed["scale"].float().repeat_interleave(ck.INT8_GROUP).view(-1)[:t.numel()].view(shape)
    assert torch.all((back - t).abs() <= scales / 2 * (1 + 1e-3) + 1e-12)
    assert torch.all(back.view(-1)[:64] == 0)
    assert packed["int8"].dtype == torch.int8 and packed["int8"].abs().max() <= 127


def test_an_int8_file_loads_exactly_the_weights_the_saving_run_continued_with(tmp_path):
    net = small_net()
    ShippedCheckpoint("demo", {"a": 1}, "cpu", directory=tmp_path).save(
        {"net": net}, extra={"note": "x"}, precision="int8")
    fresh = small_net(seed=5)
    extra = ShippedCheckpoint("demo", {"a": 1}, "cpu", directory=tmp_path).load_into({"net": fresh})
    assert extra == {"note": "x"}
    for (name, a), b in zip(net.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    stored = torch.load(tmp_path / "demo.pt", weights_only=True)["models"]["net"]
    # the 257×300 matrix is quantised; the 3×257 one and every vector stay float16
    assert set(stored["0.weight"]) == {"int8", "scale", "shape"}
    assert stored["2.weight"].dtype == stored["1.weight"].dtype == torch.float16


def test_int8_stores_a_large_matrix_in_about_half_the_bytes_of_half_precision(tmp_path):
    big = nn.Linear(512, 2048)
    sizes = {}
    for precision in ck.PRECISIONS:
        c = ShippedCheckpoint(f"demo_{precision}", {}, "cpu", directory=tmp_path)
        c.save({"m": big}, precision=precision)
        sizes[precision] = c.path.stat().st_size
        assert {"half": "half precision", "int8": "int8 matrices"}[precision] in c.status
    assert 0.5 < sizes["int8"] / sizes["half"] < 0.56


def test_half_precision_is_what_float16_rounding_gives(tmp_path):
    net = small_net()
    expect = {k: v.half().float() for k, v in net.state_dict().items()}
    ShippedCheckpoint("demo", {}, "cpu", directory=tmp_path).save({"net": net})
    for k, v in net.state_dict().items():
        assert torch.equal(v, expect[k]), k


def test_an_unknown_precision_is_refused_before_anything_is_written(tmp_path):
    c = ShippedCheckpoint("demo", {}, "smoke", directory=tmp_path)
    with pytest.raises(ValueError, match="unknown precision 'int4'; choose one of 'half', 'int8'"):
        c.save({"net": small_net()}, precision="int4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("precision", ["half", "int8"])
def test_numbers_beyond_float16_stay_float32_instead_of_becoming_inf(tmp_path, precision):
    net = small_net()
    with torch.no_grad():
        net[0].weight[0, 0] = 1e6
        net[1].bias[0] = -7e4
    expect = {k: v.clone() for k, v in net.state_dict().items()}
    ShippedCheckpoint("demo", {}, "cpu", directory=tmp_path).save({"net": net}, precision=precision)
    got = net.state_dict()
    assert all(torch.isfinite(v).all() for v in got.values())
    assert got["0.weight"][0, 0] == 1e6 and got["1.bias"][0] == -7e4
    assert torch.equal(got["0.weight"], expect["0.weight"])     # kept whole, in float32
