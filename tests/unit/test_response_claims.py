"""A response seen by both the SDK hooks and a framework's callback is recorded by the
first of them only; each path may record an id it owns again."""

from __future__ import annotations

import threading

from llm_toll._budget.once import Path, ResponseClaims


def test_the_first_path_owns_a_response_and_the_other_is_refused() -> None:
    claims = ResponseClaims()
    assert claims.claim("chatcmpl-1", "hooks")
    assert not claims.claim("chatcmpl-1", "callback")
    assert claims.claim("msg-2", "callback")
    assert not claims.claim("msg-2", "hooks")


def test_a_path_records_an_id_it_owns_again() -> None:
    claims = ResponseClaims()
    assert claims.claim("chatcmpl-1", "hooks")
    assert claims.claim("chatcmpl-1", "hooks")


def test_a_response_without_an_id_is_always_recorded() -> None:
    claims = ResponseClaims()
    paths: tuple[Path, ...] = ("hooks", "callback", "hooks")
    for path in paths:
        assert claims.claim(None, path)
        assert claims.claim("", path)


def test_old_claims_are_forgotten_past_the_bound() -> None:
    claims = ResponseClaims(size=2)
    for response_id in ("a", "b", "c"):
        assert claims.claim(response_id, "hooks")
    assert claims.claim("a", "callback")  # forgotten: "b" and "c" are the last two
    assert not claims.claim("c", "callback")


def test_of_two_paths_racing_for_one_id_exactly_one_wins() -> None:
    claims = ResponseClaims()
    start = threading.Barrier(8)
    wins: list[str] = []

    def race(path: Path) -> None:
        start.wait()
        if claims.claim("chatcmpl-race", path):
            wins.append(path)

    paths: list[Path] = ["hooks", "callback"] * 4
    threads = [threading.Thread(target=race, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(wins)) == 1
