"""edge-voice audio."""
