import json

from metaloop.cli import main


def test_demo_trains_reports_and_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--iterations", "150", "--episodes", "40", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    mse = {int(k): v["mean"] for k, v in result["mse_by_steps"].items()}
    assert set(mse) == {0, 1, 5, 10}
    # even a short meta-training run must make adaptation help on held-out sinusoids
    assert mse[10] < mse[0]
    assert (out / "sinusoid_maml.png").stat().st_size > 10_000
    assert "after 10 steps" in capsys.readouterr().out


def test_demo_rejects_bad_arguments(capsys):
    assert main(["demo", "--iterations", "0"]) == 2
    assert "--iterations must be >= 1" in capsys.readouterr().err
