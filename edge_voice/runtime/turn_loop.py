"""The asyncio loop that drives the turn state machine: the inbox every thread posts into, the 100 ms
housekeeping tick (deadlines, timers), and at shutdown a short wait for interrupted replies to report
what was heard. The state machine itself (``core/orchestrator.py``) is synchronous."""

from __future__ import annotations

import asyncio
import time

from edge_voice.core.messages import Message, PlaybackFinished
from edge_voice.core.orchestrator import Orchestrator


class TurnLoop:
    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.loop: asyncio.AbstractEventLoop | None = None

    def post(self, msg: Message) -> None:
        """Thread-safe: any thread hands a message to the loop."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.inbox.put_nowait, msg)

    async def run(self) -> None:
        """Dispatch until the orchestrator stops (Shutdown, the end of a file source once the last turn
        is done, a fatal failure), then let interrupted replies report what was heard."""
        self.loop = asyncio.get_running_loop()
        ticker = asyncio.create_task(self._ticks())
        try:
            while not self.orch.stopping:
                try:
                    msg = await asyncio.wait_for(self.inbox.get(), 0.2)
                except TimeoutError:
                    continue  # re-check ``stopping`` (a tick may have set it)
                self.orch.handle(msg)
            await self._drain_interrupted()
        finally:
            ticker.cancel()

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            self.orch.tick()

    async def _drain_interrupted(self, timeout_s: float = 1.0) -> None:
        """A reply cut off mid-word still gets its ``response.done`` ("interrupted", with the heard
        text): the playback thread stops within one chunk, so this waits milliseconds, not seconds."""
        end = time.monotonic() + timeout_s
        while self.orch.conversation.awaiting_heard and time.monotonic() < end:
            try:
                msg = await asyncio.wait_for(self.inbox.get(), max(0.01, end - time.monotonic()))
            except TimeoutError:
                break
            if isinstance(msg, PlaybackFinished):
                self.orch.handle(msg)
        self.orch.give_up_heard()
