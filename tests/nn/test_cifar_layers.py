"""CifarNet's layer order against the architecture written out op by op:
conv1..conv5, each conv -> batch norm -> ReLU, a 2x2 max-pool after conv2, conv3 and conv4,
global average pooling, fc1 -> ReLU -> dropout -> fc2 -> ReLU -> dropout -> fc3 (logits)."""
import pytest
import torch
import torch.nn.functional as F

from hypernet_lib.nn import build_cifar_net


def reference_forward(net, x, training):
    w, b = net.generated_weights(), {k: v.detach() for k, v in net.biases.items()}

    def bn(name, h):
        m = net.bns[name]
        return F.batch_norm(h, m.running_mean.clone(), m.running_var.clone(), m.weight, m.bias,
                            training=training, momentum=0.0, eps=m.eps)

    for i in range(1, 6):
        name = f"conv{i}"
        k = w[name].shape[-1]
        x = F.relu(bn(name, F.conv2d(x, w[name], b[name], padding=k // 2)))
        if i in (2, 3, 4):
            x = F.max_pool2d(x, 2)
    x = x.mean(dim=(2, 3))
    x = F.dropout(F.relu(F.linear(x, w["fc1"], b["fc1"])), 0.5, training)
    x = F.dropout(F.relu(F.linear(x, w["fc2"], b["fc2"])), 0.5, training)
    return F.linear(x, w["fc3"], b["fc3"])


def scrambled(variant):
    """A small net with biases and batch-norm statistics far from their identity defaults,
    so that moving a bias, a norm or a ReLU changes the output."""
    torch.manual_seed(0)
    net = build_cifar_net(variant, num_classes=7, width=0.125, dropout=0.5)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.biases.values():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for m in net.bns.values():
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 2 + 0.2)
            m.weight.copy_(torch.randn(m.weight.shape, generator=g))
            m.bias.copy_(torch.randn(m.bias.shape, generator=g))
    return net


@pytest.mark.parametrize("variant", ["standard", "partial"])
def test_eval_forward_matches_the_layer_order(variant):
    net = scrambled(variant).eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = net(x)
    assert out.shape == (3, 7)
    assert torch.allclose(out, reference_forward(net, x, training=False), atol=1e-5, rtol=1e-4)


def test_train_forward_matches_the_layer_order_including_dropout():
    net = scrambled("standard").train()
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(5)
    with torch.no_grad():
        out = net(x)
    torch.manual_seed(5)                                         # the same dropout masks, if drawn in the same places
    ref = reference_forward(net, x, training=True)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4)
    torch.manual_seed(6)
    with torch.no_grad():
        assert not torch.allclose(net(x), ref, atol=1e-3)        # dropout is live in training mode
