"""The scaled path's process stack, without servers: arguments, waiting, a service that dies."""

import signal
import sys

import pytest

from vigil.tools.stack import ServiceStack, run_topics, wait_until


def test_a_run_has_topics_of_its_own():
    assert run_topics("r1") == {"VIGIL_READINGS_TOPIC": "vigil.readings.r1", "VIGIL_ALERTS_TOPIC": "vigil.alerts.r1",
                                "VIGIL_DEADLETTER_TOPIC": "vigil.deadletter.r1"}


def test_wait_until_returns_the_first_truthy_answer_and_a_service_still_starting_is_not_yet():
    answers = iter([ConnectionRefusedError(), None, ValueError("half an answer"), {"status": "ok"}])

    def ask():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(ask, 5, "the service", interval=0.001) == {"status": "ok"}
    with pytest.raises(TimeoutError, match="the impossible"):
        wait_until(lambda: False, 0.05, "the impossible", interval=0.01)


def test_a_service_gets_its_port_and_a_worker_its_own_state_directory(tmp_path):
    stack = ServiceStack({}, tmp_path)
    # `vigil --help` exits at once: enough to see the command line each service is given.
    worker = stack.start("w1", "processor", "--help", port=8101)
    gateway = stack.start("gateway", "ingest", "--help", "--id", "gw-x", port=8102)
    assert worker.args[-4:] == ["--web-port", "8101", "--data-dir", str(tmp_path / "w1")]
    assert gateway.args[-2:] == ["--http-port", "8102"]
    assert stack.gateways == {"gw-x"} and stack.ports == {"w1": 8101, "gateway": 8102}
    for proc in (worker, gateway):
        proc.wait(60)
    stack.gateways.clear()  # nothing to retire: there is no broker here
    stack.stop()
    assert stack.procs == {}


def test_waiting_for_a_service_that_died_fails_at_once_with_its_log(tmp_path):
    stack = ServiceStack({}, tmp_path)
    stack.start("broken", "no-such-command", port=8103)
    stack.procs["broken"].wait(60)
    with pytest.raises(RuntimeError, match="broken exited with 2"):
        stack.wait_healthy("broken", timeout=60)
    assert "invalid choice" in stack.log("broken")
    stack.stop()


def test_kill_stops_one_service(tmp_path):
    stack = ServiceStack({}, tmp_path)
    proc = stack.start("quick", "--help")
    proc.wait(60)
    stack.kill("quick", signal.SIGTERM)
    assert "quick" not in stack.procs and sys.executable in proc.args
