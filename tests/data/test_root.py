"""resolve_data_root: flag, then $METALOOP_DATA, then ../shared/data; errors name both."""

from __future__ import annotations

import pytest

from metaloop.data.root import resolve_data_root


@pytest.fixture
def layout(tmp_path, monkeypatch):
    monkeypatch.delenv("METALOOP_DATA", raising=False)
    data = tmp_path / "somewhere" / "data"
    (data / "omniglot").mkdir(parents=True)
    (data / "omniglot" / "images_background.zip").write_bytes(b"")
    (data / "mini_imagenet" / "splits" / "ravi").mkdir(parents=True)
    return data


def test_flag_with_parent_folder_or_dataset_folder(layout):
    assert resolve_data_root(str(layout), "omniglot") == (layout / "omniglot").resolve()
    assert resolve_data_root(layout / "omniglot", "omniglot") == (layout / "omniglot").resolve()
    assert resolve_data_root(layout, "mini-imagenet") == (layout / "mini_imagenet").resolve()


def test_dataset_folder_recognised_by_its_files_whatever_its_name(tmp_path, monkeypatch):
    monkeypatch.delenv("METALOOP_DATA", raising=False)
    odd = tmp_path / "my_copy"
    odd.mkdir()
    (odd / "images_evaluation.zip").write_bytes(b"")
    assert resolve_data_root(odd, "omniglot") == odd.resolve()


def test_env_var_used_when_no_flag(layout, monkeypatch, tmp_path):
    monkeypatch.setenv("METALOOP_DATA", str(layout))
    monkeypatch.chdir(tmp_path)
    assert resolve_data_root(None, "omniglot") == (layout / "omniglot").resolve()
    monkeypatch.setenv("METALOOP_DATA", str(layout / "omniglot"))
    assert resolve_data_root(None, "omniglot") == (layout / "omniglot").resolve()


def test_flag_beats_env_and_a_bad_flag_does_not_fall_through(layout, monkeypatch, tmp_path):
    monkeypatch.setenv("METALOOP_DATA", str(layout))
    other = tmp_path / "other"
    (other / "omniglot").mkdir(parents=True)
    assert resolve_data_root(other, "omniglot") == (other / "omniglot").resolve()
    with pytest.raises(FileNotFoundError, match=r"--root .*typo.* does not exist"):
        resolve_data_root(tmp_path / "typo", "omniglot")


def test_bad_env_var_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("METALOOP_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"METALOOP_DATA=.*holds neither a omniglot/"):
        resolve_data_root(None, "omniglot")


def test_shared_data_beside_cwd(layout, monkeypatch):
    repo = layout.parent / "repo"
    repo.mkdir()
    (layout.parent / "shared").mkdir()
    layout.rename(layout.parent / "shared" / "data")
    monkeypatch.chdir(repo)
    expected = (layout.parent / "shared" / "data" / "omniglot").resolve()
    assert resolve_data_root(None, "omniglot") == expected


def test_nothing_found_names_flag_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("METALOOP_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        resolve_data_root(None, "omniglot")
    assert "--root" in str(e.value) and "METALOOP_DATA" in str(e.value)
