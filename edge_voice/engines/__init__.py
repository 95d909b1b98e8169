"""edge-voice engines."""
