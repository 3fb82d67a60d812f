"""Long statistical checks against theory and reference software, outside the unit suite.

Run with ``make verify`` (``python -m verification``). Each check prints what it compared, the
size of the deviation and the tolerance it was held to; plots go to ``verification/output/``.
"""
