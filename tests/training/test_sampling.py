"""hyperlstm.generate: temperature and top_k against the distribution written out by hand.

The model is a CharLM whose next-character logits are fixed, so every sampled character is an
independent draw from softmax(logits / temperature) restricted to the top_k characters, and the
empirical frequencies over a few thousand draws must match that distribution."""
import math

import pytest
import torch
import torch.nn as nn

from hypernet_lib.data import Vocab
from hypernet_lib.nn import CharLM
from hypernet_lib.training import generate

P = [0.5, 0.3, 0.15, 0.05]           # next-character probabilities at temperature 1
VOCAB = Vocab("abcd")
N = 4000                              # draws: a frequency's standard error is at most 0.008


class FixedLM(CharLM):
    """A CharLM that always predicts log(P), whatever it has read."""

    def __init__(self):
        nn.Module.__init__(self)
        self.config = {"vocab_size": len(P)}
        self.logits = nn.Parameter(torch.tensor(P).log() + 3.0)   # any shift: softmax ignores it

    def forward(self, ids, state=None):
        return self.logits.expand(ids.shape[0], ids.shape[1], -1), state


def frequencies(temperature, top_k=None, seed=0):
    text = generate(FixedLM(), VOCAB, "a", length=N, temperature=temperature, top_k=top_k,
                       generator=torch.Generator().manual_seed(seed))
    assert len(text) == N + 1 and text[0] == "a"
    return [text[1:].count(ch) / N for ch in "abcd"]


def expected(temperature, top_k=None):
    """p_i^(1/T), zero outside the top_k, renormalised."""
    w = [p ** (1.0 / temperature) for p in P]
    if top_k is not None:
        w = [x if i < top_k else 0.0 for i, x in enumerate(w)]     # P is sorted: the top k are the first k
    return [x / sum(w) for x in w]


@pytest.mark.parametrize("temperature,top_k", [(1.0, None), (0.5, None), (2.0, None), (1.0, 2), (0.5, 3), (2.0, 2)])
def test_sample_frequencies_follow_temperature_and_top_k(temperature, top_k):
    freq, want = frequencies(temperature, top_k), expected(temperature, top_k)
    for i, (f, w) in enumerate(zip(freq, want)):
        se = math.sqrt(max(w * (1 - w), 1e-12) / N)
        assert abs(f - w) < 5 * se + 1e-9, (i, freq, want)
    if top_k is not None:
        assert all(f == 0 for f in freq[top_k:])                   # nothing outside the top k, ever


def test_the_expected_distributions_are_far_apart():
    """With the same top_k, the tolerance above separates T from 1 and T from 1/T (an ignored or inverted
    temperature fails): each pair differs by more than 5 of the largest standard errors somewhere.
    A wrong top_k is caught by the zero frequencies outside the top k."""
    for k in (None, 2, 3):
        cases = [expected(t, k) for t in (0.5, 1.0, 2.0)]
        for i, a in enumerate(cases):
            for b in cases[i + 1:]:
                assert max(abs(x - y) for x, y in zip(a, b)) > 5 * math.sqrt(0.25 / N), (k, a, b)


def test_top_k_one_and_tiny_temperature_are_greedy():
    assert frequencies(1.0, top_k=1) == [1.0, 0, 0, 0]
    assert frequencies(1e-4) == [1.0, 0, 0, 0]
    assert frequencies(5.0, top_k=1, seed=3) == [1.0, 0, 0, 0]


def test_top_k_at_least_the_vocabulary_changes_nothing():
    a = generate(FixedLM(), VOCAB, "ab", length=200, temperature=1.3, generator=torch.Generator().manual_seed(4))
    b = generate(FixedLM(), VOCAB, "ab", length=200, temperature=1.3, top_k=4,
                    generator=torch.Generator().manual_seed(4))
    c = generate(FixedLM(), VOCAB, "ab", length=200, temperature=1.3, top_k=50,
                    generator=torch.Generator().manual_seed(4))
    assert a == b == c and a.startswith("ab") and len(a) == 202
