"""hccsim.analysis: response and survival analysis of cohort tables, simulated or real.

Pure functions of the cohort tables of DESIGN section 7; never imports ``hccsim.simulator``.
"""
