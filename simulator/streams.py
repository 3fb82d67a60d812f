"""Seeds and keyed random streams (DESIGN section 6).

One root seed per run. Every patient gets its own ``numpy.random.Generator`` from
``SeedSequence(root, spawn_key=(replicate, patient))``; the patient's latent biology is drawn
from it up front, in a fixed order. Draws whose number depends on treatment come from streams
keyed by ``(purpose, line, drug)`` so that two arms of a comparison use the same numbers until
their treatment really differs (common random numbers). Within such a stream, visit ``v``
consumes the ``v``-th block of a fixed size, so the stream is effectively keyed by visit too.

Nothing here touches global random state, ``hash()`` of strings (salted per process), the wall
clock or uuids. A result depends only on the root seed, the replicate and the patient index.
"""

from __future__ import annotations

import secrets
from enum import IntEnum

import numpy as np
from numpy.random import PCG64, Generator, SeedSequence

#: Largest root seed accepted (seeds are recorded in JSON and YAML, keep them exact integers).
MAX_SEED = 2**63 - 1
_MASK32 = 0xFFFFFFFF
_KEYED_TAG = 0x68636373  # "hccs": marks keyed-stream entropy


class Purpose(IntEnum):
    """Fixed integer codes of the keyed streams. Never renumber: results depend on them."""

    BIOLOGY = 0  # not a keyed stream: the patient's own generator (listed for completeness)
    IMAGING = 1  # per line: visit timing jitter and measurement error, one block per visit
    # per line: the drug-effect draws first (sensitivity, resistance pace), then adverse-event
    # onsets and grades
    TREATMENT = 2
    POLICY = 3  # per line: whether another line follows, and the gap before it
    LABS = 5  # per patient: the lab visit noise of the whole lab grid, drawn at the start
    ALLOCATION = 6  # per replicate: arm allocation lists
    ACCRUAL = 7  # per replicate: entry times
    TOXICITY_MINOR = 8  # per line: lower-grade adverse events, filled in afterwards
    PROGRESSION = 9  # per patient: budgets of the competing events, new lesions' attributes
    BEYOND = 10  # per line: whether immunotherapy continues beyond a first progression
    SPONTANEOUS = 11  # per line: whether the tumour regresses whatever the regimen
    # per patient: the new-lesion propensity, then the occult micro-lesions present at the start
    NEW_LESIONS = 12
    # per line: the central reader's measurement errors (independent review), one block per visit
    CENTRAL = 13


def draw_root_seed() -> int:
    """A fresh root seed for a run that was given none. Recorded in every output."""
    return secrets.randbits(63)


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return seed


def _generator(root: int, key: tuple[int, ...]) -> Generator:
    return Generator(PCG64(SeedSequence(root, spawn_key=key)))


def replicate_stream(root: int, replicate: int, purpose: Purpose, *sub: int) -> Generator:
    """A stream shared by a whole replicate (allocation lists, accrual times), optionally
    divided further by ``sub`` (for example a block of patients).

    Keys of different kinds never coincide: a patient's own generator is keyed
    ``(replicate, patient)``, replicate streams ``(replicate, purpose, 2**32 - 1, *sub)``
    (SeedSequence turns each integer below 2**32 into one 32-bit word, so the lengths differ),
    and keyed patient streams use a tagged entropy array (see :meth:`PatientStreams.keyed`).
    """
    return _generator(root, (replicate, int(purpose), 2**32 - 1, *sub))


class PatientStreams:
    """All randomness of one patient in one replicate.

    ``biology`` is the patient's own generator, used only for the up-front draws (baseline,
    growth, susceptibilities, death budget), in a fixed order. ``keyed()`` gives the
    treatment-dependent streams; each is created once, on first use, and cached.
    """

    __slots__ = ("_cache", "biology", "patient", "replicate", "root")

    def __init__(self, root: int, replicate: int, patient: int) -> None:
        self.root = root
        self.replicate = replicate
        self.patient = patient
        self.biology = _generator(root, (replicate, patient))
        self._cache: dict[tuple[int, int, int], Generator] = {}

    def keyed(self, purpose: Purpose, line: int, drug: int) -> Generator:
        """The stream for ``(purpose, line, drug)``; ``drug`` is the catalogue's integer code.

        Its SeedSequence takes the whole key as one array of 32-bit words,
        ``[tag, root_lo, root_hi, replicate, patient, purpose, line, drug]`` (8 words; the
        patient's own generator assembles 6 and replicate streams 7, so no two kinds of key can
        coincide). This is equivalent to a ``spawn_key`` and four times cheaper to build, which
        matters at several streams per patient. Replicate and patient indices must stay below
        2**32 (the scenario format caps them far lower).
        """
        key = (int(purpose), line, drug)
        gen = self._cache.get(key)
        if gen is None:
            words = np.array(
                [
                    _KEYED_TAG,
                    self.root & _MASK32,
                    self.root >> 32,
                    self.replicate,
                    self.patient,
                    *key,
                ],
                dtype=np.uint32,
            )
            gen = Generator(PCG64(SeedSequence(words)))
            self._cache[key] = gen
        return gen


class BlockStream:
    """Visit-keyed draws from one keyed stream: visit ``v`` always gets block ``v``.

    Each call to :meth:`next_block` returns the next ``size`` standard normals and ``size``
    uniforms. Because every visit consumes exactly one block, the numbers seen at visit ``v`` of
    a line depend only on ``(patient, line, drug, v)``, whatever happened at other visits.
    """

    __slots__ = ("_gen", "size")

    def __init__(self, gen: Generator, size: int) -> None:
        self._gen = gen
        self.size = size

    def next_block(self) -> tuple[np.ndarray, np.ndarray]:
        # One call each: standard_normal's consumption depends only on ``size``.
        return self._gen.standard_normal(self.size), self._gen.random(self.size)
