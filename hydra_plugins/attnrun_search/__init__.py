"""attnrun's Hydra sweeper plugin: Optuna search with a resumable study (see attnrun.search)."""
