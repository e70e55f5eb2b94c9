from gortc.cli import main

raise SystemExit(main())
