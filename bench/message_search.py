"""Message search: two ways of keeping a search to the caller's groups, raw SQLite.

Both index ``messages.body`` in an external-content FTS5 table
(``unicode61 remove_diacritics 2``), as gortc does; they differ in how the
caller's memberships are applied, in SQL either way:

* ``join``   the FTS5 table indexes the body only; the query joins
  ``messages`` (by rowid) and ``members`` (caller, group) to the matches.
* ``token``  the FTS5 table also indexes ``messages.group_id`` as a column
  (one token per message); the query's MATCH is
  ``group_id : ("g1" OR "g2" …) AND body : (…)`` with the caller's groups.

Each query is "the caller's 20 newest matches" (``ORDER BY rowid DESC``) and
"the caller's 20 best by bm25", with snippet(). Corpus: ``--messages``
chat-sized messages (Zipf words over 20,000 words, 3–25 words each) in
``--groups`` groups of Zipf-skewed sizes; each asking user is a member of 40
groups drawn by size ("big"), or of 40 of the smaller half ("small": the
join's worst case, most matches of a common word being other people's).
Words are picked by frequency rank: common (rank 0–20), middle
(200–1,000), rare (5,000–20,000), and an AND of a common and a middle word.
Also reported: messages per second inserted in batches of 500 (an
``executemany`` into messages, then one into the index as gortc does it),
and without any index (``none``).

Run: ``python bench/message_search.py`` (300,000 messages, about ten minutes).
"""

# ruff: noqa: S608  (only the ORDER BY is spliced in, from two constants)
from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE members (group_id TEXT, user_id TEXT, PRIMARY KEY (group_id, user_id))
    WITHOUT ROWID;
CREATE INDEX members_by_user ON members (user_id, group_id);
CREATE TABLE messages (id TEXT PRIMARY KEY, group_id TEXT NOT NULL, body TEXT NOT NULL,
    deleted_at TEXT);
"""
FTS = {
    "join": "CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', "
    "content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')",
    "token": "CREATE VIRTUAL TABLE messages_fts USING fts5(body, group_id, content='messages', "
    "content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')",
}
SYLLABLES = tuple(
    "ka to mi ra ne so lu pe vi da go chi mo ta ri ba ze fu no ya".split()  # noqa: SIM905
)


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choices(SYLLABLES, k=rng.choice((2, 3, 3, 4)))))
    return sorted(words, key=lambda w: rng.random())


def build(path: Path, design: str, messages: int, groups: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    vocab = vocabulary(rng, 20_000)
    weights = [1.0 / (r + 2.7) for r in range(len(vocab))]
    group_weights = [1.0 / (r + 1) ** 0.9 for r in range(groups)]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(SCHEMA)
    if design in FTS:
        conn.execute(FTS[design])
    group_of = rng.choices(range(groups), weights=group_weights, k=messages)
    insert_seconds = 0.0
    batch = 500
    for start in range(0, messages, batch):
        rows = []
        for i in range(start, min(messages, start + batch)):
            words = rng.choices(vocab, weights=weights, k=rng.randint(3, 25))
            rows.append((f"m{i:09d}", f"G{group_of[i]:06d}", " ".join(words)))
        began = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO messages (id, group_id, body) VALUES (?, ?, ?)", rows)
        if design == "join":
            conn.executemany(
                "INSERT INTO messages_fts (rowid, body) "
                "VALUES ((SELECT rowid FROM messages WHERE id = ?), ?)",
                [(row[0], row[2]) for row in rows],
            )
        elif design == "token":
            conn.executemany(
                "INSERT INTO messages_fts (rowid, body, group_id) "
                "VALUES ((SELECT rowid FROM messages WHERE id = ?), ?, ?)",
                [(row[0], row[2], row[1]) for row in rows],
            )
        conn.execute("COMMIT")
        insert_seconds += time.perf_counter() - began
    members = []
    for user in range(20):
        chosen = set(rng.choices(range(groups), weights=group_weights, k=60))
        members += [(f"G{g:06d}", f"U{user}") for g in list(chosen)[:40]]
    for user in range(5):
        # Worst case for the join: a few small groups, where the matches of
        # a common word are mostly other people's.
        chosen = set(rng.sample(range(groups // 2, groups), 40))
        members += [(f"G{g:06d}", f"S{user}") for g in chosen]
    conn.executemany("INSERT OR IGNORE INTO members VALUES (?, ?)", members)
    conn.close()
    return {"insert_msg_per_s": messages / insert_seconds}


def queries(rng: random.Random, vocab_size: int) -> list[tuple[str, int]]:
    """(kind, word rank) pairs; the words are looked up in the database's vocabulary."""
    kinds = [("common", (0, 20)), ("middle", (200, 1_000)), ("rare", (5_000, 20_000))]
    out = []
    for kind, (low, high) in kinds:
        out += [(kind, rng.randrange(low, min(high, vocab_size))) for _ in range(30)]
    out += [("and", -1) for _ in range(30)]
    return out


def run(path: Path, design: str, seed: int) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    vocab = vocabulary(rng, 20_000)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA query_only = ON")
    results: dict[str, list[float]] = {}
    qrng = random.Random(seed + 1)
    for kind, rank in queries(qrng, len(vocab)):
        if kind == "and":
            expr = f'"{vocab[qrng.randrange(0, 20)]}" "{vocab[qrng.randrange(200, 1000)]}"'
        else:
            expr = f'"{vocab[rank]}"'
        for who, user in (("big", f"U{qrng.randrange(20)}"), ("small", f"S{qrng.randrange(5)}")):
            for order in ("newest", "relevance"):
                began = time.perf_counter()
                run_query(conn, design, expr, user, order)
                key = f"{kind}/{order}/{who}"
                results.setdefault(key, []).append(time.perf_counter() - began)
    conn.close()
    return {
        key: {
            "p50_ms": statistics.median(times) * 1000,
            "p95_ms": sorted(times)[int(0.95 * len(times))] * 1000,
        }
        for key, times in results.items()
    }


def run_query(
    conn: sqlite3.Connection, design: str, expr: str, user: str, order: str
) -> list[tuple[object, ...]]:
    order_by = "f.rowid DESC" if order == "newest" else "f.rank"
    if design == "join":
        sql = (
            "SELECT m.id, snippet(messages_fts, 0, '[', ']', '…', 12) FROM messages_fts AS f "
            "JOIN messages AS m ON m.rowid = f.rowid "
            "JOIN members AS mb ON mb.group_id = m.group_id AND mb.user_id = ? "
            f"WHERE messages_fts MATCH ? AND m.deleted_at IS NULL ORDER BY {order_by} LIMIT 20"
        )
        return conn.execute(sql, (user, expr)).fetchall()
    groups = [
        row[0] for row in conn.execute("SELECT group_id FROM members WHERE user_id = ?", (user,))
    ]
    match = "group_id : (" + " OR ".join(f'"{g}"' for g in groups) + f") AND body : ({expr})"
    sql = (
        "SELECT m.id, snippet(messages_fts, 0, '[', ']', '…', 12) FROM messages_fts AS f "
        "JOIN messages AS m ON m.rowid = f.rowid "
        f"WHERE messages_fts MATCH ? AND m.deleted_at IS NULL ORDER BY {order_by} LIMIT 20"
    )
    return conn.execute(sql, (match,)).fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--groups", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        for design in ("none", "join", "token"):
            path = Path(workdir) / f"{design}.db"
            built = build(path, design, args.messages, args.groups, args.seed)
            size_mb = path.stat().st_size / 1e6
            print(
                f"{design}: {built['insert_msg_per_s']:,.0f} msg/s inserted, {size_mb:.0f} MB",
                flush=True,
            )
            if design not in FTS:
                continue
            for key, figures in run(path, design, args.seed).items():
                print(
                    f"  {key:20} p50 {figures['p50_ms']:7.2f} ms  p95 {figures['p95_ms']:7.2f} ms"
                )


if __name__ == "__main__":
    main()
