"""What a run leaves for people: results.json (level, rungs), trace.json (spans)."""
