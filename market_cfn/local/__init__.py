"""The local emulation: simulate's Pipeline (and the `local` service)."""
