"""The words, highlights and passages PostgreSQL search hits show: cut and
marked as SQLite's unicode61 and snippet() would, found however deep in a
long text the matches are."""

from gortc.repositories.postgres.search_text import Wanted, highlight, passage, words_of


def test_words_are_cut_at_punctuation_like_unicode61() -> None:
    assert words_of("budget.txt e-mail v1.2 naïve_plan") == "budget txt e mail v1 2 naïve plan"


def test_highlight_marks_words_whatever_their_case_and_accents() -> None:
    wanted = Wanted(frozenset({"cafe"}), ("bud",))
    assert highlight("Café BUDGET cafeteria", wanted, "[", "]") == "[Café] [BUDGET] cafeteria"


def test_passage_is_the_run_with_most_matches_deep_in_a_long_text() -> None:
    filler = " ".join(f"word{i % 997}" for i in range(30_000))
    text = f"{filler} Budget report: the budget for café budgets {filler}"
    shown = passage(text, Wanted(frozenset({"budget", "cafe"}), ()), "[", "]", words=8)
    assert shown.startswith("…") and shown.endswith("…")
    assert "[Budget] report: the [budget] for [café]" in shown
    assert "word" not in shown.split("[Budget]")[1]  # the run is where the matches are


def test_passage_without_a_match_is_the_start_of_the_text() -> None:
    text = "one two three four five six"
    assert passage(text, Wanted(frozenset({"zebra"}), ()), "[", "]", words=3) == "one two three…"


def test_a_long_plain_text_gives_the_same_passage_quickly() -> None:
    filler = " ".join(f"word{i % 997}" for i in range(20_000))
    text = f"{filler} the Budget report, budgeting and the budget. {filler} budget"
    wanted = Wanted(frozenset({"budget"}), ("report",))
    shown = passage(text, wanted, "[", "]", words=6)
    assert shown == "…[Budget] [report], budgeting and the [budget]…"
    nothing = passage(text, Wanted(frozenset({"zebra"}), ()), "[", "]", words=3)
    assert nothing == "word0 word1 word2…"
