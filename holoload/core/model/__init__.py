"""Typed models of what a run is: scenario, target, workloads, chaos actions."""
