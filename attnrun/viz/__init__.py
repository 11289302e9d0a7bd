"""Plotting shared by experiments: heatmap grids with token labels, positional-encoding plots and
the interactive ``attention.html`` viewer."""

#: The colour map of every attention-weight heatmap: a run's PNGs (translate, selfattn, coref,
#: regress) and the report's attention panels, so a colour reads the same weight everywhere.
#: Sequential from white at 0, so the many near-zero weights of a sharp map stay out of the way
#: (d2l's ``show_heatmaps`` uses it too). The positional-encoding matrix (signed values, not
#: weights) keeps its own map.
ATTENTION_CMAP = "Reds"
