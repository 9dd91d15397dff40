"""``python -m hardware_emulators.demo``: the whole product, end to end, on the emulated lab."""

from hardware_emulators.demo.flow import main

raise SystemExit(main())
