import math

import pytest
import torch

from metaloop.learned.preprocess import preprocess_gradients


def test_hand_computed_values():
    g = torch.tensor([2.0, -1e-2, 0.0, 1e-5, -3e-6], dtype=torch.float64)
    out = preprocess_gradients(g, p=10.0)
    e = math.exp(10)
    expected = torch.tensor([
        [math.log(2.0) / 10, 1.0],
        [math.log(1e-2) / 10, -1.0],
        [-1.0, 0.0],
        [-1.0, 1e-5 * e],  # |g| < e^-10 ~ 4.54e-5: linear branch
        [-1.0, -3e-6 * e],
    ], dtype=torch.float64)
    torch.testing.assert_close(out, expected)


def test_branches_meet_at_threshold_and_shape():
    t = math.exp(-10)
    out = preprocess_gradients(torch.tensor([t, t * (1 - 1e-9)], dtype=torch.float64))
    torch.testing.assert_close(out[0], out[1], atol=1e-8, rtol=0)  # continuous at |g| = e^-p
    assert preprocess_gradients(torch.zeros(3, 4)).shape == (3, 4, 2)


def test_bad_p():
    with pytest.raises(ValueError, match="positive"):
        preprocess_gradients(torch.zeros(2), p=0)
