from metaloop.engine.progress import Progress, progress_enabled


def test_quiet_in_ci_and_when_not_a_terminal(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled()
    monkeypatch.setenv("CI", "")
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert progress_enabled() and not progress_enabled(quiet=True)


def test_bar_shows_loss_val_and_eta(capsys):
    bar = Progress(10, initial=4, enabled=True)
    bar.update(1, loss=0.123456, val=None)
    bar.update(1, loss=0.5, val=0.91)
    bar.close()
    err = capsys.readouterr().err
    assert "6/10" in err and "loss=0.5" in err and "val=0.91" in err and "<" in err  # elapsed<remaining
    Progress(10, enabled=False).update(1, loss=1.0)  # disabled: a silent no-op
    assert capsys.readouterr().err == ""
