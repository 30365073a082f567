"""Per-family LayerInfo declarations, collected by tests/layer_db.py."""
