"""The cluster's own signals: sampled metrics, their store and what gates read."""
