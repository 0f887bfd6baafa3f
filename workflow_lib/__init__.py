"""All logic of the ReDSM5 pipeline. Importable and unit-testable; never imports snakemake."""

__version__ = "0.1.0"
