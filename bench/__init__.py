"""rayfarm benchmarks: `python -m bench.<name> --help`; figures in BENCHMARKS.md."""
