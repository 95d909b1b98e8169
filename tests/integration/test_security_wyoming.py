"""Issue 19, items 2 and 4: a hostile Wyoming TTS server cannot push a huge event, an endless reply or
more audio than its text needs; the phrase cache is filled by the local voice, bounded in bytes; one
reply speaks at most ``tts.max_reply_s``. Peers are scripted loopback sockets that stop by themselves."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from wyoming.event import Event, read_event

from edge_voice.core.cancel import CancelToken
from edge_voice.core.jobs import Ctx, SpeakJob
from edge_voice.engines.base import RemoteError
from edge_voice.engines.remote.fallback import FallbackSynthesizer
from edge_voice.engines.remote.wyoming import WyomingSynthesizer, max_audio_s
from edge_voice.engines.tts import PhraseCache
from edge_voice.runtime.workers import PlayChunk, TtsWorker
from tests.conftest import wait_until
from tests.fakes import ToneSynthesizer
from tests.integration.test_security_remote_llm import MB, reset_peak_rss, rss_mb
from tests.integration.test_wyoming import encode, tts_cfg

FMT = {"rate": 22050, "width": 2, "channels": 1}


class Flood:
    """A Wyoming TTS peer: waits for ``synthesize``, then sends ``head`` and ``block`` repeatedly until
    ``budget`` bytes went out or the client hung up. ``served`` counts requests."""

    def __init__(self, head: bytes, block: bytes, budget: int) -> None:
        self.head, self.block, self.budget = head, block, budget
        self.served = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.uri = f"tcp://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as reader:
                while (event := read_event(reader)) is not None and event.type != "synthesize":
                    pass
                self.served += 1
                try:
                    conn.sendall(self.head)
                    sent = 0
                    while sent < self.budget:
                        conn.sendall(self.block)
                        sent += len(self.block)
                except OSError:
                    pass  # the client hung up

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def flood() -> Iterator[Callable[[bytes, bytes, int], Flood]]:
    made: list[Flood] = []

    def make(head: bytes, block: bytes, budget: int) -> Flood:
        made.append(Flood(head, block, budget))
        return made[-1]

    yield make
    for f in made:
        f.close()


def test_a_63_mb_audio_chunk_is_refused_from_its_header_with_bounded_memory(
    flood: Callable[..., Flood],
) -> None:
    # the review's attack: one 63 MB chunk for "Volume up." became 347 MB in the phrase cache
    head = encode(Event("audio-start", FMT)) + encode(Event("audio-chunk", FMT, b"\0\0" * 10))
    big = (
        b'{"type": "audio-chunk", "data": {"rate": 22050, "width": 2, "channels": 1}, "payload_length": %d}\n'
    )
    f = flood(head + big % (63 * MB), b"\0" * MB, 63 * MB)
    synth = WyomingSynthesizer(tts_cfg(f.uri, 5000), 22050)
    before = rss_mb()
    reset_peak_rss()
    with pytest.raises(RemoteError, match="event body of 66060288 bytes"):
        list(synth.synthesize("Volume up.", CancelToken()))
    growth = rss_mb("VmHWM") - before
    print(f"63 MB chunk: peak RSS +{growth:.1f} MB")
    assert growth < 16


def test_reply_audio_longer_than_its_text_needs_is_an_error(flood: Callable[..., Flood]) -> None:
    second = encode(Event("audio-chunk", FMT, b"\0\0" * 22050))  # 1 s per event, forever
    f = flood(encode(Event("audio-start", FMT)), second, 600 * len(second))  # 10 minutes at most
    synth = WyomingSynthesizer(tts_cfg(f.uri, 5000), 22050)
    limit = max_audio_s("Volume up.", synth.cfg.max_reply_s)
    assert limit == 7.0
    got: list[int] = []
    with pytest.raises(RemoteError, match=r"reply audio over 7\.0 s for 10 characters"):
        for pcm in synth.synthesize("Volume up.", CancelToken()):
            got.append(len(pcm))
    assert sum(got) <= 7 * 22050


def test_endless_empty_chunks_end_at_the_event_bound(flood: Callable[..., Flood]) -> None:
    empty = encode(Event("audio-chunk", FMT, b""))
    f = flood(encode(Event("audio-start", FMT)), empty * 1000, 100_000 * len(empty))
    synth = WyomingSynthesizer(tts_cfg(f.uri, 5000), 22050)
    with pytest.raises(RemoteError, match="more than 20000 events"):
        list(synth.synthesize("Volume up.", CancelToken()))


def test_the_phrase_cache_is_filled_by_the_local_voice_never_the_remote(flood: Callable[..., Flood]) -> None:
    f = flood(encode(Event("audio-start", FMT)), b"", 0)  # would answer (and hang) if it were asked
    local = ToneSynthesizer()
    local.sample_rate = 22050
    remote = FallbackSynthesizer(WyomingSynthesizer(tts_cfg(f.uri, 5000), 22050), local, "wyoming")
    cache = PhraseCache(local)  # type: ignore[arg-type]
    played: list[object] = []

    class Playback:
        def submit(self, job: object, timeout_s: float = 5.0) -> None:
            played.append(job)

    worker = TtsWorker(remote, lambda _m: None, Playback(), cache, ["Volume up.", "Done."], fill_engine=local)  # type: ignore[arg-type]
    worker.start()
    try:
        wait_until(worker.prefilled.is_set, what="the cache filled")
    finally:
        worker.stop()
        worker.join(5)
    assert local.texts == ["Volume up.", "Done."] and f.served == 0
    assert "Volume up." in cache and "Done." in cache


def test_phrase_cache_is_bounded_in_bytes() -> None:
    local = ToneSynthesizer()
    cache = PhraseCache(local, max_bytes=1 * MB)  # type: ignore[arg-type]
    cache.put("huge", np.zeros(10 * MB, np.int16))  # above an eighth of the budget: never kept
    assert "huge" not in cache and cache.nbytes == 0
    for i in range(100):
        cache.put(f"phrase {i}", np.zeros(60_000, np.int16))  # 120 KB each
    assert cache.nbytes <= 1 * MB and len(cache) == 8
    assert "phrase 99" in cache and "phrase 0" not in cache


def test_one_reply_speaks_at_most_max_reply_s() -> None:
    tone = ToneSynthesizer(ms_per_char=100.0)  # 10 chars = 1 s
    played: list[PlayChunk] = []

    class Playback:
        def submit(self, job: object, timeout_s: float = 5.0) -> None:
            if isinstance(job, PlayChunk):
                played.append(job)

    worker = TtsWorker(tone, lambda _m: None, Playback(), max_reply_s=5.0)  # type: ignore[arg-type]
    worker.start()
    try:
        ctx = Ctx(1, 1, CancelToken(), threading.Event())
        for i in range(10):  # ten sentences of 3 s each: 30 s asked
            worker.submit(SpeakJob(ctx, i, "x" * 30))
        other = Ctx(2, 1, CancelToken(), threading.Event())
        worker.submit(SpeakJob(other, 0, "y" * 30))  # the next reply has its own budget
        wait_until(lambda: any(p.ctx is other for p in played), what="the next reply")
    finally:
        worker.stop()
        worker.join(5)
    first = [p for p in played if p.ctx is ctx]
    assert sum(len(p.chunk.samples) for p in first) == 5 * tone.sample_rate
    assert (
        first[-1].chunk.last_of_sentence and len(tone.texts) == 3
    )  # no synthesis after the budget was spent
