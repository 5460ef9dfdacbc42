"""Fixtures for the Python-client interop suite.

One `pravaha standalone` (the binary named by $PRAVAHA_BIN) is started for the whole session in
a fresh temporary data directory with ephemeral ports; every test uses its own scope.
"""

import collections
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 20
LOG_TAIL_LINES = 200

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_READY = {
    "segment store on ": "segment_store",
    "controller gRPC on ": "grpc",
    "controller REST on ": "rest",
}


def _die_with_parent():
    """In the child: SIGTERM when the process that started it dies, so that a test run killed
    from outside (or ended by pytest-timeout) does not leave a server behind (Linux only)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class PravahaServer:
    """A running `pravaha standalone`; its merged stdout/stderr is drained by a thread."""

    def __init__(self, binary):
        self.binary = binary
        self.data_dir = tempfile.mkdtemp(prefix="pravaha-pytest-")
        self.addresses = {}
        self.log = collections.deque(maxlen=20000)
        self._ready = threading.Condition()
        self.proc = None
        self._drainer = None

    @property
    def controller_uri(self):
        return "tcp://" + self.addresses["grpc"]

    @property
    def rest_url(self):
        return "http://" + self.addresses["rest"]

    def log_tail(self, lines=LOG_TAIL_LINES):
        return "\n".join(list(self.log)[-lines:])

    def start(self):
        cmd = [
            self.binary,
            "standalone",
            "--data-dir",
            os.path.join(self.data_dir, "data"),
            "--segment-store",
            "127.0.0.1:0",
            "--grpc",
            "127.0.0.1:0",
            "--rest",
            "127.0.0.1:0",
        ]
        env = dict(os.environ, NO_COLOR="1")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self._drainer = threading.Thread(target=self._drain, name="pravaha-log", daemon=True)
        self._drainer.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        with self._ready:
            while len(self.addresses) < len(_READY):
                if self.proc.poll() is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(timeout=min(left, 0.5))
        if len(self.addresses) < len(_READY):
            code = self.proc.poll()
            self.stop(check=False)
            state = "timed out after %d s" % START_TIMEOUT_S if code is None else "exited %s" % code
            raise RuntimeError(
                "pravaha standalone did not become ready (%s); got %r; output:\n%s"
                % (state, self.addresses, self.log_tail())
            )

    def _drain(self):
        # PRAVAHA_SERVER_LOG=FILE keeps the server's whole output (for debugging).
        path = os.environ.get("PRAVAHA_SERVER_LOG")
        copy = open(path, "w", encoding="utf-8") if path else None
        for raw in iter(self.proc.stdout.readline, b""):
            line = _ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\r\n"))
            self.log.append(line)
            if copy is not None:
                copy.write(line + "\n")
                copy.flush()
            for prefix, name in _READY.items():
                if line.startswith(prefix):
                    with self._ready:
                        self.addresses[name] = line[len(prefix) :].strip()
                        self._ready.notify_all()
        self.proc.stdout.close()
        if copy is not None:
            copy.close()

    def stop(self, check=True):
        """SIGTERM, bounded wait, SIGKILL if needed; removes the data directory."""
        problem = None
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
                    problem = "did not stop within %d s of SIGTERM (killed)" % STOP_TIMEOUT_S
            if problem is None and self.proc is not None and self.proc.returncode != 0:
                problem = "exited with status %s after SIGTERM" % self.proc.returncode
            if self._drainer is not None:
                self._drainer.join(timeout=5)
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if check and problem:
            raise RuntimeError("pravaha standalone %s; output:\n%s" % (problem, self.log_tail()))


_SERVER = None


@pytest.fixture(scope="session")
def server():
    global _SERVER
    binary = os.environ.get("PRAVAHA_BIN")
    if not binary:
        pytest.fail("set PRAVAHA_BIN to the pravaha binary (cargo test sets it)", pytrace=False)
    if not os.access(binary, os.X_OK):
        pytest.fail("PRAVAHA_BIN=%s is not an executable file" % binary, pytrace=False)
    srv = PravahaServer(binary)
    srv.start()
    _SERVER = srv
    try:
        yield srv
    finally:
        _SERVER = None
        srv.stop()


@pytest.fixture(scope="session")
def controller_uri(server):
    return server.controller_uri


@pytest.fixture(scope="session")
def manager(controller_uri):
    import pravega_client

    return pravega_client.StreamManager(controller_uri)


@pytest.fixture
def scope(manager):
    """A new scope, unique to the test."""
    name = "py" + uuid.uuid4().hex[:16]
    assert manager.create_scope(name) is True
    return name


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _SERVER is not None:
        report.sections.append(("pravaha server output (tail)", _SERVER.log_tail()))


# The client wheel (pyo3 + tokio) sometimes aborts while the interpreter finalizes, after every
# test has run ("PyGILState_Release: thread state ... must be current", "FATAL: exception not
# rethrown"): its runtime threads outlive Python. So that this cannot turn a finished run into a
# crash, leave with pytest's own exit status once pytest is done. PRAVAHA_PYTEST_NORMAL_EXIT=1
# disables this.
_EXIT_STATUS = [None]


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS[0] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if _EXIT_STATUS[0] is None or os.environ.get("PRAVAHA_PYTEST_NORMAL_EXIT") == "1":
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS[0])
