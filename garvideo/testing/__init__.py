"""Offline test material: tiny random checkpoints and generated clips.

- :mod:`garvideo.testing.gar`: a tiny randomly initialised GAR checkpoint in the released layout.
- :mod:`garvideo.testing.sam2`: a tiny randomly initialised SAM2 video checkpoint.
- :mod:`garvideo.testing.clips`: short generated videos with known frames and timestamps.
- :mod:`garvideo.testing.waiting`: polling for background work instead of sleeping a guessed time.
- :mod:`garvideo.testing.hostile`: FIFOs, symbolic link loops and images whose header claims a huge size.

Nothing here downloads anything; users' smoke tests (``garvideo selftest``) use it too.
"""
