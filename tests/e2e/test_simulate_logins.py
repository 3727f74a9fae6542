"""`vigil simulate --passwords`: each simulated device logs in to `vigil run`'s broker with its own credentials."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml

from vigil.cli import main
from vigil.runtimes.embedded.runtime import EmbeddedRuntime
from vigil.settings import VigilSettings
from vigil.shell.registry import Registry, Roster

pytestmark = pytest.mark.slow


async def test_simulated_devices_log_in_each_with_its_own_password(tmp_path, free_port, http_port, capsys):
    common = ["simulate", "--patients", "2", "--seed", "3", "--duration", "2", "--speed", "600", "--truth",
              str(tmp_path / "truth.jsonl"), "--mqtt-url", f"mqtt://127.0.0.1:{free_port}"]
    assert main([*common, "--roster", str(tmp_path / "roster.yaml"), "--output", str(tmp_path / "out.jsonl")]) == 0
    roster = Roster.model_validate(yaml.safe_load((tmp_path / "roster.yaml").read_text()))
    runtime = EmbeddedRuntime(VigilSettings(data_dir=tmp_path / "data", mqtt_port=free_port, http_port=http_port,
                                            models_enabled=False), Registry(roster))
    await runtime.start()
    try:
        devices = [d.device_id for p in roster.patients for d in p.devices]
        (tmp_path / "passwords.jsonl").write_text("".join(
            json.dumps({"device_id": d, "password": runtime.credentials.enrol(d)}) + "\n" for d in devices))
        capsys.readouterr()
        assert await asyncio.to_thread(main, [*common, "--fast", "--passwords", str(tmp_path / "passwords.jsonl")]) == 0
        sent = json.loads(capsys.readouterr().out.splitlines()[-1])
        await runtime.drain(10)
        assert sent["samples"] > 0 and runtime.pipeline.totals.readings == sent["samples"]
    finally:
        await runtime.stop()
