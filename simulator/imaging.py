"""The simulated radiologist: a scan measures every visible lesion with error, finds new
lesions, and reads the visit by RECIST 1.1 and mRECIST with ``hccsim.analysis.response``.

At a line's baseline scan the targets are chosen among the visible lesions (``tumour``), the
baseline sums and non-target burden are recorded, and every visible lesion is marked as known
for the line. At each later scan:

- each lesion's longest diameter is measured with log-normal error; below 2 mm (true) it is
  recorded as gone (0 mm), a measurement below 5 mm as 5 mm (RECIST 1.1); the viable diameter
  is the measured diameter times the lesion's viable fraction (0 for non-enhancing lesions);
- a hidden new lesion is detected once measured at 10 mm or more, and counts as a new lesion
  (progression) under both criteria (a new intrahepatic lesion is enhancing, a typical nodule);
  new vascular invasion, if it appeared since the last scan, is read as a new lesion too;
- target sums: RECIST 1.1 whole diameters (nodes: short axis); mRECIST viable diameters of
  intrahepatic targets, whole diameters of extrahepatic ones; targets are resolved when
  non-nodal ones are gone and nodes are below 10 mm;
- non-targets (the other visible lesions of the baseline and the latent burden): unequivocal
  progression when their total volume reaches ``nontarget_pd_volume_ratio`` times its nadir;
  CR when all are gone (nodes below 10 mm).

Lesions and assessments go to the column buffers; the pattern of progression (new intrahepatic
lesions, new extrahepatic spread, new vascular invasion) is recorded with each assessment.

**Independent review** (``observation.assessor: independent``): a second, central reader reads
the same scans, with its own measurement errors (keyed stream ``CENTRAL``) and its own record
of the new lesions it has found; its readings fill the ``assessments`` table, while the
investigator's (not recorded) decide when a line ends. At each line's baseline it knows what
the investigator knows and reads the investigator's target and non-target lesions. It applies RECIST 1.1's rule for
equivocal new lesions (section 4.3.2: "If a new lesion is equivocal, for example because of its
small size, continued therapy and follow-up evaluation will clarify if it represents truly new
disease. If repeat scans confirm there is definitely a new lesion, then progression should be
declared using the date of the initial scan"): a new lesion first measured below
``DETECT_MM x exp(central_equivocal_sd x measurement_sd_log)`` is equivocal; seen again (10 mm
or more) at the next scan it is confirmed and the progression is dated back to the scan that
first showed it (that row of the table is rewritten); not seen again, it is dropped and may be
found anew later. A scan that never comes (the investigator ended the line, death) leaves it
unconfirmed, so the central reading censors such a progression at its last adequate scan, as
blinded central review does.
"""

from __future__ import annotations

import math

import numpy as np

from hccsim.analysis.response import NODE_NORMAL_MM, visit_response
from hccsim.simulator.disease import tumour
from hccsim.simulator.records import ASSESSMENT_COLS

_ORGAN_NAMES = np.array(tumour.ORGANS, dtype=object)
DETECT_MM = 10.0
#: Positions in an assessments row (records.ASSESSMENT_COLS) that a dated-back progression sets.
_NEW, _INTRA, _EXTRA, _RESP_R, _RESP_M = (
    ASSESSMENT_COLS.index(c)
    for c in (
        "new_lesions", "new_intrahepatic", "new_extrahepatic", "response_recist",
        "response_mrecist",
    )
)  # fmt: skip


class Reader:
    """Targets and reference values of one line, fixed at its baseline scan."""

    __slots__ = (
        "base_m", "base_r", "has_nontarget", "nadir_m", "nadir_nt", "nadir_r", "nontarget",
        "t_m", "t_r",
    )  # fmt: skip

    def __init__(self, lz: tumour.Lesions, line: int) -> None:
        self.t_r, self.t_m = tumour.select_targets(lz, lz.logd)
        self.nontarget = (lz.visible & ~self.t_r) | lz.latent
        self.has_nontarget = bool(self.nontarget.any())
        lz.line_seen[lz.visible] = line

    @classmethod
    def same_targets(cls, other: Reader) -> Reader:
        """A reader of the same target and non-target lesions as ``other`` (the central reader
        follows the investigator's choice), with its own reference sums to come."""
        rd = cls.__new__(cls)
        rd.t_r, rd.t_m, rd.nontarget = other.t_r, other.t_m, other.nontarget
        rd.has_nontarget = other.has_nontarget
        return rd


class Radiologist:
    """Scans one patient: holds the measurement parameters and the line's :class:`Reader`.

    The investigator (no ``lead``) records the lesions and, unless ``record`` is False
    (independent review), the assessments, and marks the new lesions it finds on the lesions
    themselves (``Lesions.visible``). The central reader (``lead``: the investigator whose
    targets it reads) keeps its own record of known lesions, records only the assessments, and
    holds equivocal new lesions until the next scan confirms them (module docstring).
    """

    __slots__ = (
        "buf", "central", "equivocal_mm", "known", "lead", "log_gone", "nt_ratio", "pending",
        "pending_row", "pid", "reader", "record", "sd", "too_small",
    )  # fmt: skip

    def __init__(self, p, buf, pid: int, *, record: bool = True, lead=None) -> None:
        self.sd = p.measurement_sd_log
        self.log_gone = math.log(p.disappear_mm)
        self.too_small = p.too_small_mm
        self.nt_ratio = p.nontarget_pd_volume_ratio
        self.buf = buf
        self.pid = pid
        self.reader: Reader | None = None
        self.lead: Radiologist | None = lead  # central: the investigator whose targets it reads
        self.central = lead is not None
        self.record = record or self.central
        self.equivocal_mm = DETECT_MM * math.exp(p.central_equivocal_sd * self.sd)
        self.known = np.zeros(0, dtype=bool)  # central: the lesions it has seen
        self.pending = np.zeros(0)  # central: day an equivocal lesion was first seen (NaN: none)
        self.pending_row = np.zeros(0, dtype=np.int64)  # its row in buf.assessments

    def scan(
        self,
        lz: tumour.Lesions,
        t: float,
        line: int,
        visit: int,
        z: np.ndarray,
        baseline: bool,
        new_mvi: bool,
    ) -> tuple[str, str] | None:
        """Measure and read one scan; the two responses (RECIST 1.1, mRECIST), None at baseline."""
        n = lz.n
        if baseline:
            if self.central:  # the investigator's targets; it knows what the investigator knows
                self.reader = Reader.same_targets(self.lead.reader)
                self.known = lz.visible.copy()
                self.pending = np.full(n, np.nan)
                self.pending_row = np.zeros(n, dtype=np.int64)
            else:
                self.reader = Reader(lz, line)
        rd = self.reader
        logd = lz.log_diameters(t)
        # Extend a reader built before lesions were added (their weights are 0).
        t_r, t_m, nontarget = (_pad(x, n) for x in (rd.t_r, rd.t_m, rd.nontarget))
        logobs = logd + self.sd * z[:n]
        raw = np.exp(logobs)
        gone = logd < self.log_gone
        rec = np.where(gone, 0.0, np.maximum(raw, self.too_small))
        viable = np.where(gone | (lz.f0 <= 0.0), 0.0, raw * lz.viable_fractions(t))
        row = None
        if self.central:
            newly, row, first = self._central_new(lz, rec, t, baseline)
        else:
            newly = ~lz.visible & ~lz.latent & (rec >= DETECT_MM)
            if newly.any():
                lz.visible = lz.visible | newly
        liver = lz.organ == tumour.LIVER
        node = lz.organ == tumour.LYMPH_NODE
        mrec = np.where(liver, viable, rec)
        sum_r = float(rec[t_r].sum())
        sum_m = float(mrec[t_m].sum())
        res_r = bool(np.all(np.where(node, rec < NODE_NORMAL_MM, rec == 0.0)[t_r]))
        res_m = bool(np.all(np.where(node, mrec < NODE_NORMAL_MM, mrec == 0.0)[t_m]))
        nt_vol = float(np.exp(3.0 * logobs[nontarget]).sum())
        shown = lz.visible
        if not self.central:
            self.buf.lesions.append(
                (
                    self.pid,
                    line,
                    visit,
                    t,
                    lz.lesion_id[shown],
                    _ORGAN_NAMES[lz.organ[shown]],
                    t_r[shown],
                    t_m[shown],
                    rec[shown],
                    viable[shown],
                    lz.f0[shown] > 0.0,
                    lz.new[shown],
                )
            )
        new_intra = bool((newly & liver).any())
        new_extra = bool((newly & ~liver).any())
        if baseline:
            rd.base_r = rd.nadir_r = sum_r
            rd.base_m = rd.nadir_m = sum_m
            rd.nadir_nt = nt_vol
            status = "non-CR/non-PD" if rd.has_nontarget else "absent"
            if not self.record:
                return None
            self.buf.assessments.append(
                (
                    self.pid,
                    line,
                    0,
                    t,
                    True,
                    sum_r,
                    sum_m,
                    status,
                    False,
                    False,
                    False,
                    False,
                    None,
                    None,
                )
            )
            return None
        if not rd.has_nontarget:
            status = "absent"
        elif nt_vol >= self.nt_ratio * rd.nadir_nt:
            status = "PD"
        elif np.all(np.where(node, rec < NODE_NORMAL_MM, gone)[nontarget]):
            status = "CR"
        else:
            status = "non-CR/non-PD"
        new = new_intra or new_extra or new_mvi
        resp_r = visit_response(
            sum_r,
            rd.base_r,
            rd.nadir_r,
            nontarget=status,
            new_lesions=new,
            criterion="recist1.1",
            resolved=res_r,
        )
        status_m = status if rd.base_m > 0 else ("PD" if status == "PD" else "NE")
        resp_m = visit_response(
            sum_m,
            rd.base_m,
            rd.nadir_m,
            nontarget=status_m,
            new_lesions=new,
            criterion="mrecist",
            resolved=res_m,
        )
        rd.nadir_r = min(rd.nadir_r, sum_r)
        rd.nadir_m = min(rd.nadir_m, sum_m)
        rd.nadir_nt = min(rd.nadir_nt, nt_vol)
        if not self.record:
            return resp_r, resp_m
        if row is not None:
            self._backdate(row, first, liver)
        self.buf.assessments.append(
            (
                self.pid,
                line,
                visit,
                t,
                False,
                sum_r,
                sum_m,
                status,
                new,
                new_intra,
                new_extra,
                new_mvi,
                resp_r,
                resp_m,
            )
        )
        return resp_r, resp_m

    def _central_new(
        self, lz: tumour.Lesions, rec: np.ndarray, t: float, baseline: bool
    ) -> tuple[np.ndarray, int | None, np.ndarray]:
        """The central reader's reading of new lesions at this scan: the ones it counts now
        (unequivocal new ones and confirmed equivocal ones), the assessments row to date the
        progression back to (None: none) and the confirmed lesions first seen on that row."""
        n = lz.n
        known, pending, prow = self.known, self.pending, self.pending_row
        if len(known) < n:  # lesions added since the last scan
            extra = n - len(known)
            known = np.concatenate([known, np.zeros(extra, dtype=bool)])
            pending = np.concatenate([pending, np.full(extra, np.nan)])
            prow = np.concatenate([prow, np.zeros(extra, dtype=np.int64)])
        waiting = ~np.isnan(pending)
        seen = rec >= DETECT_MM
        confirmed = waiting & seen
        dropped = waiting & ~seen
        known = known & ~dropped  # not seen again: not new disease (it may be found anew)
        newly = ~known & ~lz.latent & seen
        known = known | newly
        row, first = None, np.zeros(n, dtype=bool)
        if confirmed.any():
            row = int(prow[confirmed].min())
            first = confirmed & (prow == row)
        pending[confirmed | dropped] = np.nan
        equivocal = newly & (rec < self.equivocal_mm)
        if baseline:
            equivocal[:] = False
        elif equivocal.any():
            pending[equivocal] = t
            prow[equivocal] = len(self.buf.assessments)  # the row this scan appends
        self.known, self.pending, self.pending_row = known, pending, prow
        return (newly & ~equivocal) | confirmed, row, first

    def _backdate(self, row: int, first: np.ndarray, liver: np.ndarray) -> None:
        """Progression dated back to the scan that first showed a confirmed new lesion: its
        row reads PD under both criteria, with the new lesions it showed."""
        r = list(self.buf.assessments[row])
        r[_NEW] = True
        r[_INTRA] = r[_INTRA] or bool((first & liver).any())
        r[_EXTRA] = r[_EXTRA] or bool((first & ~liver).any())
        r[_RESP_R] = r[_RESP_M] = "PD"
        self.buf.assessments[row] = tuple(r)


def _pad(mask: np.ndarray, n: int) -> np.ndarray:
    return mask if len(mask) == n else np.concatenate([mask, np.zeros(n - len(mask), dtype=bool)])
