"""Course tooling: set-up, tests, notebook builds and checks of the GPU paths (not lessons)."""
