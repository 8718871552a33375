"""Verdicts: budgets, the gate, sequential decisions, accuracy judgements, their simulation."""
