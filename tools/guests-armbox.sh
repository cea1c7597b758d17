#!/usr/bin/env bash
# The bare-metal guests under armbox (`node bin/armbox.js run --kernel G.elf --smp N`);
# same checks and options as tools/guests-qemu.sh, without its QEMU expected failures.
RUNNER=armbox exec "$(dirname "$0")/guests-qemu.sh" "$@"
