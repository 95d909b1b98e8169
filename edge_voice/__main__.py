from edge_voice.cli.main import main

raise SystemExit(main())
