"""The Optuna study (trials as k-fold CV) and the selection across candidates."""
