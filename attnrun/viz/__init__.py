"""Plotting shared by experiments: heatmap grids with token labels, positional-encoding plots and
the interactive ``attention.html`` viewer."""
