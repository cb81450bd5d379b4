"""Token loops: one definition for every decoder (Whisper's and the speech LLM's).

A loop is one unit of 1-16 tokens repeated back to back `LOOP_REPEATS`+ times over `LOOP_MIN_TOKENS`+
tokens: "1000000000...", "the the the ...", ",5,5,5,5,5,5". `loop_period` looks at the tail (a decoder
stopping a row as it loops); `loop_start` anywhere in a finished output (Whisper's fallback test).

    from soritune.loops import loop_period, loop_start
    loop_period([5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7])  # -> 1
    loop_start([3, 4] + [8, 9] * 6 + [1])  # -> (2, 2): the loop starts at index 2, unit of 2 tokens
"""

from __future__ import annotations

LOOP_REPEATS = 3  # repetitions of the unit
LOOP_MIN_TOKENS = 12  # and at least this many tokens in the repeated run
LOOP_MAX_UNIT = 16  # longest unit (tokens) looked for
LOOP_DEFINITION = (f"a unit of 1-{LOOP_MAX_UNIT} tokens repeated back to back {LOOP_REPEATS}+ times over "
                   f"{LOOP_MIN_TOKENS}+ tokens")


def loop_period(ids: list[int]) -> int | None:
    """The unit length (tokens) when the tail of `ids` loops (LOOP_DEFINITION), else None."""
    n = len(ids)
    for p in range(1, LOOP_MAX_UNIT + 1):
        need = max(LOOP_MIN_TOKENS, LOOP_REPEATS * p)
        if n < need:
            break
        if all(ids[n - 1 - i] == ids[n - 1 - i - p] for i in range(need - p)):
            return p
    return None


def loop_start(ids: list[int]) -> tuple[int, int] | None:
    """(index where the earliest loop begins, its unit length) anywhere in `ids` (LOOP_DEFINITION), else None."""
    best = None
    n = len(ids)
    for p in range(1, LOOP_MAX_UNIT + 1):
        need = max(LOOP_MIN_TOKENS, LOOP_REPEATS * p)
        run = 0  # consecutive i with ids[i] == ids[i + p]: a periodic stretch of run + p tokens from i - run + 1
        for i in range(n - p):
            run = run + 1 if ids[i] == ids[i + p] else 0
            if run + p >= need:
                start = i - run + 1
                if best is None or start < best[0]:
                    best = (start, p)
                break
    return best
