"""When operations start (open and closed loop) and the parameters they carry."""
