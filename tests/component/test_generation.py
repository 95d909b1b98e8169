"""``generate_sentences`` with the reply guard and the real chunker: at most two sentences, the stream
closed as soon as the answer is over, the fallback instead of bad text, and the text history keeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from edge_voice.core.cancel import CancelToken
from edge_voice.core.chunker import SentenceChunker
from edge_voice.core.conversation import as_generated
from edge_voice.core.jobs import Ctx, LlmJob
from edge_voice.core.messages import ChatMessage, GenerationDone, Message, SentenceReady
from edge_voice.core.reply_guard import FALLBACK, ReplyGuard
from edge_voice.engines.base import GenerationStats
from edge_voice.runtime.generation import Generated, generate_sentences
from edge_voice.runtime.workers import LlmWorker, TtsWorker
from tests.fakes import ToneSynthesizer

REQUEST = (ChatMessage("user", "q"),)


class TokenLlm:
    """Streams ``text`` a few characters at a time and records how far the consumer read."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.yielded = 0
        self.closed = False
        self.last: GenerationStats | None = None

    def warm(self, prefix: Sequence[ChatMessage]) -> None:
        pass

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        pass

    def stream(self, messages: Sequence[ChatMessage], cancel: CancelToken) -> Iterator[str]:
        try:
            for i in range(0, len(self.text), 3):
                if cancel.cancelled:
                    return
                self.yielded += 1
                yield self.text[i : i + 3]
        finally:
            self.closed = True  # what LlamaGenerator does on close: llama.cpp drops the request


def run(text: str, question: str = "Tell me about Paris.") -> tuple[Generated, list[str], TokenLlm]:
    llm = TokenLlm(text)
    spoken: list[str] = []
    done = generate_sentences(
        llm,
        REQUEST,
        CancelToken(),
        SentenceChunker(4),
        lambda _t, _f: None,
        spoken.append,
        ReplyGuard(question),
    )
    return done, spoken, llm


def test_the_answer_stops_after_two_sentences_and_the_generation_with_it() -> None:
    text = "Paris is the capital of France. It lies on the Seine. It has many museums. It is old. " * 3
    done, spoken, llm = run(text)
    assert spoken == ["Paris is the capital of France.", "It lies on the Seine."]
    assert llm.closed and llm.yielded < len(text) // 3 / 2  # stopped early, not read to the end
    assert (done.stopped, done.cut) == ("eos", "sentences")
    assert done.text == "Paris is the capital of France. It lies on the Seine."  # as generated, as spoken
    assert as_generated(done.text, done.stopped) == done.text  # history keeps exactly what was spoken


def test_a_first_clause_does_not_count_as_a_sentence() -> None:
    text = "Paris is the capital of France, and it lies on the Seine. It is a very old city. It is big. "
    done, spoken, _ = run(text)
    assert spoken == [
        "Paris is the capital of France,",
        "and it lies on the Seine.",
        "It is a very old city.",
    ]
    assert done.cut == "sentences"


def test_a_foreign_first_sentence_becomes_the_fallback_and_never_the_text() -> None:
    done, spoken, llm = run(
        "La capitale d'Italia è Roma. Roma è molto bella. ", "What is the capital of Italy?"
    )
    assert spoken == [FALLBACK]
    assert llm.closed and done.cut.startswith("foreign:")
    assert done.text == FALLBACK  # history holds what was heard, not the Italian


def test_a_foreign_second_sentence_ends_the_answer_after_the_good_one() -> None:
    done, spoken, _ = run("Rome is the capital of Italy. La capitale d'Italia è Roma. ", "Capital of Italy?")
    assert spoken == ["Rome is the capital of Italy."]
    assert done.text == "Rome is the capital of Italy."


def test_an_invented_forecast_is_refused_and_a_run_on_question_ends_quietly() -> None:
    _, spoken, _ = run("It will be sunny with a high of 25 degrees. ", "What is the weather like tomorrow?")
    assert spoken == [FALLBACK]
    done, spoken, _ = run(
        "Paris is the capital. What is the capital of Spain? Madrid. ", "Capital of France?"
    )
    assert spoken == ["Paris is the capital."] and done.cut == "run-on"


def test_a_short_answer_ends_as_before_and_an_empty_one_says_the_fallback() -> None:
    done, spoken, _ = run("Paris is the capital of France.")
    assert spoken == ["Paris is the capital of France."]
    assert (done.stopped, done.cut, done.text) == ("eos", "", "Paris is the capital of France.")
    _, spoken, _ = run("")
    assert spoken == [FALLBACK]


class NoTts(TtsWorker):
    def __init__(self) -> None:
        super().__init__(ToneSynthesizer(), lambda _m: None, None)  # type: ignore[arg-type]
        self.texts: list[str] = []

    def submit(self, job: object, timeout_s: float = 5.0) -> None:
        text = getattr(job, "text", None)
        if text is not None:
            self.texts.append(text)


def test_the_llm_thread_reports_what_was_spoken_and_is_free_for_the_next_job() -> None:
    posted: list[Message] = []
    tts = NoTts()
    llm = TokenLlm("Paris is the capital of France. It lies on the Seine. It has many museums. " * 4)
    worker = LlmWorker(llm, posted.append, tts, lambda: SentenceChunker(4), max_sentences=2)
    worker.submit(LlmJob(Ctx(1, 1, CancelToken(), threading.Event()), REQUEST, "Tell me about Paris."))
    worker._run_one(worker.jobs.get())
    assert tts.texts == ["Paris is the capital of France.", "It lies on the Seine."]
    assert [m.text for m in posted if isinstance(m, SentenceReady)] == tts.texts
    done = [m for m in posted if isinstance(m, GenerationDone)]
    assert len(done) == 1 and done[0].stopped == "eos"
    assert done[0].text == "Paris is the capital of France. It lies on the Seine."
    assert llm.closed and worker.busy_ctx is None
