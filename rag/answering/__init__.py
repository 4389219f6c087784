"""Answering: the trained reader, answer composition, learned refusal."""
