import numpy as np
import pytest

from dlkit.plotting import plot_attention


def test_plot_attention_writes_a_png(tmp_path):
    weights = np.random.default_rng(0).dirichlet(np.ones(3), size=4)  # (T, S) rows sum to 1
    path = plot_attention(weights, ["3", "1", "4"], ["4", "1", "3", "<end>"], tmp_path / "a.png")
    assert path == tmp_path / "a.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("shape", [(3, 4), (4, 3, 1), (4,)])
def test_plot_attention_rejects_weights_that_do_not_match_the_tokens(tmp_path, shape):
    with pytest.raises(ValueError, match=r"Expected `weights` of shape .* = \(4, 3\)"):
        plot_attention(np.ones(shape), ["a", "b", "c"], ["w", "x", "y", "z"], tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()
