"""Run against run: regression budgets, bootstrap intervals, verdicts per figure."""
