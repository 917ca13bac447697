"""The project layout every command defaults to (run from the project folder)."""
DEFAULT_RAW = "data/raw"
DEFAULT_CODED = "data/coded"
DEFAULT_CODEBOOK = "codebook.yaml"
DEFAULT_FIGURES = "reports/figures"
DEFAULT_MATRICES = "reports/matrices"
DEFAULT_GOLD = "data/heldout8/gold/gold.csv"   # held-out set H (no rules round saw it): agreement figure
