"""Calibration: measurements of real collectives (parsers.py) and the fit of a topology's cost terms to them (fit.py)."""
