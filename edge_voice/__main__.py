from edge_voice.cli import main

raise SystemExit(main())
