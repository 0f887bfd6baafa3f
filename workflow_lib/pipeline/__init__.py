"""Stages and their plumbing: the plan, run modes, job start-up, the stage functions, the inference benchmark stage."""
