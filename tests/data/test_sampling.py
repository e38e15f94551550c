"""tfreg/data/sampling.py: DeepReg's sample counts and orders, checked against hand-written random calls."""

import random

import pytest

from tfreg.data import sampling


def test_paired_is_a_seeded_shuffle():
    expected = list(range(7))
    random.Random(3).shuffle(expected)
    got = list(sampling.paired_samples(7, seed=3))
    assert got == [(i, i, [i]) for i in expected]
    # same seed, same order every epoch (a new Random per call)
    assert list(sampling.paired_samples(7, seed=3)) == got


def test_paired_unseeded_varies():
    orders = {tuple(s[0] for s in sampling.paired_samples(12, seed=None)) for _ in range(5)}
    assert len(orders) > 1


@pytest.mark.parametrize("num_images", [6, 7])
def test_unpaired_pairs_neighbours(num_images):
    order = list(range(num_images))
    random.Random(0).shuffle(order)
    got = list(sampling.unpaired_samples(num_images, seed=0))
    assert len(got) == num_images // 2 == sampling.unpaired_num_samples(num_images)
    assert got == [(order[2 * k], order[2 * k + 1], [order[2 * k], order[2 * k + 1]]) for k in range(num_images // 2)]


def test_grouped_all_pairs_counts_and_order():
    n = [3, 2]
    forward = sampling.grouped_all_pairs(n, 1, "forward")
    assert forward == [(0, 0, 0, 1), (0, 0, 0, 2), (0, 1, 0, 2), (1, 0, 1, 1)]
    backward = sampling.grouped_all_pairs(n, 1, "backward")
    assert backward == [(0, 1, 0, 0), (0, 2, 0, 0), (0, 2, 0, 1), (1, 1, 1, 0)]
    unconstrained = sampling.grouped_all_pairs(n, 1, "unconstrained")
    assert len(unconstrained) == 3 * 2 + 2 * 1
    assert unconstrained[:2] == [(0, 0, 0, 1), (0, 1, 0, 0)]
    inter = sampling.grouped_all_pairs(n, 0, "forward")
    total = sum(n)
    assert len(inter) == total * (total - 1) - sum(k * (k - 1) for k in n) == 12
    assert inter[0] == (0, 0, 1, 0) and inter[-1] == (1, 1, 0, 2)
    assert all(g1 != g2 for g1, _, g2, _ in inter)


def test_grouped_enumerated_is_shuffled_with_seed():
    n = [4, 3]
    pairs = sampling.grouped_all_pairs(n, 1, "forward")
    random.Random(5).shuffle(pairs)
    got = list(sampling.grouped_samples(n, 1, "forward", False, seed=5))
    assert [tuple(s[2]) for s in got] == pairs
    assert all(s[0] == (s[2][0], s[2][1]) and s[1] == (s[2][2], s[2][3]) for s in got)
    assert sampling.grouped_num_samples(n, 1, "forward", False) == 6 + 3


def _by_hand(n, p, option, seed):
    """DeepReg's draws, spelled out step by step."""
    rnd = random.Random(seed)
    groups = list(range(len(n)))
    rnd.shuffle(groups)
    out = []
    for g in groups:
        if rnd.random() <= p:
            if n[g] < 2:
                continue
            a, b = rnd.sample(list(range(n[g])), 2)
            if option == "forward":
                a, b = sorted((a, b))
            elif option == "backward":
                b, a = sorted((a, b))
            out.append([g, a, g, b])
        else:
            other = rnd.choice([h for h in range(len(n)) if h != g])
            a = rnd.choice(list(range(n[g])))
            b = rnd.choice(list(range(n[other])))
            out.append([g, a, other, b])
    return out


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("option", ["forward", "backward", "unconstrained"])
def test_grouped_sample_in_group_matches_hand_draws(p, option):
    n = [4, 3, 5, 2]
    for seed in range(4):
        got = [s[2] for s in sampling.grouped_samples(n, p, option, True, seed=seed)]
        assert got == _by_hand(n, p, option, seed)
        assert len(got) == sampling.grouped_num_samples(n, p, option, True) == 4
        for g1, i1, g2, i2 in got:
            if g1 == g2:
                assert i1 != i2
                assert (option != "forward" or i1 < i2) and (option != "backward" or i1 > i2)
            else:
                assert p < 1


def test_grouped_skips_one_image_group_for_intra():
    got = list(sampling.grouped_samples([1, 3], 1.0, "forward", True, seed=0))
    assert len(got) == 1 and got[0][2][0] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (([3], 0.5, "forward", True), "at least two groups"),
        (([3, 3], 1.5, "forward", True), "intra_group_prob"),
        (([3, 3], 0.5, "forward", False), "must be 0 or 1"),
        (([3, 3], 1, "sideways", True), "intra_group_option"),
        (([3, 3], 1, "forward", "yes"), "sample_image_in_group"),
    ],
)
def test_grouped_option_errors(args, message):
    with pytest.raises(ValueError, match=message):
        sampling.check_grouped_options(*args)


def test_label_indices():
    rnd = random.Random(0)
    assert sampling.label_indices(3, "all", rnd) == [0, 1, 2]
    draws = {sampling.label_indices(3, "sample", rnd)[0] for _ in range(50)}
    assert draws == {0, 1, 2}
    with pytest.raises(ValueError, match="sample_label"):
        sampling.label_indices(3, "some", rnd)
    # seeded label draws are reproducible and independent of the pair stream
    r1, r2 = sampling.label_rng(4), sampling.label_rng(4)
    assert [r1.randrange(5) for _ in range(10)] == [r2.randrange(5) for _ in range(10)]


@pytest.mark.parametrize("num_images", [0, 1, 2, 5])
def test_unpaired_all_pairs_every_ordered_pair_once_moving_major(num_images):
    got = list(sampling.unpaired_all_pairs(num_images))
    expected = [(m, f, [m, f]) for m in range(num_images) for f in range(num_images) if m != f]
    assert got == expected
    assert len(got) == num_images * (num_images - 1) == sampling.unpaired_all_pairs_num_samples(num_images)
    assert len({(m, f) for m, f, _ in got}) == len(got)


def test_unpaired_all_pairs_count_of_the_papers_test_set():
    # He, He and Cao (2022) evaluate every ordered pair of their 50 JSRT test images: 2450 registrations
    assert sampling.unpaired_all_pairs_num_samples(50) == 2450 == len(list(sampling.unpaired_all_pairs(50)))
