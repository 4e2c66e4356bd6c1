"""LIMA: Less Is More for Alignment, reproduced."""
