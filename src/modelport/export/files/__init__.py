"""Scripts copied verbatim into build outputs (they import nothing from modelport)."""
