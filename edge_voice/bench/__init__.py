"""edge-voice bench."""
