"""imagebuild.emulation: a QEMU still too old after installing from backports stops the build, by name."""
# ruff: noqa: S101

from __future__ import annotations

from pathlib import Path

import pytest

from imagebuild import emulation
from imagebuild.architectures import ARCHITECTURES
from imagebuild.docker_engine import EngineError


@pytest.mark.parametrize(("after_install", "shown"), [((7, 2), "is 7.2"), (None, "is none")])
def test_a_qemu_too_old_after_the_install_is_refused_naming_the_versions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, after_install: tuple[int, int] | None, shown: str
) -> None:
    (tmp_path / "register").touch()
    monkeypatch.setattr(emulation, "BINFMT_MISC", tmp_path)
    installs: list[bool] = []
    monkeypatch.setattr(emulation, "_install_qemu", lambda: installs.append(True))
    versions = iter([(7, 2), after_install])
    # Never the host's update-binfmts, even when the check under test is broken (others' builds use it).
    commands: list[list[str]] = []
    monkeypatch.setattr(emulation.subprocess, "run", lambda command, **_: commands.append(command))
    monkeypatch.setattr(emulation, "qemu_version", lambda target: next(versions))
    with pytest.raises(EngineError) as refused:
        emulation.ensure_emulation(ARCHITECTURES["arm64"])
    assert installs == [True]
    assert f"qemu-aarch64-static {shown} after installing" in str(refused.value)
    assert "QEMU 10.0 or newer is needed" in str(refused.value)
    assert commands == [], "nothing is re-registered with a QEMU that is too old"
