"""Independent review (``observation.assessor: independent``): a central reader with its own
measurement errors and RECIST 1.1's rule for equivocal new lesions fills the assessments table,
while the investigator's reading still ends the lines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lifelines import KaplanMeierFitter

from hccsim.analysis.endpoints import progression_free_survival
from hccsim.simulator import parameters
from hccsim.simulator.disease import tumour
from hccsim.simulator.errors import InputError
from hccsim.simulator.imaging import DETECT_MM, Radiologist
from hccsim.simulator.records import Buffers
from hccsim.simulator.scenario import Scenario, loads
from hccsim.simulator.studies.run import simulate_replicates

P = parameters.resolve().tumour
SD = P.measurement_sd_log
EQUIVOCAL_MM = DETECT_MM * math.exp(P.central_equivocal_sd * SD)


def _z(true_mm: float, measured_mm: float) -> float:
    """The standard normal that makes a lesion of ``true_mm`` measure ``measured_mm``."""
    return math.log(measured_mm / true_mm) / SD


def _pair():
    """A 30 mm target and a hidden 9.5 mm liver lesion, neither growing; the investigator
    (not recording) and the central reader (recording) after both read the baseline scan."""
    lz = tumour.Lesions.simple([30.0, 9.5], [0.0, 0.0])
    lz.visible[1] = False
    lz.new[1] = True
    buf = Buffers()
    inv = Radiologist(P, buf, 1, record=False)
    cen = Radiologist(P, buf, 1, lead=inv)
    below = np.array([0.0, _z(9.5, 8.0)])
    assert inv.scan(lz, 0.0, 1, 0, below, True, False) is None
    assert cen.scan(lz, 0.0, 1, 0, below, True, False) is None
    return lz, buf, inv, cen


def _visit(lz, inv, cen, day, visit, measured_new_mm):
    z = np.array([0.0, _z(9.5, measured_new_mm)])
    return inv.scan(lz, day, 1, visit, z, False, False), cen.scan(
        lz, day, 1, visit, z, False, False
    )


def test_the_equivocal_limit_is_one_measurement_sd_above_detection():
    """The committed margin (1 SD of the 8% measurement error): 10.83 mm, as docs/model.md
    says (a regression value of the parameter set)."""
    cen = Radiologist(P, Buffers(), 0, lead=Radiologist(P, Buffers(), 0))
    assert cen.central and cen.record
    assert cen.equivocal_mm == pytest.approx(10.0 * math.exp(0.08), rel=1e-12)


def test_an_equivocal_new_lesion_confirmed_later_dates_progression_back():
    """RECIST 1.1 section 4.3.2: seen at 10.4 mm (equivocal), the investigator calls PD at once,
    the central reader waits; seen again at the next scan, the central reader calls PD and the
    first scan's row is rewritten as PD with the new intrahepatic lesion."""
    lz, buf, inv, cen = _pair()
    assert len(buf.assessments) == 1  # the central baseline only
    r_inv, r_cen = _visit(lz, inv, cen, 42.0, 1, 10.4)
    assert r_inv == ("PD", "PD")
    assert r_cen == ("SD", "SD")
    row = buf.assessments[-1]
    assert row[3] == 42.0 and row[8] is False and row[12:] == ("SD", "SD")
    _, r_cen = _visit(lz, inv, cen, 84.0, 2, 10.2)
    assert r_cen == ("PD", "PD")
    first, second = buf.assessments[1], buf.assessments[2]
    assert first[3] == 42.0 and first[8] is True and first[9] is True and first[10] is False
    assert first[12:] == ("PD", "PD")
    assert second[3] == 84.0 and second[12:] == ("PD", "PD")


def test_an_equivocal_lesion_not_seen_again_is_dropped_and_may_be_found_anew():
    lz, buf, inv, cen = _pair()
    _visit(lz, inv, cen, 42.0, 1, 10.4)
    _, r = _visit(lz, inv, cen, 84.0, 2, 9.0)  # not seen: no new disease
    assert r == ("SD", "SD")
    _, r = _visit(lz, inv, cen, 126.0, 3, 10.5)  # equivocal again: waits again
    assert r == ("SD", "SD")
    assert [row[12] for row in buf.assessments[1:]] == ["SD", "SD", "SD"]
    _, r = _visit(lz, inv, cen, 168.0, 4, 10.1)
    assert r == ("PD", "PD")
    assert [row[12] for row in buf.assessments[1:]] == ["SD", "SD", "PD", "PD"]


def test_an_unequivocal_new_lesion_is_progression_at_once():
    lz, buf, inv, cen = _pair()
    _, r = _visit(lz, inv, cen, 42.0, 1, 12.0)
    assert r == ("PD", "PD")
    assert buf.assessments[-1][8] is True


def test_the_investigator_records_nothing_under_independent_review_but_the_lesions():
    lz, buf, inv, cen = _pair()
    _visit(lz, inv, cen, 42.0, 1, 10.4)
    assert len(buf.assessments) == 2  # central baseline and visit 1
    assert len(buf.lesions) == 2  # the investigator's measurements of both scans


def _scenario(assessor: str) -> Scenario:
    return Scenario.model_validate(
        {
            "name": "review",
            "description": "independent review",
            "seed": 2468,
            "population": {"preset": "keynote240"},
            "cohort": {"size": 1500},
            "treatment": {"sequence": ["placebo", "best_supportive_care"]},
            "observation": {"imaging_weeks": 6, "max_follow_up_months": 24, "assessor": assessor},
        }
    )


@pytest.fixture(scope="module")
def readings():
    out = {}
    for assessor in ("investigator", "independent"):
        ((_, tables),) = list(simulate_replicates(_scenario(assessor), 2468, [0]))
        out[assessor] = tables
    return out


def test_the_central_reader_changes_the_readings_not_the_patients(readings):
    """The central reader draws from its own keyed stream, so every patient lives the same
    course (lines, their ends, deaths) and is scanned on the same days under either assessor;
    only the recorded readings differ."""
    inv, ind = readings["investigator"], readings["independent"]
    for table in ("patients", "lines", "lesions"):
        for col in inv[table]:
            np.testing.assert_array_equal(
                np.asarray(inv[table][col]), np.asarray(ind[table][col]), err_msg=f"{table}.{col}"
            )
    for col in ("patient_id", "line", "visit", "day", "baseline"):
        np.testing.assert_array_equal(
            np.asarray(inv["assessments"][col]), np.asarray(ind["assessments"][col])
        )
    assert np.any(
        np.asarray(inv["assessments"]["response_recist"], dtype=object)
        != np.asarray(ind["assessments"]["response_recist"], dtype=object)
    )


def test_independent_review_sees_fewer_progressions_on_placebo(readings):
    """Central review lengthens PFS on placebo: equivocal new lesions wait for a confirming
    scan, and those the investigator's progression leaves without one are censored. 1,500
    patients at a fixed seed: events in 92% against 66% (regression values at this seed); the
    test asks for a gap of 5 binomial SDs (about 3.5 points) and a longer Kaplan-Meier median
    (45 against 82 days here)."""
    inv = progression_free_survival(readings["investigator"], scan_interval_days=42)
    ind = progression_free_survival(readings["independent"], scan_interval_days=42)
    p_inv, p_ind = inv.events.mean(), ind.events.mean()
    assert p_inv - p_ind > 5 * math.sqrt(p_inv * (1 - p_inv) / len(inv.events))
    km = [KaplanMeierFitter().fit(e.durations, e.events).median_survival_time_ for e in (inv, ind)]
    assert km[1] > km[0]


def test_a_bad_assessor_is_refused_with_the_field_and_the_choices():
    text = (
        "name: x\ndescription: x\npopulation: {preset: keynote240}\ncohort: {size: 10}\n"
        "treatment: {sequence: [placebo]}\nobservation: {assessor: central}\n"
    )
    with pytest.raises(InputError) as err:
        loads(text, "bad.yaml")
    message = str(err.value)
    assert "bad.yaml" in message and "observation.assessor" in message and "central" in message
    assert "investigator" in message and "independent" in message


def test_the_central_reader_reads_the_investigators_targets():
    """A lesion the investigator first finds at a line's baseline scan is neither a target nor
    a non-target of that line (targets are chosen before the scan); the central reader reads
    the same targets and non-targets, and knows the lesion."""
    lz = tumour.Lesions.simple([30.0, 15.0], [0.0, 0.0])
    lz.visible[1] = False
    buf = Buffers()
    inv = Radiologist(P, buf, 1, record=False)
    cen = Radiologist(P, buf, 1, lead=inv)
    z = np.zeros(2)
    inv.scan(lz, 0.0, 1, 0, z, True, False)
    cen.scan(lz, 0.0, 1, 0, z, True, False)
    assert lz.visible[1] and cen.known[1]
    for mask in ("t_r", "t_m", "nontarget"):
        np.testing.assert_array_equal(getattr(cen.reader, mask), getattr(inv.reader, mask))
    assert not inv.reader.t_r[1] and not inv.reader.nontarget[1]


def test_the_methods_say_whose_reading_the_responses_are():
    """Run and analyze reports (``methods_for``) and compare reports (``compare.methods``) state
    the assessor when it is known; an external cohort's report (None) does not guess."""
    from hccsim.analysis.report import ASSESSOR_TEXT, methods_for
    from hccsim.analysis.response import ResponseRule
    from hccsim.simulator.studies import compare

    def response(methods):
        return dict(methods)["Response" if "Response" in dict(methods) else "Endpoints"]

    rule = ResponseRule()
    assert "blinded independent central review" in response(methods_for(rule, "independent"))
    assert "investigator's reading" in response(methods_for(rule, "investigator"))
    unknown = response(methods_for(rule))
    assert all(text.strip() not in unknown for text in ASSESSOR_TEXT.values())
    assert "blinded independent" in response(compare.methods(rule, "independent"))
    assert "investigator's reading" in response(compare.methods(rule))


def test_sweep_methods_say_whose_reading_or_that_it_is_swept():
    """A sweep report states the scenario's assessor, or that the grid sweeps it."""
    from hccsim.simulator.studies import sweep

    sc = _scenario("investigator")
    fixed = dict(sweep.methods(sc, ["observation.imaging_weeks"]))["Reading of scans"]
    assert "investigator's reading" in fixed
    swept = dict(sweep.methods(sc, ["observation.assessor"]))["Reading of scans"]
    assert "swept" in swept and "investigator's reading" not in swept
