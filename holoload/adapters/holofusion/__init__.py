"""HoloFusion's surfaces: holoctl, /metrics over HTTP, samplers, topology sources."""
