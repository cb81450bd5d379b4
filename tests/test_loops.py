"""`soritune.loops.loop_start`: the earliest loop anywhere in an output, and ordinary text spared."""

from soritune.loops import LOOP_MIN_TOKENS, loop_period, loop_start


def test_loop_start_finds_the_earliest_loop_anywhere():
    assert loop_start([3, 4] + [8, 9] * 6 + [1]) == (2, 2)
    assert loop_start(list(range(30)) + [5] * LOOP_MIN_TOKENS + list(range(30, 40))) == (30, 1)
    # two loops: the earlier one wins, whatever its unit
    assert loop_start([1, 2, 3] * 4 + [9] * 20) == (0, 3)
    assert loop_start(list(range(100, 116)) * 3) == (0, 16)


def test_loop_start_spares_ordinary_text_and_short_repeats():
    assert loop_start(list(range(200))) is None
    assert loop_start([1, 2, 3] * 3 + list(range(10, 30))) is None  # 9 tokens: under LOOP_MIN_TOKENS
    assert loop_start([5] * (LOOP_MIN_TOKENS - 1)) is None
    assert loop_start([]) is None


def test_loop_start_agrees_with_loop_period_on_tails():
    for ids in ([5, 6] + [0] * LOOP_MIN_TOKENS, [9] + [1, 2, 3] * 4, [7, 1, 2, 3, 4, 5] * 3, list(range(40))):
        assert (loop_start(ids) is not None) == (loop_period(ids) is not None)
