"""compress stage."""
