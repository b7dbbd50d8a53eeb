"""Figures. Only this package imports matplotlib (with the Agg backend); its functions take numbers and write PNGs."""
