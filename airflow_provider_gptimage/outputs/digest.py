"""SHA-256 of a stream, computed on a helper thread while the next chunk is read and written.

``hashlib`` releases the GIL while it hashes a buffer, so on a machine with two cores hashing 100 MB no
longer adds to the copy's time. Memory stays bounded: at most ``max_pending`` chunks wait for the hasher.
"""

from __future__ import annotations

import hashlib
import queue
import threading


class ParallelSHA256:
    """A ``hashlib.sha256`` fed from another thread; use as a context manager so the thread always ends.

    :param max_pending: chunks queued at most before :meth:`update` waits for the hasher.
    """

    def __init__(self, max_pending: int = 4) -> None:
        self._digest = hashlib.sha256()
        self._chunks: queue.Queue[bytes | None] = queue.Queue(max_pending)
        self._thread = threading.Thread(target=self._run, name="gptimage-sha256", daemon=True)
        self._thread.start()
        self._done = False

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        """Queue ``chunk`` for hashing (in order)."""
        self._chunks.put(chunk)

    def close(self) -> None:
        """Finish hashing what is queued and stop the thread (idempotent)."""
        if not self._done:
            self._done = True
            self._chunks.put(None)
            self._thread.join()

    def hexdigest(self) -> str:
        """Return the digest of everything queued (stops the thread)."""
        self.close()
        return self._digest.hexdigest()

    def __enter__(self) -> ParallelSHA256:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
