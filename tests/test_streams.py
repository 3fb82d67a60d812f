"""Seeds and keyed random streams (DESIGN section 6)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hccsim.simulator.streams import (
    MAX_SEED,
    BlockStream,
    PatientStreams,
    Purpose,
    check_seed,
    replicate_stream,
)


def test_patient_generator_is_the_documented_seedsequence():
    """DESIGN section 6: SeedSequence(root, spawn_key=(replicate, patient))."""
    ref = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(123, spawn_key=(4, 56)))
    ).standard_normal(5)
    np.testing.assert_array_equal(PatientStreams(123, 4, 56).biology.standard_normal(5), ref)


def test_keyed_streams_repeat_and_differ():
    a, b = PatientStreams(9, 0, 1), PatientStreams(9, 0, 1)
    x = a.keyed(Purpose.IMAGING, 2, 5).random(4)
    np.testing.assert_array_equal(x, b.keyed(Purpose.IMAGING, 2, 5).random(4))
    # The cache returns the same stream object: a second call continues it.
    assert a.keyed(Purpose.IMAGING, 2, 5) is a.keyed(Purpose.IMAGING, 2, 5)
    firsts = set()
    for key in [(p, line, drug) for p in Purpose for line in range(1, 4) for drug in range(12)]:
        for patient in (0, 1):
            firsts.add(PatientStreams(9, 0, patient).keyed(*key).random())
    for rep in range(3):
        for purpose in Purpose:
            firsts.add(replicate_stream(9, rep, purpose).random())
    for patient in range(20):
        firsts.add(PatientStreams(9, 0, patient).biology.random())
    expected = len(Purpose) * 3 * 12 * 2 + 3 * len(Purpose) + 20
    assert len(firsts) == expected  # no two keys share a stream


def test_block_stream_gives_visit_v_the_same_block():
    gen = PatientStreams(1, 0, 0).keyed(Purpose.IMAGING, 1, 5)
    blocks = [BlockStream(gen, 9).next_block()[0] for _ in range(1)]
    again = BlockStream(PatientStreams(1, 0, 0).keyed(Purpose.IMAGING, 1, 5), 9)
    np.testing.assert_array_equal(blocks[0], again.next_block()[0])


def test_no_global_random_state_is_used_or_changed():
    np.random.seed(1)  # noqa: NPY002 - disturbing the legacy global state on purpose
    random.seed(1)
    before_np, before_py = np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002
    a = PatientStreams(77, 1, 2).keyed(Purpose.TREATMENT, 1, 1).random(3)
    np.random.seed(999)  # noqa: NPY002
    random.seed(999)
    b = PatientStreams(77, 1, 2).keyed(Purpose.TREATMENT, 1, 1).random(3)
    np.testing.assert_array_equal(a, b)
    np.random.seed(1)  # noqa: NPY002
    random.seed(1)
    PatientStreams(77, 1, 2).keyed(Purpose.TREATMENT, 1, 1).random(3)
    assert np.array_equal(np.random.get_state()[1], before_np)  # noqa: NPY002
    assert random.getstate() == before_py


@pytest.mark.parametrize("bad", [-1, MAX_SEED + 1, 1.5, "7", True])
def test_check_seed_refuses_bad_seeds(bad):
    with pytest.raises((TypeError, ValueError)):
        check_seed(bad)
