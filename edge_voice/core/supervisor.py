"""Deadlines, the hang exit and config reload: the watchdog around the turn state machine.

A Python thread stuck in native code cannot be killed, and only that thread may touch its engine. So a
stage that misses its deadline ends its turn (late results are dropped by cancel token), and an engine
still stuck at ``service.hung_exit_ms`` makes the daemon exit 70 for systemd's ``Restart=on-failure``.
``check`` judges; ``tick`` and ``reload`` act through the orchestrator's small ``Supervised`` face.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from edge_voice.core import events as ev
from edge_voice.core.config import Config, ConfigError
from edge_voice.core.jobs import BusyStage
from edge_voice.core.messages import SAMPLE_RATE, StageFailed
from edge_voice.core.reload import apply_live, changed_keys, is_live
from edge_voice.core.turns import Turn
from edge_voice.core.vocabulary import ErrorCode, Stage

log = logging.getLogger(__name__)

EXIT_HUNG = 70  # EX_SOFTWARE: systemd restarts the daemon


class Supervised(Protocol):
    """What the supervisor may do to the turn state machine."""

    @property
    def turn(self) -> Turn | None: ...

    def is_live(self, turn_id: int, attempt: int) -> bool: ...

    def publish(self, payload: ev.EventPayload, turn: Turn | None = None) -> None: ...

    def handle(self, msg: StageFailed) -> None: ...

    def abandon(self, reason: str) -> None:
        """End the turn (cancelled, listener closed)."""
        ...

    def halt(self, exit_code: int, reason: str) -> None:
        """Cancel everything and stop the loop with ``exit_code``."""
        ...

    def apply_config(self, cfg: Config) -> None: ...


@dataclass(frozen=True, slots=True)
class Hung:
    """An engine call has not returned for ``hung_exit_ms``: exit for a restart."""

    stage: Stage
    message: str


@dataclass(frozen=True, slots=True)
class ListenTimedOut:
    """A turn listened far longer than any utterance can last (the listener never reported), or the
    listener took no audio at all for ``service.stage_timeout_ms``."""

    message: str = "no endpoint reported"


@dataclass(slots=True)
class _Listening:
    """The uncommitted turn's listening: input samples taken when first seen, and when the listener last
    took any (the input clock's progress, against the wall clock)."""

    turn_id: int
    start: int
    last: int
    last_ns: int


Verdict = StageFailed | Hung | ListenTimedOut


class Supervisor:
    def __init__(
        self,
        cfg: Config,
        stages: Sequence[BusyStage],
        now_ns: Callable[[], int],
        load_config: Callable[[], Config] | None = None,
        heard: Callable[[], int] = lambda: 0,
    ) -> None:
        self.cfg = cfg
        self.stages = stages
        self.now_ns = now_ns
        self.load_config = load_config  # SIGHUP: re-read the same file + env (raises ConfigError)
        self.heard = heard  # input samples the listener has taken so far (the input clock)
        self.halted = False
        self._listening: _Listening | None = None

    def tick(self, sm: Supervised) -> None:
        """Every 100 ms: act on the first deadline missed."""
        if self.halted:
            return
        match self.check(sm.turn, sm.is_live):
            case StageFailed() as failed:
                sm.handle(failed)
            case ListenTimedOut(message=message):
                info = ev.ErrorInfo(Stage.LISTEN, ErrorCode.LISTEN_TIMEOUT, message)
                sm.publish(info, sm.turn)
                sm.abandon("listen_timeout")
            case Hung() as hung:
                log.error("%s", hung.message)
                sm.publish(ev.ErrorInfo(hung.stage, ErrorCode.HUNG, hung.message), sm.turn)
                self.halted = True
                sm.halt(EXIT_HUNG, "hung")

    def check(self, turn: Turn | None, is_live_attempt: Callable[[int, int], bool]) -> Verdict | None:
        """The first deadline missed, if any. ``is_live_attempt(turn_id, attempt)``: work of a
        cancelled attempt that is stuck is not the live turn's fault."""
        now = self.now_ns()
        for w in self.stages:
            since = w.busy_since_ns
            if since is not None and now - since > self.cfg.service.hung_exit_ms * 1_000_000:
                secs = (now - since) / 1e9
                return Hung(w.stage, f"{w.stage} engine stuck for {secs:.0f} s; exiting for a restart")
        if turn is None:
            return None
        # stages first: an uncommitted turn may already wait on its decode (the commit comes with the words)
        for w in self.stages:
            since, ctx = w.busy_since_ns, w.busy_ctx
            if since is None or ctx is None or ctx.turn_id != turn.id:
                continue
            budget = self._budget_s(w.stage) + w.busy_extra_s
            if (now - since) / 1e9 <= budget or not is_live_attempt(ctx.turn_id, ctx.attempt):
                continue
            msg = f"{w.stage} did not finish within {budget:.0f} s"
            return StageFailed(turn.id, w.stage, ErrorCode.TIMEOUT, msg, ctx.attempt)
        if turn.committed is None:
            return self._listen_deadline(turn, now)
        return None

    def _listen_deadline(self, turn: Turn, now: int) -> ListenTimedOut | None:
        """Listening is judged on the input clock, as the detectors are: the endpointer gives up after
        ``no_speech_timeout_ms`` / ``max_utterance_ms`` of *audio*, so the backstop counts audio too (5 s
        over). A listener slower than real time (a busy board, emulation) takes its audio late but still
        reaches its endpoint; a wall-clock deadline ended such turns with audio still queued. Only a
        listener that takes no audio at all (a stalled source or detector) is judged on the wall clock,
        by ``service.stage_timeout_ms``, as any other stuck stage."""
        heard = self.heard()
        ls = self._listening
        if ls is None or ls.turn_id != turn.id:
            self._listening = ls = _Listening(turn.id, heard, heard, turn.created_ns)
        elif heard != ls.last:
            ls.last, ls.last_ns = heard, now
        e = self.cfg.endpoint
        limit = (e.no_speech_timeout_ms + e.max_utterance_ms + 5000) * SAMPLE_RATE // 1000
        if heard - ls.start > limit:
            return ListenTimedOut()
        stalled_s = (now - ls.last_ns) / 1e9
        if stalled_s > self.cfg.service.stage_timeout_ms / 1000:
            return ListenTimedOut(f"no audio listened to for {stalled_s:.0f} s")
        return None

    def _budget_s(self, stage: Stage) -> float:
        if stage == Stage.ASR:  # a decode is bounded by its own abort callback
            return self.cfg.asr.max_decode_ms / 1000 + 2.0  # the worker adds its retry (busy_extra_s)
        return self.cfg.service.stage_timeout_ms / 1000  # playback: one sentence's audio on top

    def reload(self, sm: Supervised) -> None:
        """SIGHUP: re-read the config; the live part of a valid one is applied, an invalid one changes
        nothing (the daemon keeps serving with the old one)."""
        if self.load_config is None:
            return
        try:
            new = self.load_config()
        except ConfigError as exc:
            sm.publish(ev.ErrorInfo(Stage.CONFIG, ErrorCode.RELOAD_FAILED, str(exc), key=exc.key))
            return
        keys = changed_keys(self.cfg, new)
        self.cfg = apply_live(self.cfg, new)
        sm.apply_config(self.cfg)
        sm.publish(ev.ReloadedInfo([k for k in keys if is_live(k)], [k for k in keys if not is_live(k)]))
