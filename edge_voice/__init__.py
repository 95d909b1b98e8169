"""edge-voice: an offline voice assistant daemon (wake word → whisper.cpp → intents/llama.cpp → Piper)."""

__version__ = "0.1.0"
