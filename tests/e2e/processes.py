"""Start and stop service processes, each in its own session, and find processes by their title.

Every service is started with ``start_new_session=True``: it becomes the leader of a new session
*and* process group whose ids equal its pid. Airflow moves each task runner into a process group of
its own (``os.setpgid`` in the task supervisor), so killing the service's process group alone would miss
them; but nothing in Airflow calls ``setsid``, so every descendant keeps the session id, even once
orphaned and re-parented to init. Stopping a service therefore signals every process whose session id
(``/proc/<pid>/stat`` field 6) is the service's pid.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """Return a TCP port on the loopback interface that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or ``None`` if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def session_members(session_id: int) -> list[int]:
    """Pids of the live (not zombie) processes of session ``session_id``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        # fields[0] is the state, fields[3] the session id.
        if fields is not None and fields[0] != "Z" and int(fields[3]) == session_id:
            members.append(int(entry))
    return members


def process_title(pid: int) -> str:
    """The title a process shows in ``ps`` (``setproctitle`` rewrites its command line), '' if gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def processes_titled(prefix: str) -> dict[int, str]:
    """Live processes whose title starts with ``prefix``: pid -> title."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            title = process_title(int(entry))
            if title.startswith(prefix) and (_stat_fields(int(entry)) or ["Z"])[0] != "Z":
                found[int(entry)] = title
    return found


def signal_session(session_id: int, sig: signal.Signals) -> list[int]:
    """Send ``sig`` to every process of a session; return the pids signalled."""
    pids = session_members(session_id)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return pids


def wait_until(
    condition: Callable[[], T | None], timeout: float, interval: float = 0.5, message: str | Callable[[], str] = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; return that, or raise ``TimeoutError``.

    :param condition: called repeatedly; its first truthy result is returned.
    :param timeout: seconds before giving up.
    :param interval: seconds between calls.
    :param message: what was awaited (or a callable building it), for the error.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {text or condition}")
        time.sleep(interval)


@dataclass
class Service:
    """One long-running process started by the suite, in its own session.

    :param name: short name, also the name of its output file.
    :param argv: the command.
    :param env: its complete environment.
    :param log_dir: folder of the output file (stdout and stderr together).
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def log_path(self) -> Path:
        """The file its output goes to (appended across restarts)."""
        return self.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        """Pid of the running process (also its session and process group id)."""
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> Service:
        """Start the process in a new session; its output is appended to :attr:`log_path`."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"{self.name} is already running")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            out.write(f"\n===== start #{self.starts + 1}: {' '.join(self.argv)}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                list(self.argv),
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        return self

    def running(self) -> bool:
        """Whether the session leader is still alive."""
        return self.process is not None and self.process.poll() is None

    def members(self) -> list[int]:
        """Pids of every live process of its session (the leader, its children, their children...)."""
        return [] if self.process is None else session_members(self.process.pid)

    def kill(self) -> None:
        """SIGKILL every process of its session at once (a crash) and reap the leader."""
        if self.process is None:
            return
        signal_session(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        session = self.process.pid
        wait_until(lambda: not session_members(session), 30, 0.1, f"{self.name}'s processes to die")
        self.process = None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole session, then SIGKILL whatever is left after ``grace`` seconds (idempotent)."""
        stop_all([self], grace)

    def tail(self, lines: int = 40) -> str:
        """The end of its output (for failure messages)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def stop_all(services: Sequence[Service], grace: float = 10.0) -> None:
    """Stop services together: SIGTERM every session, wait up to ``grace`` seconds, SIGKILL what is left.

    :param services: services to stop; those not running are skipped.
    :param grace: seconds allowed for a clean exit (Airflow services drain and say goodbye).
    """
    running = [service for service in services if service.process is not None]
    for service in running:
        signal_session(service.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(service.members() for service in running):
        time.sleep(0.2)
    for service in running:
        assert service.process is not None
        signal_session(service.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            service.process.wait(timeout=10)
        service.process = None


def iter_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root``."""
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file():
                yield path


def _interrupt_on_signal(signum: int, frame: FrameType | None) -> None:
    # pytest reports a SystemExit inside a test as that test's failure and goes on with the next one;
    # a KeyboardInterrupt ends the session and still tears the session fixtures down.
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def stopped_on_exit(stop: Callable[[], None]) -> Iterator[None]:
    """Run ``stop`` when the block ends, however it ends: normally, on an exception, on Ctrl-C, on SIGTERM or
    SIGHUP (turned into ``KeyboardInterrupt`` while the block runs) and, as a last resort, from ``atexit``.

    :param stop: idempotent; stops everything a test session started.
    """
    atexit.register(stop)
    previous = {sig: signal.signal(sig, _interrupt_on_signal) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        try:
            stop()
        finally:
            atexit.unregister(stop)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
