"""Which images make each sample, in which order: pure Python, no TensorFlow, no file access.

These generators reproduce DeepReg's sample counts and orders exactly for a given seed, because they
make the same calls on a fresh ``random.Random(seed)`` in the same sequence (the predict output folder
names ``pair_<indices>`` depend on it). Each yields ``(moving_index, fixed_index, image_indices)``:

- ``moving_index``/``fixed_index``: what the moving/fixed file loader's ``get_data`` takes (an int, or
  ``(group, image)`` for grouped data);
- ``image_indices``: the sample's ``indices`` without the label index: paired ``[i]``, unpaired
  ``[m, f]``, grouped ``[g1, i1, g2, i2]``.

A ``seed`` of None draws a new order on every call (DeepReg's default for training); a fixed seed gives
the same order on every call, i.e. every epoch (DeepReg's default 0 for valid and test).
"""

from __future__ import annotations

import random
from typing import Iterator, List, Optional, Sequence, Tuple, Union

FileIndex = Union[int, Tuple[int, int]]
SampleIndex = Tuple[FileIndex, FileIndex, List[int]]

INTRA_GROUP_OPTIONS = ("forward", "backward", "unconstrained")
#: ``sample``/``all``: DeepReg's one label channel per sample; ``stack``: every channel in one sample.
SAMPLE_LABEL_OPTIONS = ("sample", "all", "stack")
#: The label entry of a sample's ``indices`` when it holds every label channel (``stack``); -1 is unlabeled.
STACKED_LABEL_INDEX = -2
#: The split key ``pairs`` of the unpaired loader: ``sample`` DeepReg's shuffled neighbours (``N // 2`` pairs
#: per epoch), ``all`` every ordered pair of distinct images (``N (N - 1)``; the evaluation protocol of He,
#: He and Cao 2022, "all pairs of the test set").
PAIRS_OPTIONS = ("sample", "all")


def paired_samples(num_images: int, seed: Optional[int]) -> Iterator[SampleIndex]:
    """Every pair once, in an order shuffled by ``seed``: ``(i, i, [i])``."""
    order = list(range(num_images))
    random.Random(seed).shuffle(order)
    for i in order:
        yield i, i, [i]


def unpaired_num_samples(num_images: int) -> int:
    """DeepReg's unpaired sample count: each image used once, an odd one out left over."""
    return num_images // 2


def unpaired_samples(num_images: int, seed: Optional[int]) -> Iterator[SampleIndex]:
    """Shuffle the images with ``seed`` and pair neighbours: ``(s[2k], s[2k+1], [s[2k], s[2k+1]])``."""
    order = list(range(num_images))
    random.Random(seed).shuffle(order)
    for k in range(unpaired_num_samples(num_images)):
        moving, fixed = order[2 * k], order[2 * k + 1]
        yield moving, fixed, [moving, fixed]


def unpaired_all_pairs_num_samples(num_images: int) -> int:
    """The number of ordered pairs of distinct images: ``N (N - 1)`` (2450 for 50 images)."""
    return num_images * (num_images - 1)


def unpaired_all_pairs(num_images: int) -> Iterator[SampleIndex]:
    """Every ordered pair of distinct images ``(m, f, [m, f])``, ``m != f``, moving index major.

    The order is fixed (no seed): ``(0, 1), (0, 2), ..., (0, N-1), (1, 0), (1, 2), ...``, so an evaluation
    over all pairs gives the same table whatever the seed. Both directions of each pair are included: the
    registration of ``m`` to ``f`` and of ``f`` to ``m`` are different problems.
    """
    for moving in range(num_images):
        for fixed in range(num_images):
            if moving != fixed:
                yield moving, fixed, [moving, fixed]


def check_grouped_options(
    num_images_per_group: Sequence[int], intra_group_prob: float, intra_group_option: str, sample_image_in_group: bool
) -> None:
    """Raise ValueError (naming the config key) for grouped-sampling options DeepReg rejected."""
    if isinstance(intra_group_prob, bool) or not isinstance(intra_group_prob, (int, float)):
        raise ValueError(f"intra_group_prob must be a number in [0, 1], got {intra_group_prob!r}")
    if not 0 <= intra_group_prob <= 1:
        raise ValueError(f"intra_group_prob must be in [0, 1], got {intra_group_prob}")
    if intra_group_option not in INTRA_GROUP_OPTIONS:
        raise ValueError(f"intra_group_option must be one of {list(INTRA_GROUP_OPTIONS)}, got {intra_group_option!r}")
    if not isinstance(sample_image_in_group, bool):
        raise ValueError(f"sample_image_in_group must be true or false, got {sample_image_in_group!r}")
    if intra_group_prob < 1 and len(num_images_per_group) < 2:
        raise ValueError(
            f"there are {len(num_images_per_group)} group(s), but inter-group sampling "
            f"(intra_group_prob={intra_group_prob} < 1) needs at least two groups"
        )
    if not sample_image_in_group and intra_group_prob not in (0, 1):
        raise ValueError(
            f"intra_group_prob must be 0 or 1 when sample_image_in_group is false (all pairs are "
            f"enumerated, and mixing intra- and inter-group pairs is not supported), got {intra_group_prob}"
        )


def grouped_all_pairs(
    num_images_per_group: Sequence[int], intra_group_prob: float, intra_group_option: str
) -> List[Tuple[int, int, int, int]]:
    """Every ``(g1, i1, g2, i2)`` pair, in DeepReg's enumeration order, before shuffling.

    ``intra_group_prob == 1`` (intra-group, within each group ``g``; for ``j < i``):
    forward ``(g, j, g, i)``, backward ``(g, i, g, j)``, unconstrained both, forward first.
    Counts: ``sum n(n-1)/2`` for forward/backward, ``sum n(n-1)`` unconstrained.

    ``intra_group_prob == 0`` (inter-group): every image of every group against every image of every
    other group, ``g1``, ``g2 != g1``, ``i1``, ``i2`` nested in that order.
    """
    pairs = []
    num_groups = len(num_images_per_group)
    if intra_group_prob == 0:
        for g1 in range(num_groups):
            for g2 in range(num_groups):
                if g1 == g2:
                    continue
                for i1 in range(num_images_per_group[g1]):
                    for i2 in range(num_images_per_group[g2]):
                        pairs.append((g1, i1, g2, i2))
        return pairs
    for g in range(num_groups):
        for i in range(num_images_per_group[g]):
            for j in range(i):
                if intra_group_option in ("forward", "unconstrained"):
                    pairs.append((g, j, g, i))
                if intra_group_option in ("backward", "unconstrained"):
                    pairs.append((g, i, g, j))
    return pairs


def grouped_num_samples(
    num_images_per_group: Sequence[int], intra_group_prob: float, intra_group_option: str, sample_image_in_group: bool
) -> int:
    """DeepReg's grouped sample count: one per group, or the number of enumerated pairs.

    With ``sample_image_in_group`` an intra-group draw from a group of one image yields nothing (as in
    DeepReg), so an epoch can hold fewer samples than this count.
    """
    if sample_image_in_group:
        return len(num_images_per_group)
    return len(grouped_all_pairs(num_images_per_group, intra_group_prob, intra_group_option))


def grouped_samples(
    num_images_per_group: Sequence[int],
    intra_group_prob: float,
    intra_group_option: str,
    sample_image_in_group: bool,
    seed: Optional[int],
) -> Iterator[Tuple[Tuple[int, int], Tuple[int, int], List[int]]]:
    """Grouped samples ``((g1, i1), (g2, i2), [g1, i1, g2, i2])``.

    ``sample_image_in_group``: the groups are shuffled, then for each group ``g`` one draw
    ``u = rnd.random()``; ``u <= intra_group_prob`` gives an intra-group pair (two distinct images by
    ``rnd.sample``, ordered by ``intra_group_option``), otherwise an inter-group pair (a second group by
    ``rnd.choice`` among the others, then one image of each by ``rnd.choice``). Otherwise all pairs
    (:func:`grouped_all_pairs`) are shuffled.
    """
    rnd = random.Random(seed)
    if not sample_image_in_group:
        pairs = grouped_all_pairs(num_images_per_group, intra_group_prob, intra_group_option)
        rnd.shuffle(pairs)
        for g1, i1, g2, i2 in pairs:
            yield (g1, i1), (g2, i2), [g1, i1, g2, i2]
        return
    num_groups = len(num_images_per_group)
    groups = list(range(num_groups))
    rnd.shuffle(groups)
    for g in groups:
        if rnd.random() <= intra_group_prob:
            n = num_images_per_group[g]
            if n < 2:
                continue  # no intra-group pair in a one-image group; DeepReg skipped it too
            i1, i2 = rnd.sample(range(n), 2)
            if intra_group_option == "forward":
                i1, i2 = min(i1, i2), max(i1, i2)
            elif intra_group_option == "backward":
                i1, i2 = max(i1, i2), min(i1, i2)
            g1 = g2 = g
        else:
            g1 = g
            g2 = rnd.choice([other for other in range(num_groups) if other != g])
            i1 = rnd.choice(range(num_images_per_group[g1]))
            i2 = rnd.choice(range(num_images_per_group[g2]))
        yield (g1, i1), (g2, i2), [g1, i1, g2, i2]


def label_indices(num_labels: int, sample_label: str, rnd: random.Random) -> List[int]:
    """The label channels one image pair contributes: one drawn at random (``"sample"``) or all (``"all"``: one
    sample each; ``"stack"``: all in one sample)."""
    if sample_label == "sample":
        return [rnd.randrange(num_labels)]
    if sample_label in ("all", "stack"):
        return list(range(num_labels))
    raise ValueError(f"sample_label must be one of {list(SAMPLE_LABEL_OPTIONS)}, got {sample_label!r}")


def label_rng(seed: Optional[int]) -> random.Random:
    """The generator for ``sample_label: sample`` draws.

    DeepReg drew from the global, unseeded ``random`` module, so its label choice was never
    reproducible. tfreg seeds a separate generator from ``seed`` (a different stream from the pair
    sampling, which therefore stays DeepReg's); None stays unseeded.
    """
    return random.Random(None if seed is None else f"tfreg-label-{seed}")


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """DeepReg's steps per epoch (training and validation): ``max(num_samples // batch_size, 1)``."""
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return max(int(num_samples) // int(batch_size), 1)


__all__ = [
    "paired_samples",
    "unpaired_samples",
    "unpaired_num_samples",
    "unpaired_all_pairs",
    "unpaired_all_pairs_num_samples",
    "grouped_samples",
    "grouped_all_pairs",
    "grouped_num_samples",
    "check_grouped_options",
    "label_indices",
    "label_rng",
    "INTRA_GROUP_OPTIONS",
    "SAMPLE_LABEL_OPTIONS",
    "STACKED_LABEL_INDEX",
    "PAIRS_OPTIONS",
    "steps_per_epoch",
]
