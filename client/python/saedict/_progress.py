"""The one-line ingest progress bar on stderr (no dependency)."""
import sys
import time
from typing import Optional, TextIO


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """Redraws one line per acknowledged ingest batch: tokens done (of the
    total when known, with a bar and an ETA), documents, tokens/s. On a
    stream that is not a terminal it writes at most one line per `interval`
    seconds, plus the last one."""

    def __init__(self, total_tokens: Optional[int] = None, stream: Optional[TextIO] = None,
                 interval: float = 0.2, width: int = 24, clock=time.monotonic):
        self.total = total_tokens
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.width = width
        self._clock = clock
        self._start = clock()
        self._last_draw = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.line = ""

    def render(self, tokens: int, documents: int, now: Optional[float] = None) -> str:
        elapsed = max((now if now is not None else self._clock()) - self._start, 1e-9)
        rate = tokens / elapsed
        if self.total:
            fraction = min(tokens / self.total, 1.0)
            filled = int(round(fraction * self.width))
            bar = "#" * filled + "-" * (self.width - filled)
            eta = _duration((self.total - tokens) / rate) if rate > 0 else "?"
            return (f"ingest [{bar}] {tokens:,}/{self.total:,} tokens {100 * fraction:5.1f}%  "
                    f"{documents:,} docs  {rate:,.0f} tok/s  ETA {eta}")
        return f"ingest {tokens:,} tokens  {documents:,} docs  {rate:,.0f} tok/s"

    def update(self, ack) -> None:
        """Called with each IngestAck."""
        now = self._clock()
        if self._last_draw is not None and now - self._last_draw < self.interval:
            return
        self._draw(self.render(ack.total_tokens, ack.total_documents, now))
        self._last_draw = now

    def finish(self, ack) -> None:
        """The final line (always drawn) and a newline."""
        if ack is not None:
            self._draw(self.render(ack.total_tokens, ack.total_documents))
        if self.line:
            self.stream.write("\n" if self._tty else "")
            self.stream.flush()

    def _draw(self, line: str) -> None:
        if self._tty:
            pad = " " * max(0, len(self.line) - len(line))
            self.stream.write("\r" + line + pad)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.line = line


class ByteProgress:
    """One progress line for uploads, imports and exports: done/total units
    with a percentage and a rate, redrawn in place on a terminal, at most one
    line per `interval` seconds elsewhere."""

    def __init__(self, label: str, total: int, unit: str = "bytes",
                 stream: Optional[TextIO] = None, interval: float = 0.2, clock=time.monotonic):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._clock = clock
        self._start = clock()
        self._last_draw = None
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._done = 0
        self.line = ""

    def render(self, done: int, now: Optional[float] = None) -> str:
        elapsed = max((now if now is not None else self._clock()) - self._start, 1e-9)
        pct = 100.0 * done / self.total if self.total else 100.0
        rate = done / elapsed
        if self.unit == "bytes":
            return (f"{self.label} {done / 1e6:,.1f}/{self.total / 1e6:,.1f} MB {pct:5.1f}%  "
                    f"{rate / 1e6:,.1f} MB/s")
        return f"{self.label} {done:,}/{self.total:,} {self.unit} {pct:5.1f}%  {rate:,.0f} {self.unit}/s"

    def update(self, done: int) -> None:
        self._done = done
        now = self._clock()
        if self._last_draw is not None and now - self._last_draw < self.interval:
            return
        self._draw(self.render(done, now))
        self._last_draw = now

    def finish(self) -> None:
        self._draw(self.render(self._done))
        if self._tty:
            self.stream.write("\n")
        self.stream.flush()

    def _draw(self, line: str) -> None:
        if self._tty:
            self.stream.write("\r" + line + " " * max(0, len(self.line) - len(line)))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.line = line
