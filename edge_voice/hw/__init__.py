"""edge-voice hw."""
