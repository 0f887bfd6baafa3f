"""Models, examples, the training loop and what it saves (checkpoints, epoch states)."""
