from edge_voice.cli.main import entry

entry()
