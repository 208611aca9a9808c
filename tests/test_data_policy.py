"""The policy for missing real data (tests/_data.py): a skip in a user's clone, an error in CI."""
from __future__ import annotations

import pytest

from . import _data


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_missing_data_fails_in_ci(monkeypatch, tmp_path, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        _data.require(tmp_path / "nope")


@pytest.mark.parametrize("value", [None, "false", ""])
def test_missing_data_skips_elsewhere_with_the_path(monkeypatch, tmp_path, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="nope"):
        _data.require(tmp_path / "nope")


def test_present_data_is_returned(monkeypatch, tmp_path):
    monkeypatch.setenv("CI", "true")
    assert _data.require(tmp_path) == tmp_path


def test_conftest_data_dir_follows_the_policy(monkeypatch, tmp_path):
    from . import conftest

    monkeypatch.setattr(conftest, "DATA", tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="tno"):
        conftest.data_dir("tno")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="tno"):
        conftest.data_dir("tno")
