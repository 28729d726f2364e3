"""What every benchmark shares: servers and load as separate processes on 127.0.0.1, bounded in
time; CPU and memory read from /proc; medians, a printed table and a JSON file in bench/results/."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PEER = BENCH / "peer"
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * PAGE


def need_peer() -> None:
    if not (PEER / "node_modules" / "socket.io").is_dir():
        sys.exit("bench: run `bash bench/setup.sh` first (installs the Node peer's packages)")


class Process:
    """A child process in its own process group; killed (group-wide) on exit, whatever happens."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.name} exited (code {await self.proc.wait()})")
        return line.decode().rstrip("\n")

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def stop(self) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()


@contextlib.asynccontextmanager
async def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdin: bool = False,
    stderr_to: Path | None = None,
) -> AsyncIterator[Process]:
    if stderr_to is not None:
        stderr_to.parent.mkdir(parents=True, exist_ok=True)
    err = open(stderr_to, "ab") if stderr_to is not None else subprocess.DEVNULL
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
            start_new_session=True,
        )
        process = Process(proc, name)
        try:
            yield process
        finally:
            await process.stop()
    finally:
        if stderr_to is not None and not isinstance(err, int):
            err.close()


async def wait_http(port: int, timeout: float = 30.0) -> None:
    """Wait (bounded) until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


async def wait_ready(base_url: str, timeout: float = 60.0) -> None:
    """Wait (bounded) until ``GET <base_url>/readyz`` answers 200."""
    import aiohttp

    deadline = time.monotonic() + timeout
    last = "no answer"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{base_url}/readyz") as response:
                    if response.status == 200:
                        return
                    last = f"{response.status} {(await response.text())[:200]}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{base_url}/readyz not 200 after {timeout} s (last: {last})")


async def settle(
    pids: Sequence[int], *, max_s: float = 20.0, quiet_cores: float = 0.2, window: float = 0.5
) -> dict[str, Any]:
    """Wait (bounded by ``max_s``) until the processes together use at most ``quiet_cores`` of
    a core over two consecutive windows: the work queued by the phase before is done."""
    started = time.monotonic()
    quiet = 0
    last = sum(cpu_seconds(pid) for pid in pids)
    while time.monotonic() - started < max_s:
        await asyncio.sleep(window)
        now = sum(cpu_seconds(pid) for pid in pids)
        quiet = quiet + 1 if (now - last) / window <= quiet_cores else 0
        last = now
        if quiet >= 2:
            return {"waited_s": round(time.monotonic() - started, 2), "quiet": True}
    return {"waited_s": round(time.monotonic() - started, 2), "quiet": False}


async def drive_load(
    config: dict[str, Any],
    path: Path,
    on_mark: Callable[[str], Awaitable[None] | None],
    *,
    timeout: float,
    stderr_to: Path | None = None,
) -> dict[str, Any]:
    """Run bench/peer/load.js with ``config``; call ``on_mark`` at each mark (awaited if it is a
    coroutine function, before the load client goes on); return its result."""
    config = {**config, "hard_limit_s": timeout}
    path.write_text(json.dumps(config))
    deadline = time.monotonic() + timeout + 10
    async with spawn(
        "load", ["node", str(PEER / "load.js"), str(path)], stdin=True, stderr_to=stderr_to
    ) as load:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("load client over its time limit")
            line = await load.readline(left)
            if line.startswith("mark-nowait "):
                pending = on_mark(line.split(" ", 1)[1])
                if inspect.isawaitable(pending):
                    await pending
            elif line.startswith("mark "):
                pending = on_mark(line.split(" ", 1)[1])
                if inspect.isawaitable(pending):
                    await pending
                await load.send("go")
            elif line.startswith("result "):
                result: dict[str, Any] = json.loads(line.split(" ", 1)[1])
                return result


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def machine() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "node": node.stdout.strip(),
        "kernel": platform.release(),
        "load_average_1m_5m": [round(load1, 2), round(load5, 2)],
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(header)] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **data}, indent=2))
    (RESULTS / f"{name}-latest.json").write_text(path.read_text())
    return path
