"""edge-voice listen."""
