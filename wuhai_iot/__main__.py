from wuhai_iot.cli import main

raise SystemExit(main())
