"""Deterministic corpus of personal text files for the full-text search benchmarks.

``Corpus(files=100_000)`` describes about 500 MB of English-like text files
(5 KB on average, log-normal sizes from 100 bytes to 200 KB) owned by 1,000
users with a skewed share (the largest owner has about 6% of the files, the
smallest a few dozen). Words follow a Zipf-Mandelbrot law over a 50,000-word
vocabulary: the most common English words first (embedded below), then
pronounceable pseudo-words for the long tail. File names look like notes,
logs, journals and drafts and reuse the content words, so the name column
matters for ranking.

Everything derives from the seed: file ``i`` is generated from its own
``random.Random`` so any file can be regenerated on its own (the query mix
picks words from files of the owner that asks, so that every query hits).

Run ``python bench/search/corpus.py --files 20000 --out /tmp/corpus`` to write
the files as ``DIR/u<owner>/<name>``, or without ``--out`` to time the
generation alone.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# The most common English words, roughly by frequency (rank 0 = most common).
_COMMON_TEXT = """
the of and to a in is it you that he was for on are with as i his they be at one
have this from or had by not word but what some we can out other were all there
when up use your how said an each she which do their time if will way about many
then them write would like so these her long make thing see him two has look more
day could go come did number sound no most people my over know water than call
first who may down side been now find any new work part take get place made live
where after back little only round man year came show every good me give our under
name very through just form sentence great think say help low line differ turn
cause much mean before move right boy old too same tell does set three want air
well also play small end put home read hand port large spell add even land here
must big high such follow act why ask men change went light kind off need house
picture try us again animal point mother world near build self earth father head
stand own page should country found answer school grow study still learn plant
cover food sun four between state keep eye never last let thought city tree cross
farm hard start might story saw far sea draw left late run while press close night
real life few north open seem together next white children begin got walk example
ease paper group always music those both mark often letter until mile river car
feet care second book carry took science eat room friend began idea fish mountain
stop once base hear horse cut sure watch color face wood main enough plain girl
usual young ready above ever red list though feel talk bird soon body dog family
direct pose leave song measure door product black short numeral class wind
question happen complete ship area half rock order fire south problem piece told
knew pass since top whole king space heard best hour better true during hundred
five remember step early hold west ground interest reach fast verb sing listen six
table travel less morning ten simple several vowel toward war lay against pattern
slow center love person money serve appear road map rain rule govern pull cold
notice voice unit power town fine certain fly fall lead cry dark machine note wait
plan figure star box noun field rest correct able pound done beauty drive stood
contain front teach week final gave green quick develop ocean warm free minute
strong special mind behind clear tail produce fact street inch multiply nothing
course stay wheel full force blue object decide surface deep moon island foot
system busy test record boat common gold possible plane stead dry wonder laugh
thousand ago ran check game shape equate hot miss brought heat snow tire bring yes
distant fill east paint language among budget meeting project report review
deadline invoice client server release draft schedule agenda email account
password backup update version issue ticket task todo idea summary weekly monthly
quarter sprint design feature bug fix deploy database query index cache network
login profile settings travel flight hotel booking receipt expense salary tax
insurance doctor appointment recipe garden grocery shopping birthday holiday
vacation weekend family kids school homework exam lecture course notes journal
diary thoughts goals habits workout running yoga sleep coffee lunch dinner
breakfast movie series podcast article chapter novel poem quote lyrics guitar
piano practice lesson language vocabulary grammar translation spanish french
german kitchen bathroom bedroom repair plumber electrician landlord lease rent
mortgage loan bank transfer payment subscription renewal contract proposal
interview resume career promotion manager team colleague feedback retrospective
planning estimate milestone roadmap strategy marketing sales revenue customer
support incident outage postmortem monitoring alert metrics dashboard latency
throughput storage migration schema backend frontend mobile android iphone laptop
keyboard monitor printer router wifi bluetooth charger battery camera photo video
"""
COMMON_WORDS = _COMMON_TEXT.split()

_SYLLABLE_TEXT = """
ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo fu ga ge gi go gu ha he
hi ho hu ja jo ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu pa pe
pi po pu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo wa we wi xa ya
yo za ze zo bra bre bri bro cla cle cli clo dra dre dri fla fle fli gra gre gri
pla ple pli pra pre pri sta ste sti sto tra tre tri str ark est ing ion ous ent
and ill orn usk elm ost
"""
SYLLABLES = _SYLLABLE_TEXT.split()

NAME_KINDS = 8
SIZE_MIN = 100
SIZE_MAX = 200_000
QUERY_KINDS = ("common", "common_heavy", "rare", "and", "or", "not", "phrase", "prefix")


@dataclass(frozen=True)
class FileRecord:
    id: int  # 1-based, the rowid in every design
    owner: int
    name: str
    text: str


@dataclass(frozen=True)
class Query:
    """One search of the mix: structured, so each engine builds its own syntax.

    ``terms`` are lower-case vocabulary words; ``kind`` says how they combine:
    common/common_heavy/rare: one term; and/or: t0 AND|OR t1; not: t0 NOT t1;
    phrase: the terms in sequence; prefix: terms[0] is a prefix (``budg*``).
    """

    kind: str
    owner: int
    terms: tuple[str, ...]

    def display(self) -> str:
        t = self.terms
        if self.kind in ("and", "or", "not"):
            return f" {self.kind.upper()} ".join(t)
        if self.kind == "phrase":
            return '"' + " ".join(t) + '"'
        if self.kind == "prefix":
            return t[0] + "*"
        return t[0]


def _pseudo_words(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    words: list[str] = []
    seen = set(taken)
    while len(words) < count:
        n = rng.choice((2, 2, 3, 3, 3, 4))
        w = "".join(rng.choices(SYLLABLES, k=n))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


class Corpus:
    """The corpus description; records are generated on demand."""

    def __init__(
        self,
        files: int = 100_000,
        owners: int = 1_000,
        seed: int = 20261121,
        mean_size: int = 5_040,
        vocab_size: int = 50_000,
        zipf_s: float = 1.0,
        zipf_q: float = 2.7,
    ) -> None:
        self.files = files
        self.seed = seed
        rng = random.Random(seed)
        common = list(dict.fromkeys(COMMON_WORDS))
        self.vocab: list[str] = common + _pseudo_words(rng, vocab_size - len(common), set(common))
        self.rank: dict[str, int] = {w: r for r, w in enumerate(self.vocab)}
        weights = [1.0 / (r + zipf_q) ** zipf_s for r in range(len(self.vocab))]
        total = sum(weights)
        # Quantised inverse CDF: a table in which each word has a number of
        # slots proportional to its probability (at least one), so that a
        # draw is a uniform index, ~3x faster than bisecting cum_weights.
        slots = 1 << 22
        table: list[str] = []
        for w, p in zip(self.vocab, weights, strict=True):
            table.extend(itertools.repeat(w, max(1, round(p / total * slots))))
        self._table = table
        mean_word = sum(len(w) * p for w, p in zip(self.vocab, weights, strict=True)) / total
        self._bytes_per_word = mean_word + 1.0
        # Log-normal sizes: sigma 1.0, so the median is mean / e^0.5.
        self._size_mu = math.log(mean_size) - 0.5
        # Owners: ids 1..owners, shares ~ 1 / rank^0.8, heavy owners shuffled.
        ids = list(range(1, owners + 1))
        rng.shuffle(ids)
        share = [1.0 / (r + 1) ** 0.8 for r in range(owners)]
        self.owner_of: list[int] = rng.choices(ids, weights=share, k=files)
        counts: dict[int, int] = {}
        self._ordinal: list[int] = []
        for o in self.owner_of:
            n = counts.get(o, 0)
            self._ordinal.append(n)
            counts[o] = n + 1
        self.files_per_owner = counts

    def _rng(self, index: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + index)

    def _name(self, rng: random.Random, ordinal: int) -> str:
        day = 19_000 + ordinal  # days since the epoch: unique per owner
        y, m, d = _date(day)
        w1, w2 = (self.vocab[rng.randrange(40, 3_000)] for _ in range(2))
        k = rng.randrange(NAME_KINDS)
        if k == 0:
            return f"notes/{w1}-{w2}-{ordinal}.txt"
        if k == 1:
            return f"logs/log-{y}-{m:02}-{d:02}.log"
        if k == 2:
            return f"drafts/{w1}-{w2}-v{ordinal}.md"
        if k == 3:
            return f"journal/{y}/{m:02}-{d:02}.md"
        if k == 4:
            return f"{w1}_{w2}_notes_{ordinal}.txt"
        if k == 5:
            return f"meetings/{w1}-meeting-{y}{m:02}{d:02}.txt"
        if k == 6:
            return f"todo/{w1}-{ordinal}.txt"
        return f"{w1} {w2} ({ordinal}).txt"

    def record(self, index: int) -> FileRecord:
        """File ``index`` (0-based); its ``id`` is ``index + 1``."""
        rng = self._rng(index)
        size = min(SIZE_MAX, max(SIZE_MIN, int(rng.lognormvariate(self._size_mu, 1.0))))
        words = rng.choices(self._table, k=max(3, int(size / self._bytes_per_word)))
        lines: list[str] = []
        i = 0
        n = len(words)
        while i < n:
            step = rng.randrange(4, 18)
            line = " ".join(words[i : i + step])
            lines.append(line.capitalize() + ("." if step & 1 else ""))
            if step == 5:
                lines.append("")  # paragraph break
            i += step
        name = self._name(rng, self._ordinal[index])
        return FileRecord(index + 1, self.owner_of[index], name, "\n".join(lines))

    def records(self, limit: int | None = None) -> Iterator[FileRecord]:
        for index in range(self.files if limit is None else min(limit, self.files)):
            yield self.record(index)

    def queries(self, per_kind: int = 100, pool: Sequence[int] | None = None) -> list[Query]:
        """The fixed query mix, ``per_kind`` of each of QUERY_KINDS.

        The owner of each query is the owner of a file drawn uniformly, so
        owners ask in proportion to their number of files (heavy users search
        more); the words come from that file, so every query has hits.
        ``common_heavy`` asks the ten largest owners for a top-30 word: the
        slow case. ``pool``: the file indices in the index (default: all).
        """
        indices = range(self.files) if pool is None else pool
        rng = random.Random(self.seed + 7)
        counts: dict[int, int] = {}
        for i in indices:
            counts[self.owner_of[i]] = counts.get(self.owner_of[i], 0) + 1
        heavy = sorted(counts, key=lambda o: -counts[o])[:10]
        out: list[Query] = []
        for kind in QUERY_KINDS:
            made = 0
            while made < per_kind:
                rec = self.record(indices[rng.randrange(len(indices))])
                toks = [t for t in _tokens(rec.text) if t in self.rank]
                q = self._make(kind, rng, rec.owner, toks, heavy)
                if q is not None:
                    out.append(q)
                    made += 1
        return out

    def _make(
        self, kind: str, rng: random.Random, owner: int, toks: list[str], heavy: list[int]
    ) -> Query | None:
        rank = self.rank

        def pick(lo: int, hi: int) -> str | None:
            cands = [t for t in toks if lo <= rank[t] < hi]
            return rng.choice(cands) if cands else None

        if kind == "common":
            return Query(kind, owner, (self.vocab[rng.randrange(30)],))
        if kind == "common_heavy":
            return Query("common_heavy", rng.choice(heavy), (self.vocab[rng.randrange(30)],))
        if kind == "rare":
            t = pick(10_000, len(self.vocab))
            return Query(kind, owner, (t,)) if t else None
        if kind in ("and", "or"):
            a, b = pick(200, 5_000), pick(200, 20_000)
            return Query(kind, owner, (a, b)) if a and b and a != b else None
        if kind == "not":
            a, b = pick(50, 2_000), self.vocab[rng.randrange(50, 2_000)]
            return Query(kind, owner, (a, b)) if a and a != b else None
        if kind == "phrase":
            if len(toks) < 4:
                return None
            n = rng.choice((2, 2, 3))
            start = rng.randrange(len(toks) - n)
            return Query(kind, owner, tuple(toks[start : start + n]))
        if kind == "prefix":
            t = pick(100, len(self.vocab))
            if not t or len(t) < 5:
                return None
            return Query(kind, owner, (t[: rng.choice((3, 4))],))
        raise ValueError(kind)


def _tokens(text: str) -> list[str]:
    # The corpus is ASCII letters, spaces, dots and newlines.
    return text.replace(".", " ").lower().split()


def _date(days: int) -> tuple[int, int, int]:
    d = datetime.date(1970, 1, 1) + datetime.timedelta(days=days)
    return d.year, d.month, d.day


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=20261121)
    ap.add_argument("--out", type=Path, help="write the files as DIR/u<owner>/<name>")
    args = ap.parse_args()
    t0 = time.perf_counter()
    corpus = Corpus(files=args.files, seed=args.seed)
    t1 = time.perf_counter()
    total = 0
    for rec in corpus.records():
        total += len(rec.text)
        if args.out is not None:
            path = args.out / f"u{rec.owner}" / rec.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rec.text)
    t2 = time.perf_counter()
    sizes = sorted(corpus.files_per_owner.values())
    print(
        f"{args.files} files, {total / 1e6:.1f} MB, {len(sizes)} owners "
        f"(files per owner: min {sizes[0]}, median {sizes[len(sizes) // 2]}, max {sizes[-1]}); "
        f"setup {t1 - t0:.1f} s, generation {t2 - t1:.1f} s ({total / 1e6 / (t2 - t1):.0f} MB/s)"
    )


if __name__ == "__main__":
    main()
