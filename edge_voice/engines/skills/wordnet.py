"""A reader for the WordNet 3.0 database files (Debian's ``wordnet-base``: /usr/share/wordnet). The
index files are sorted, so a lemma is found by binary search over a memory map; a synset is one line at a
byte offset in ``data.<pos>``. Nothing is loaded up front: start-up is instant and the memory cost is
the pages touched. File format: wndb(5WN)."""

from __future__ import annotations

import mmap
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path("/usr/share/wordnet")
POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
_MORPH_RULES = {
    "n": (
        ("s", ""),
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    "v": (
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}


@dataclass(frozen=True, slots=True)
class Pointer:
    symbol: str  # "!" antonym, "&" similar to, "@" hypernym, ... (wninput(5WN))
    offset: int
    pos: str
    source: int  # word number in this synset (0 = the whole synset)
    target: int


@dataclass(frozen=True, slots=True)
class Synset:
    offset: int
    pos: str  # "n", "v", "a", "s" (adjective satellite), "r"
    words: tuple[str, ...]  # lemmas with spaces, as written ("Wellington", "well-being")
    pointers: tuple[Pointer, ...]
    gloss: str

    @property
    def definition(self) -> str:
        """The gloss without its quoted examples: "lasting a very short time"."""
        parts = [p.strip() for p in self.gloss.split(";")]
        defs = [p for p in parts if p and not p.startswith('"')]
        return defs[0] if defs else ""


@dataclass(frozen=True, slots=True)
class Lemma:
    word: str
    pos: str
    offsets: tuple[int, ...]  # senses, most frequent first
    tagged: int  # how many senses were seen in the tagged corpus: a frequency hint across parts of speech


class WordNet:
    def __init__(self, root: Path = DEFAULT_DIR) -> None:
        self.root = root
        self._index: dict[str, mmap.mmap] = {}
        self._data: dict[str, mmap.mmap] = {}
        self._exc: dict[str, dict[str, str]] = {}
        for pos, name in POS_FILES.items():
            # fails with OSError when the database is missing: load_skills disables the skill
            self._index[pos] = _map(root / f"index.{name}")
            self._data[pos] = _map(root / f"data.{name}")
            exc = root / f"{name}.exc"
            self._exc[pos] = _read_exc(exc) if exc.exists() else {}

    def lemma(self, word: str, pos: str) -> Lemma | None:
        key = word.lower().replace(" ", "_").encode()
        line = _bsearch(self._index[pos], key)
        if line is None:
            return None
        f = line.decode().split()
        n_synsets, n_ptr = int(f[2]), int(f[3])
        tagged = int(f[5 + n_ptr])
        offsets = tuple(int(x) for x in f[6 + n_ptr : 6 + n_ptr + n_synsets])
        return Lemma(word, pos, offsets, tagged)

    def base_forms(self, word: str, pos: str) -> list[str]:
        """The word itself, an exception-list base ("geese" → "goose"), then suffix rules ("cats" → "cat")."""
        forms = [word]
        if exc := self._exc[pos].get(word):
            forms.append(exc)
        forms += [
            word[: -len(suf)] + rep
            for suf, rep in _MORPH_RULES[pos]
            if word.endswith(suf) and len(word) > len(suf) + 1
        ]
        return list(dict.fromkeys(forms))

    def lookup(self, word: str, pos: str) -> Lemma | None:
        for form in self.base_forms(word, pos):
            if found := self.lemma(form, pos):
                return found
        return None

    def synset(self, offset: int, pos: str) -> Synset:
        data = self._data["a" if pos == "s" else pos]
        end = data.find(b"\n", offset)
        line = data[offset : end if end >= 0 else len(data)].decode()
        head, _, gloss = line.partition(" | ")
        f = head.split()
        n_words = int(f[3], 16)
        words = tuple(re.sub(r"\(.*\)$", "", f[4 + 2 * i]).replace("_", " ") for i in range(n_words))
        i = 4 + 2 * n_words
        n_ptr = int(f[i])
        pointers = []
        for j in range(n_ptr):
            sym, off, p, st = f[i + 1 + 4 * j : i + 5 + 4 * j]
            pointers.append(Pointer(sym, int(off), p, int(st[:2], 16), int(st[2:], 16)))
        return Synset(int(f[0]), f[2], words, tuple(pointers), gloss.strip())


def _map(path: Path) -> mmap.mmap:
    with path.open("rb") as fh:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def _read_exc(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out.setdefault(parts[0].replace("_", " "), parts[1].replace("_", " "))
    return out


def _bsearch(m: mmap.mmap, key: bytes) -> bytes | None:
    """The line of a sorted index file whose first field is ``key`` (licence lines start with spaces)."""
    lo, hi = 0, len(m)
    target = key + b" "
    while lo < hi:
        mid = (lo + hi) // 2
        start = m.rfind(b"\n", 0, mid) + 1
        end = m.find(b"\n", start)
        end = len(m) if end < 0 else end
        line = m[start:end]
        if line.startswith(b" "):  # header: everything sorts after it
            lo = end + 1
            continue
        if line.startswith(target):
            return line
        if line < target:
            lo = end + 1
        else:
            hi = start
    return None
