"""The `otklik worker` process that `otklik serve` runs beside the web server."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading

log = logging.getLogger("otklik.worker")


class Companion:
    """The `otklik worker` process that `otklik serve` runs beside the web server.

    Restarted if it dies; stopped (SIGTERM, then SIGKILL) with the server; on
    Linux it also dies with its parent, should the server be killed outright.
    """

    def __init__(self, command: list[str]) -> None:
        self._command = command
        self._process: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="otklik-companion", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._thread.join(timeout=5)

    def _spawn(self) -> None:
        self._process = subprocess.Popen(self._command, preexec_fn=_die_with_parent)

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            process = self._process
            if process is not None and process.poll() is not None and not self._stop.is_set():
                log.error(
                    "worker process exited; restarting",
                    extra={"fields": {"code": process.returncode}},
                )
                self._stop.wait(1.0)
                if not self._stop.is_set():
                    self._spawn()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)
