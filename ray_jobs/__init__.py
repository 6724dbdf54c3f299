"""Ray jobs of NIE: distributed training (Ray Train), sweeps (Ray Tune), MLflow tracking and the
``nie`` command line. Imports ``nie_core``; ``nie_core`` never imports this package."""
