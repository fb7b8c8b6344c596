import pytest
import torch

from metaloop.algorithms import get_algorithm


def test_plot_bands_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from metaloop.learned.plots import plot_bands

    torch.manual_seed(0)
    cnp = get_algorithm("cnp")(hidden=8).eval()
    sx = torch.linspace(-4, 4, 5).unsqueeze(-1)
    fn = torch.sin
    plot_bands(tmp_path / "bands.png", [(sx, fn(sx), fn)],
               {"CNP": lambda a, b, g: cnp.predict_distribution((a, b), g)})
    data = (tmp_path / "bands.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
