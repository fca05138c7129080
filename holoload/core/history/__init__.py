"""Run history records and change points over them."""
