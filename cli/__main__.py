from odbench.cli import main

raise SystemExit(main())
